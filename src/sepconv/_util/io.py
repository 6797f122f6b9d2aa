"""Atomic writes: a failed or killed run never leaves a half-written file in place of a good one.

Every file sepconv writes goes through :func:`atomic_write` (a temporary file in the same
directory, flushed to disk, then renamed over the target); an ``OSError`` on the way (no
permission, a full disk, a directory in the way) leaves no temporary file and the old file
untouched, and is raised again, same type and errno, with the path and what sepconv was doing.
:func:`check_output` checks an output path *before* the work that produces it starts.

Example::

    >>> atomic_write_text("out/report.json", "{}\\n")
    >>> check_output("out/report.json", "json", overwrite=False)
    Traceback (most recent call last):
    ArgumentError: json='out/report.json' already exists; pass overwrite=True to replace it
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .checks import ArgumentError

__all__ = ["atomic_write", "atomic_write_text", "check_output"]


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file over ``path`` (see the module
    docstring for what a failure leaves behind)."""
    path = Path(path)
    tmp = None
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "Is a directory", str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; give it the mode a plain open() would (0666 less the umask)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and not getattr(err, "sepconv_context", False):
            raise _with_context(err, f"could not write {path}", hide=str(path.parent / f".{path.name}.")) from err
        raise


def _with_context(err: OSError, doing: str, hide: str | None = None) -> OSError:
    """The same kind of ``OSError`` (same errno), its message prefixed by what sepconv was doing
    (and the file it concerned, unless that is already said or is a temporary file starting ``hide``)."""
    reason = err.strerror or str(err)
    named = str(err.filename) if err.filename else None
    where = f" ({named})" if named and named not in doing and not (hide and named.startswith(hide)) else ""
    new = type(err)(err.errno, f"{doing}: {reason}{where}") if err.errno is not None else type(err)(f"{doing}: {err}")
    new.sepconv_context = True
    return new


def check_output(path: str | Path, argument: str, *, directory: bool = False, overwrite: bool = True,
                 need_bytes: int | None = None) -> Path:
    """Check, before any work, that ``path`` can be written as the output ``argument``: not a
    directory where a file is expected (or a file where a ``directory`` is), an existing one only
    with ``overwrite``, the nearest existing folder above it writable, and — with ``need_bytes`` —
    that much free space there. Raises :class:`ArgumentError` naming the argument and the path."""
    path = Path(path)
    if path.exists():
        if path.is_dir() != directory:
            kind = "a directory" if path.is_dir() else "a file"
            raise ArgumentError(argument, f"{argument}={str(path)!r} is {kind}; give "
                                          f"{'a directory' if directory else 'a file path'}")
        if not overwrite and (not directory or any(path.iterdir())):
            raise ArgumentError(argument, f"{argument}={str(path)!r} already exists; pass overwrite=True to "
                                          "replace it")
    folder = path if directory and path.is_dir() else path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ArgumentError(argument, f"{argument}={str(path)!r}: {str(folder)!r} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ArgumentError(argument, f"{argument}={str(path)!r}: cannot write in {str(folder)!r} (permission denied)")
    if need_bytes is not None:
        free = shutil.disk_usage(folder).free
        if need_bytes > free:
            raise ArgumentError(argument, f"{argument}={str(path)!r} needs about {need_bytes:,} bytes but "
                                          f"{str(folder)!r} has {free:,} free")
    return path


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))

