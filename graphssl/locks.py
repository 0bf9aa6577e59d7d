"""Exclusive locks between processes: one process writes a run folder, one processes a dataset.

A lock is a file holding its owner's process id, locked with ``flock``.  The
kernel drops the lock when its owner exits, however it exits, so a lock file
left by a killed process is stale and simply taken over; the id inside only
names the owner in messages.  The owner deletes the file when it is done.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import GraphSSLError


# Linux's largest possible process id (pid_max's ceiling).
PID_LIMIT = 1 << 22


def process_exists(pid: int) -> bool:
    """Whether a process with id ``pid`` runs now (any user's); a number no process id can be is ``False``.

    Example:
        >>> process_exists(os.getpid())
        True
    """
    if not 0 < pid < PID_LIMIT:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


class LockTaken(Exception):
    """Another live process holds the lock; ``pid`` is its process id when the lock file names it."""

    def __init__(self, path: Path, pid: int | None) -> None:
        super().__init__(f"{path} is held by process {pid if pid is not None else '(unknown)'}")
        self.path = path
        self.pid = pid


def _holder(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):  # gone since, or its owner has not written its id yet
        return None


def other_live_holder(path: str | Path) -> int | None:
    """The process id a lock file names, when that is a live process other than this one; else ``None``.

    For messages only, from a reader that takes no lock: a killed owner's id may have been reused since.

    Example:
        >>> other_live_holder("runs/cora-wr/.lock")  # doctest: +SKIP
        4242
    """
    pid = _holder(Path(path))
    return pid if pid is not None and pid != os.getpid() and process_exists(pid) else None


def _not_a_lock(path: Path) -> GraphSSLError:
    # Written through, a link would let graphssl truncate whatever file it points to.
    return GraphSSLError(f"{path} is not a lock file graphssl made (a symbolic link, a folder or a special file); "
                         f"remove it and run again")


def _acquire(path: Path, wait: bool) -> int | None:
    """A descriptor of ``path`` holding its lock, or ``None`` where nothing can be locked there."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.EISDIR):
                raise _not_a_lock(path) from None
            return None  # a read-only folder: nobody can write there either
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise _not_a_lock(path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise LockTaken(path, _holder(path)) from None
            return None
        # The previous owner deletes the file as it lets go: a lock on that deleted file guards nothing.
        try:
            opened = os.fstat(fd)
            current = os.stat(path)
            if (opened.st_dev, opened.st_ino) == (current.st_dev, current.st_ino):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextmanager
def exclusive_lock(path: str | Path, wait: bool) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` for the ``with`` block.

    ``wait``: wait for another holder to finish, else raise :class:`LockTaken` at once.  Where the
    file cannot be created (a read-only folder) or the filesystem has no locks, the block runs
    unlocked: nobody can write there, or nothing could stop them.  A symbolic link, folder or special
    file in the lock's place is a :class:`~graphssl.errors.GraphSSLError` (never written through).

    Yields:
        Nothing; the lock is held until the block ends.

    Example:
        >>> import tempfile
        >>> with exclusive_lock(Path(tempfile.mkdtemp()) / ".lock", wait=False):
        ...     pass
    """
    path = Path(path)
    fd = _acquire(path, wait)
    if fd is None:
        yield
        return
    try:
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:  # a full disk: the lock holds all the same, only its owner goes unnamed
            pass
        yield
    finally:
        try:
            os.unlink(path)
        except OSError:  # deleted with its folder, or the folder became read-only: closing still unlocks
            pass
        os.close(fd)
