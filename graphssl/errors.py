"""Errors a user can act on, and the library warnings that are not theirs to act on.

The CLI turns each of these errors into a single line on stderr and the exit
status named here, never a traceback; library callers catch them like any exception.
"""

import warnings


def first_line(error: BaseException, limit: int = 160) -> str:
    """What a one-line message quotes of another library's exception.

    Returns:
        The first line of ``error``'s message, at most ``limit`` characters, or the
        exception's type name when it has no message.

    Example:
        >>> first_line(RuntimeError("size mismatch for weight\\n  copying a param ..."))
        'size mismatch for weight'
    """
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__


class GraphSSLError(Exception):
    """Bad input: the message names the problem and the fix (exit status 2)."""

    exit_code = 2


class WriteFailed(GraphSSLError):
    """An output could not be written (full disk, read-only file system, bad path); what was there before is
    intact (exit status 2)."""


class DivergenceError(GraphSSLError):
    """Training produced a non-finite loss or penalty (exit status 3)."""

    exit_code = 3


class Interrupted(GraphSSLError):
    """The user stopped the run (Ctrl-C); the message says how to resume (exit status 130)."""

    exit_code = 130


class PeerFailed(GraphSSLError):
    """Another rank of a distributed job failed, so this one cannot go on (exit status 1)."""

    exit_code = 1


def silence_known_warnings() -> None:
    """Hide torch's notes on its sparse CSR support, printed on every run and of no use to a user.

    Example:
        >>> silence_known_warnings()
    """
    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
    warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly disabled")
