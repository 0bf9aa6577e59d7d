"""Writing outputs safely: one atomic writer for every command, output folders, and what an OS error means.

Every file graphssl writes goes through :func:`atomic_write`: a temporary
``.NAME.tmp-PID`` in the same folder, flushed to disk and renamed over
``NAME``, so a kill or a full disk at any moment leaves either the previous
file or the new one, never half of one.  A write that fails (no space, a
read-only file system, a bad path) removes its temporary and becomes one
:class:`~graphssl.errors.WriteFailed` line saying what went wrong and what to
do.  A temporary whose writer was killed (SIGKILL, power loss) is removed by
the next write of the same file and by :func:`remove_stale_temporaries`; one
of a process still running is left to it.

:func:`claim_folder` is how commands that keep their outputs in a folder
(``bench``, ``tune``, ``toy``) take one: new, empty, or their own earlier
output, never a folder holding another run's files.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
from pathlib import Path
from typing import Any, Callable

from .errors import GraphSSLError, WriteFailed, first_line, warn
from .locks import PID_LIMIT, process_exists

# Room left under the file system's 255-byte name limit for ".", ".tmp-" and a process id, so that a long but
# legal file name still gets a legal temporary.
_TEMPORARY_STEM_BYTES = 200

_PROBLEMS = {
    errno.ENOSPC: "no space left on the device (what was there before is intact); free some space or write elsewhere",
    errno.EDQUOT: "disk quota exceeded (what was there before is intact); free some space or write elsewhere",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.EACCES: "permission denied; write elsewhere",
    errno.EPERM: "permission denied; write elsewhere",
    errno.ENAMETOOLONG: "a name in that path is too long for the file system; choose a shorter one",
    errno.ENOENT: "its folder does not exist; create it or choose another path",
    errno.ENOTDIR: "part of that path is a file, not a folder; choose another path",
    errno.EISDIR: "that is a folder; give a file name",
    errno.EEXIST: "a file of that name is in the way; choose another name",
    # graphssl never writes through a link, which could point at any file.
    errno.ELOOP: "it is a symbolic link (graphssl never writes through one); remove it or write elsewhere",
}


def _shown(path: Path, limit: int = 120) -> str:
    """``path`` for a one-line message: a path too long to read is cut in the middle."""
    text = str(path)
    return text if len(text) <= limit else f"{text[:limit // 2 - 2]}...{text[-(limit // 2 - 2):]}"


def write_error(path: str | Path, error: OSError, action: str = "write") -> WriteFailed:
    """The one-line error for an ``OSError`` met while writing ``path``: the path, the problem, the fix.

    Returns:
        The error, to raise.

    Example:
        >>> print(write_error("runs/a/checkpoint.pt", OSError(errno.ENOSPC, "No space left on device")))
        cannot write runs/a/checkpoint.pt: no space left on the device (what was there before is intact); free some space or write elsewhere
    """
    problem = _PROBLEMS.get(error.errno, f"{error.strerror or first_line(error)}; write elsewhere")
    return WriteFailed(f"cannot {action} {_shown(Path(path))}: {problem}")


def _os_error(error: BaseException | None) -> OSError | None:
    """The ``OSError`` behind ``error``: itself, or one it was raised while handling (``torch.save`` turns a
    failed write into a ``RuntimeError`` of its own)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _temporary_prefix(name: str) -> str:
    stem = name.encode()[:_TEMPORARY_STEM_BYTES].decode(errors="ignore")
    return f".{stem}.tmp-"


def _writer_pid(name: str) -> int | None:
    """The process id in a temporary's name (``.NAME.tmp-PID``), or ``None`` for any other name."""
    head, separator, pid = name.rpartition(".tmp-")
    if not (separator and head.startswith(".") and pid.isdigit()):
        return None
    return int(pid) if 0 < int(pid) < PID_LIMIT else None  # a larger number after ".tmp-" is not one of ours


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`atomic_write`'s temporaries.

    Returns:
        ``True`` or ``False``.

    Example:
        >>> is_temporary(".checkpoint.pt.tmp-4242"), is_temporary("checkpoint.pt")
        (True, False)
    """
    return _writer_pid(name) is not None


def remove_stale_temporaries(folder: str | Path, name: str | None = None) -> None:
    """Delete the temporaries in ``folder`` that writers killed mid-write left behind (their process no longer
    exists); a running process's temporary is left to it.  ``name``: only those of the file ``name``.

    Example:
        >>> remove_stale_temporaries("runs/cora-wr")  # doctest: +SKIP
    """
    folder = Path(folder)
    prefix = _temporary_prefix(name) if name is not None else "."
    try:
        names = os.listdir(folder)
    except OSError:  # no folder yet, or one this process cannot read: nothing it could remove
        return
    for entry in names:
        pid = _writer_pid(entry)
        if pid is not None and entry.startswith(prefix) and not process_exists(pid):
            # Gone already (another process cleaned up first), or a read-only folder whose writes will say so.
            with contextlib.suppress(OSError):
                os.unlink(folder / entry)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems do not open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, fsync it, then rename it to ``path``.

    A failure leaves whatever was at ``path`` intact and no temporary behind;
    one caused by the operating system (no space, read-only, bad path), even
    when ``write`` wrapped it in an error of its own, is a :class:`WriteFailed`.
    Temporaries of ``path`` left by killed writers are removed first.

    Example:
        >>> atomic_write("runs/cora-wr/embeddings.pt", lambda handle: torch.save(embeddings, handle))  # doctest: +SKIP
    """
    path = Path(path)
    remove_stale_temporaries(path.parent, path.name)
    tmp = path.with_name(f"{_temporary_prefix(path.name)}{os.getpid()}")
    try:
        with open(tmp, "xb") as handle:  # exclusive: never through a link planted under the temporary's name
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:  # Ctrl-C included: no temporary may outlive this call
        with contextlib.suppress(OSError):
            tmp.unlink()
        cause = _os_error(err)
        if cause is None:
            raise
        raise write_error(path, cause) from None
    _fsync_dir(path.parent)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`atomic_write`).

    Example:
        >>> write_text("runs/cora-wr/notes.txt", "tried lr 0.002")  # doctest: +SKIP
    """
    atomic_write(path, lambda handle: handle.write(text.encode()))


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` to ``path`` as indented JSON, atomically (:func:`atomic_write`).

    Example:
        >>> write_json("runs/bench/results/cora__seed0.json", {"test_acc": 0.82})  # doctest: +SKIP
    """
    write_text(path, json.dumps(data, indent=2) + "\n")


# Deeper than anything graphssl writes (spectra.json, the deepest, nests 5): a file nested further is no file of
# graphssl's, and past a few hundred levels the parser and every walk over the value would overflow the stack.
MAX_JSON_DEPTH = 50


def read_json(path: str | Path) -> Any:
    """The JSON value in the file at ``path``, as ``json.loads`` reads it.

    Returns:
        The value; one nested deeper than :data:`MAX_JSON_DEPTH` is a ``ValueError``, as malformed JSON is
        (an unreadable file, or one that is not a regular file, is an ``OSError``).

    Example:
        >>> read_json("runs/cora-wr/metrics.json")["test_acc"]  # doctest: +SKIP
        0.835
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # a folder, or a pipe that would wait forever for a writer
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    too_deep = ValueError(f"nested more than {MAX_JSON_DEPTH} deep, deeper than graphssl writes")
    try:
        value = json.loads(path.read_text())
    except RecursionError:
        raise too_deep from None
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                raise too_deep
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return value


def read_json_or_warn(path: str | Path, what: str = "running that run again") -> Any:
    """The JSON a command wrote earlier at ``path``; ``None`` when there is none, and also (with a one-line
    warning saying ``what`` happens instead) when the file is there but unreadable: truncated by a full disk,
    or edited.

    Returns:
        The parsed value, or ``None``.

    Example:
        >>> read_json_or_warn("no-such-result.json") is None
        True
    """
    path = Path(path)
    try:
        return read_json(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        warn(f"{path} is unreadable ({first_line(err, 80)}); {what}")
        return None


def make_folder(path: str | Path) -> Path:
    """Create the folder ``path`` (and its parents) unless it exists; an OS error is a :class:`WriteFailed`.

    Returns:
        The folder.

    Example:
        >>> import tempfile
        >>> make_folder(Path(tempfile.mkdtemp()) / "plots").is_dir()
        True
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise write_error(path, err, "create the folder") from None
    return path


def claim_folder(out: str | Path, command: str, owns: Callable[[Path], bool]) -> Path:
    """The output folder ``out`` of ``graphssl COMMAND``, created when absent.

    An existing folder is taken only when every entry in it is one ``owns``
    says the command writes (its own earlier output, which it continues or
    replaces); anything else there, such as another run's files, and the
    folder is refused: nothing of another run is ever replaced.

    Returns:
        The folder.

    Example:
        >>> import tempfile
        >>> claim_folder(Path(tempfile.mkdtemp()) / "toy", "toy", lambda entry: entry.name == "spectra.json").is_dir()
        True
    """
    out = Path(out)
    try:
        names = os.listdir(out) if out.is_dir() else []
    except OSError as err:
        raise write_error(out, err, "use the folder") from None
    foreign = sorted(name for name in names if not is_temporary(name) and not owns(out / name))
    if foreign:
        held = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise GraphSSLError(f"--out {_shown(out)} holds {held}, not written by graphssl {command}; choose a new or "
                            f"empty folder (files of other runs are never replaced)")
    return make_folder(out)


def starts_with(path: Path, text: str) -> bool:
    """Whether the file ``path`` begins with ``text`` (how a command recognises a file it wrote).

    Returns:
        ``False`` too when it cannot be read.

    Example:
        >>> starts_with(Path("README.md"), "# graphssl")  # doctest: +SKIP
        True
    """
    try:
        with open(path, "rb") as handle:
            return handle.read(len(text.encode())) == text.encode()
    except OSError:
        return False
