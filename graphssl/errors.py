"""Errors a user can act on, and the library warnings that are not theirs to act on.

The CLI turns each of these errors into a single line on stderr and the exit
status named here, never a traceback; library callers catch them like any exception.
"""

import re
import sys
import warnings

from tqdm import tqdm


def warn(message: str) -> None:
    """One ``graphssl: warning: ...`` line on stderr, above any progress bar rather than through it.

    Example:
        >>> warn("nothing to worry about")  # doctest: +SKIP
    """
    tqdm.write(f"graphssl: warning: {message}", file=sys.stderr)


def reason(error: BaseException) -> str:
    """Why reading or writing failed, for a message that names the path itself: an OS error's own words
    ("No such file or directory", without the errno and path), else :func:`first_line`.

    Returns:
        A short phrase.

    Example:
        >>> reason(FileNotFoundError(2, "No such file or directory", "x.json"))
        'No such file or directory'
    """
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return first_line(error)


def first_line(error: BaseException, limit: int = 160) -> str:
    """What a one-line message quotes of another library's exception.

    Returns:
        The first line of ``error``'s message (with the next one when it ends in a colon that introduces
        it), cut to whole sentences (or whole words and "…") within ``limit`` characters, or the exception's
        type name when it has no message.

    Example:
        >>> first_line(RuntimeError("size mismatch for weight\\n  copying a param ..."))
        'size mismatch for weight'
        >>> first_line(RuntimeError("Error(s) in loading state_dict:\\n\\tsize mismatch for weight"))
        'Error(s) in loading state_dict: size mismatch for weight'
        >>> first_line(RuntimeError("failed finding central directory. This is an internal error. If you"), 64)
        'failed finding central directory. This is an internal error.'
    """
    lines = [line.strip() for line in str(error).strip().splitlines()]
    if not lines or not lines[0]:
        return type(error).__name__
    text = f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]
    if len(text) <= limit:
        return text
    sentence_end = text.rfind(". ", 0, limit)  # whole sentences, never a word cut in two
    if sentence_end > 0:
        return text[:sentence_end + 1]
    cut = text[:limit - 1]
    return (cut if text[limit - 1] == " " else cut.rsplit(" ", 1)[0]) + "…"


def load_refusal(error: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused a file, in a few words: the callable its pickle would
    have run (torch's own message on that runs to a page), else :func:`first_line`.

    Returns:
        The reason, to quote in a one-line message.

    Example:
        >>> load_refusal(RuntimeError("Weights only load failed. ...\\n Unsupported global: GLOBAL posix.system was ..."))
        'it would call posix.system: not plain data'
    """
    named = re.search(r"GLOBAL ([\w.]+)", str(error))
    return f"it would call {named.group(1)}: not plain data" if named else first_line(error)


class GraphSSLError(Exception):
    """Bad input: the message names the problem and the fix (exit status 2)."""

    exit_code = 2


class NotAsWritten(GraphSSLError):
    """A run's file that reads but is not as graphssl wrote it (edited, truncated, another program's): its
    ``path``, the ``problem`` in a few words, and what to give instead (exit status 2).

    Example:
        >>> print(NotAsWritten("run/log.csv", "row 3 has no step"))
        run/log.csv: row 3 has no step, so it is not as graphssl wrote it; give folders written by 'graphssl train' or 'graphssl bench' (or re-run that command)
    """

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}, so it is not as graphssl wrote it; give folders written by "
                         f"'graphssl train' or 'graphssl bench' (or re-run that command)")
        self.path, self.problem = path, problem


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
