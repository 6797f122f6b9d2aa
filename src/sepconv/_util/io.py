"""Atomic writes: a failed or killed run never leaves a half-written file in place of a good one.

Every file sepconv writes goes through :func:`atomic_write` (written into a temporary folder beside
the target, ``.NAME.PID.XXXX.tmp/NAME``, flushed to disk, then renamed over the target); an
``OSError`` on the way (no permission, a full disk, a file too large, a directory in the way)
leaves no temporary file and the old file untouched, and is raised again, same type and errno,
with the path and what sepconv was doing. :func:`atomic_write_files` writes several files that
belong together (a checkpoint's tensors and its sidecar): every one is written and flushed before
the first is renamed, so a failure while writing changes none of them (the folders it had to make
are removed again, when empty). A run killed outright
(SIGKILL) can leave its temporary folder behind; the folder's name carries the writer's process
id, and the next write to the same target, or :func:`check_output` of it, removes those whose
writer is gone (:func:`remove_stale_temporaries`). A temporary *folder* rather than a file, so that
a writer that itself writes through a temporary file beside its target (safetensors' ``save_file``
does, ``.tmpXXXXXX``) leaves that inside it too.

:func:`check_output` checks an output path *before* the work that produces it starts.

Example::

    >>> atomic_write_text("out/report.json", "{}\\n")
    >>> check_output("out/report.json", "json", overwrite=False)
    Traceback (most recent call last):
    ArgumentError: json='out/report.json' already exists; pass overwrite=True to replace it
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from .checks import ArgumentError

__all__ = ["atomic_write", "atomic_write_files", "atomic_write_text", "check_output", "file_sha256",
           "remove_stale_temporaries"]

_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")


def atomic_write(path: str | Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file over ``path`` (see the module
    docstring for what a failure leaves behind)."""
    atomic_write_files({path: write})


def atomic_write_files(writes: Mapping[str | Path, Callable[[str], None]]) -> None:
    """Write every ``path: write`` of ``writes`` (in order, each ``write(tmp_path)``) to a temporary
    file and flush it, then rename them over their targets, in order: a failure while writing
    leaves every target as it was."""
    staged: list[tuple[Path, Path]] = []  # (temporary file, target)
    folders: list[Path] = []
    made: list[Path] = []  # the missing folders above a target that this write made, outermost first
    current = None
    try:
        for target, write in writes.items():
            current = path = Path(target)
            if path.is_dir():
                raise IsADirectoryError(21, "Is a directory", str(path))
            missing = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
            path.parent.mkdir(parents=True, exist_ok=True)
            made.extend(reversed(missing))
            remove_stale_temporaries(path)
            folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent))
            folders.append(folder)
            tmp = folder / path.name
            write(str(tmp))
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            # a plain open() gives 0666 less the umask; mkstemp-style writers (safetensors) give 0600
            os.chmod(tmp, 0o666 & ~_umask())
            staged.append((tmp, path))
        for tmp, path in staged:
            current = path
            os.replace(tmp, path)
    except BaseException as err:
        _remove_empty(folders, made)
        if isinstance(err, OSError) and not getattr(err, "sepconv_context", False) and current is not None:
            raise _with_context(err, f"could not write {current}",
                                hide=str(current.parent / f".{current.name}.")) from err
        raise
    finally:
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)


def _remove_empty(temporaries: list[Path], made: list[Path]) -> None:
    """After a failed write: its temporary folders, then the folders it made, if nothing else is in them."""
    for folder in temporaries:
        shutil.rmtree(folder, ignore_errors=True)
    for folder in reversed(made):
        try:
            folder.rmdir()
        except OSError:
            pass  # something else is in it now: not ours alone to remove


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporary folders (and files) that writes of ``path`` — or, for a directory
    ``path``, writes of anything in it — left behind when their process was killed: those whose
    name gives a process id that no longer runs. Returns what was removed."""
    path = Path(path)
    folder, name = (path, None) if path.is_dir() else (path.parent, path.name)
    removed = []
    try:
        candidates = list(folder.glob(".*.tmp"))
    except OSError:
        return removed
    for p in candidates:
        match = _TEMPORARY.match(p.name)
        if match is None or (name is not None and match["name"] != name) or _running(int(match["pid"])):
            continue
        try:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            removed.append(p)
        except OSError:
            pass  # not ours to remove (permissions): left as it is
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process (or a pid we cannot ask about): leave its files alone
    return True


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
    that much free space there. Raises :class:`ArgumentError` naming the argument and the path.
    What a killed earlier write of ``path`` left behind is removed (:func:`remove_stale_temporaries`)."""
    path = Path(path)
    remove_stale_temporaries(path)
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


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of the file's bytes, in hex (read in 1 MiB chunks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
