"""Summaries over seeds and the tables they go in, for ``graphssl bench``, ``tune`` and ``plot``."""

from __future__ import annotations

import csv
import io
import statistics
from typing import Any, Iterable, Sequence


# graphssl plot's table of a WERank sweep, beside its werank_sweep.png (bench leaves both where they were drawn).
SWEEP_TABLE = "werank_sweep.csv"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (``n - 1``; 0 for a single value) of ``values``.

    Returns:
        ``(mean, std)``.

    Example:
        >>> mean_std([0.80, 0.82, 0.84])
        (0.82, 0.019999999999999962)
    """
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def csv_text(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> str:
    """``rows`` as CSV with a header line, ``\\n`` line ends, the ``columns`` in order.

    Returns:
        The CSV text.

    Example:
        >>> print(csv_text(["seed", "acc"], [{"seed": 0, "acc": 0.8}]), end="")
        seed,acc
        0,0.8
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
