"""The per-step record of a training run: ``log.csv``, and the same scalars in TensorBoard.

``log.csv`` has one row per logged step (:func:`is_logged`) with the columns of
:func:`log_columns`: the step (steps done), the method's loss, the WERank term
in total and per regularized weight (``werank_layer1`` is the encoder's first
weight matrix), the WERank coefficient, learning rate and EMA momentum that
step used, the cumulative training seconds, and where due the RankMe and numerical rank of
the full-graph embeddings (every ``train.spectra_every`` steps) and the
probe's validation accuracy (every ``train.probe_every`` steps); cells with
nothing measured are empty.  Step 0, when anything is measured there, is the
model training starts from (no loss yet).

The file is appended to and flushed row by row, never rewritten whole.  A
checkpoint records how many bytes the log held when it was written
(:meth:`TrainingLog.sync`), and a resumed run cuts the file back to that
length, dropping the rows written after the checkpoint, which it then writes
again: a killed and resumed run's log equals the uninterrupted run's, timings
aside.  TensorBoard (``train.tensorboard``, the optional ``tensorboard``
package) gets the same scalars in ``RUN_DIR/tb/``.
"""

from __future__ import annotations

import csv
import errno
import io
import math
import os
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, Mapping, Sequence

from .errors import GraphSSLError, NotAsWritten, WriteFailed, reason
from .files import write_error

LOG = "log.csv"
TENSORBOARD = "tb"

Row = Mapping[str, "float | int | None"]


def log_columns(num_weights: int) -> list[str]:
    """The columns of ``log.csv`` for an encoder with ``num_weights`` regularizable weight matrices.

    Returns:
        The column names, in order.

    Example:
        >>> log_columns(2)
        ['step', 'loss', 'werank', 'werank_layer1', 'werank_layer2', 'werank_alpha', 'lr', 'ema_momentum', 'wall_seconds', 'rankme', 'rank', 'val_acc']
    """
    return ["step", "loss", "werank", *(f"werank_layer{i}" for i in range(1, num_weights + 1)), "werank_alpha",
            "lr", "ema_momentum", "wall_seconds", "rankme", "rank", "val_acc"]


def _due(step: int, every: int) -> bool:
    return every > 0 and step % every == 0


def is_logged(step: int, total_steps: int, train: Mapping[str, Any]) -> bool:
    """Whether ``log.csv`` has a row for ``step`` (steps done) under the ``train`` section of a config.

    Every ``train.log_every`` steps (0 or 1: every step), the last step, and
    every step where spectra or the probe are due; step 0 when either is on
    (the model before training).

    Returns:
        ``True`` or ``False``.

    Example:
        >>> train = {"log_every": 3, "spectra_every": 5, "probe_every": 0}
        >>> [step for step in range(13) if is_logged(step, 12, train)]
        [0, 3, 5, 6, 9, 10, 12]
    """
    measured = _due(step, train["spectra_every"]) or _due(step, train["probe_every"])
    if step == 0:
        return measured
    return measured or step % max(train["log_every"], 1) == 0 or step == total_steps


def require_tensorboard() -> Any:
    """torch's TensorBoard writer class, or one error saying how to install the optional package.

    Returns:
        ``torch.utils.tensorboard.SummaryWriter``.

    Example:
        >>> writer_class = require_tensorboard()  # doctest: +SKIP
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise GraphSSLError("train.tensorboard (--tensorboard) needs the tensorboard package: "
                            "pip install 'graphssl-werank[tensorboard]' (or pip install tensorboard), "
                            "or train without --tensorboard") from None
    return SummaryWriter


def _cell(value: float | int | None) -> str:
    return "" if value is None else str(value) if isinstance(value, int) else repr(float(value))


def _line(values: Sequence[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode()


class TrainingLog:
    """``log.csv`` written row by row (and TensorBoard beside it), continued exactly on resume.

    Args:
        path: the CSV file.
        columns: its columns (:func:`log_columns`).
        start_step: the step training starts from; 0 starts a new file (replacing any there), a resumed run
            gives its checkpoint's step.
        resume_bytes: the file's length recorded in that checkpoint (:meth:`sync`): the file is cut back to
            it.  When it is unknown, the file is shorter, or its header names other columns (a run begun by
            an earlier graphssl, before ``werank_alpha``), the log starts over from ``start_step`` with a
            one-line warning.
        tensorboard: a folder for TensorBoard event files, or ``None``.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "log.csv"
        >>> with TrainingLog(path, ["step", "loss"]) as log:
        ...     log.write({"step": 10, "loss": 0.5})
        ...     kept = log.sync()
        ...     log.write({"step": 20, "loss": 0.25})
        >>> with TrainingLog(path, ["step", "loss"], start_step=10, resume_bytes=kept) as log:
        ...     log.write({"step": 20, "loss": 0.3})
        >>> print(path.read_text(), end="")
        step,loss
        10,0.5
        20,0.3
    """

    def __init__(self, path: str | Path, columns: Sequence[str], *, start_step: int = 0,
                 resume_bytes: int | None = None, tensorboard: str | Path | None = None) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        writer_class = require_tensorboard() if tensorboard is not None else None  # before any file is touched
        try:
            # A log.csv replaced by a symbolic link is refused, never written through (it could point anywhere).
            if self.path.is_symlink():
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
            if start_step and self._can_continue(resume_bytes):
                os.truncate(self.path, resume_bytes)  # type: ignore[arg-type]
                self._handle = open(self.path, "ab")
            else:
                if start_step:
                    print(f"graphssl: warning: {self.path} could not be continued from its checkpoint; "
                          f"it restarts at step {start_step}", file=sys.stderr)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.path, "wb")
                self._handle.write(_line(self.columns))
                self._handle.flush()
        except OSError as err:
            raise write_error(self.path, err) from None
        # On resume, events after the checkpoint (written before the kill) are hidden from step start_step + 1 on.
        self._tensorboard = None if writer_class is None else \
            writer_class(str(tensorboard), purge_step=start_step + 1 if start_step else None)

    def _can_continue(self, resume_bytes: int | None) -> bool:
        header = _line(self.columns)
        try:
            with open(self.path, "rb") as handle:  # rows of other columns cannot be continued
                return resume_bytes is not None and self.path.stat().st_size >= resume_bytes and \
                    handle.read(len(header)) == header
        except OSError:
            return False

    def write(self, row: Row) -> None:
        """Append one row (absent columns and ``None`` are empty cells) and flush it."""
        unknown = set(row) - set(self.columns)
        if unknown:
            raise ValueError(f"log.csv has no column {', '.join(sorted(unknown))}")
        try:
            self._handle.write(_line([_cell(row.get(name)) for name in self.columns]))
            self._handle.flush()
        except OSError as err:
            raise write_error(self.path, err) from None
        if self._tensorboard is not None:
            for name, value in row.items():
                if name != "step" and value is not None:
                    self._tensorboard.add_scalar(name, value, global_step=int(row["step"]))  # type: ignore[arg-type]

    def sync(self) -> int:
        """Put what was written on disk (before a checkpoint records it).

        Returns:
            The file's length in bytes, for the checkpoint.
        """
        try:
            os.fsync(self._handle.fileno())
        except OSError as err:
            raise write_error(self.path, err) from None
        if self._tensorboard is not None:
            self._tensorboard.flush()
        return self._handle.tell()

    def close(self) -> None:
        try:
            self._handle.close()  # writes out what a failed write left buffered, or fails again
        except OSError as err:
            raise write_error(self.path, err) from None
        finally:
            if self._tensorboard is not None:
                self._tensorboard.close()

    def __enter__(self) -> TrainingLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            self.close()
        except WriteFailed:
            if error is None:  # else the error already on its way (often this same full disk) is the one to report
                raise


def read_log(path: str | Path) -> list[dict[str, float]]:
    """The rows of a ``log.csv``: every cell a float, empty or missing cells NaN.

    Returns:
        One dictionary per row, by column name. A file that cannot be read, or is not as graphssl writes it
        (rows under a header with ``step``, a finite step in every row, no cell more than the header and
        nothing but numbers), is a :class:`GraphSSLError` naming it and the problem.

    Example:
        >>> rows = read_log("runs/cora-wr/log.csv")  # doctest: +SKIP
        >>> rows[-1]["step"], rows[-1]["loss"]  # doctest: +SKIP
        (1000.0, 0.412)
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # a folder, or a pipe that would wait forever for a writer
        raise GraphSSLError(f"{path}: not a regular file; give a log.csv written by graphssl")
    try:
        with open(path, newline="") as handle:
            table = list(csv.reader(handle))
    except OSError as err:
        raise GraphSSLError(f"{path}: cannot read it ({reason(err)}); give a log.csv written by graphssl") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise NotAsWritten(path, f"it is not CSV text ({str(err)[:80]})") from None
    header, rows = (table or [[]])[0], [cells for cells in table[1:] if cells]  # blank rows are no rows
    if rows and "step" not in header:  # also a blank first line, taken for the header
        raise NotAsWritten(path, "its header has no 'step' column")
    read = []
    for number, cells in enumerate(rows, start=1):
        if len(cells) > len(header):
            raise NotAsWritten(path, f"row {number} has more cells than the header")
        row = dict.fromkeys(header, math.nan)
        for name, cell in zip(header, cells):
            try:
                row[name] = float(cell) if cell else math.nan
            except ValueError:
                raise NotAsWritten(path, f"row {number} holds {cell[:20]!r}, not a number") from None
        if not math.isfinite(row["step"]):
            raise NotAsWritten(path, f"row {number} has no step" if math.isnan(row["step"]) else
                                 f"row {number} has step {row['step']}")
        read.append(row)
    return read


def peak_step(rows: Sequence[Mapping[str, float]], column: str = "val_acc") -> tuple[int, float] | None:
    """The step at which ``column`` is highest in a log's rows (the earliest on a tie).

    Returns:
        ``(step, value)``, or ``None`` when the column was never measured.

    Example:
        >>> peak_step([{"step": 0.0, "val_acc": 0.5}, {"step": 50.0, "val_acc": 0.7}, {"step": 100.0, "val_acc": 0.7}])
        (50, 0.7)
    """
    measured = [(row[column], -row["step"]) for row in rows if not math.isnan(row.get(column, math.nan))]
    if not measured:
        return None
    value, negative_step = max(measured)
    return int(-negative_step), value
