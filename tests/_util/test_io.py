"""sepconv._util.io: atomic writes give ordinary file modes, keep what was there on failure and leave
no temporary file behind; a missing directory is made."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from sepconv._util.checks import ArgumentError
from sepconv._util.io import atomic_write, atomic_write_files, atomic_write_text, check_output, remove_stale_temporaries


def test_atomic_write_gives_the_mode_a_plain_write_would(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_text(tmp_path / "atomic.txt", "x")
    mode = stat.S_IMODE(os.stat(tmp_path / "atomic.txt").st_mode)
    assert mode == stat.S_IMODE(os.stat(plain).st_mode) != 0o600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"previous")

    def fail(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, fail)
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]


def test_atomic_write_text_replaces_the_content_and_makes_missing_directories(tmp_path):
    target = tmp_path / "a" / "b" / "report.json"
    atomic_write_text(target, "{}\n")
    assert target.read_text() == "{}\n"
    atomic_write_text(target, "[1]\n")
    assert target.read_text() == "[1]\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.json"]


def test_the_mode_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "private.txt", "x")
        after = os.umask(0o027)  # reading the umask means setting it: the write put it straight back
    finally:
        os.umask(old)
    assert after == 0o027
    assert stat.S_IMODE(os.stat(tmp_path / "private.txt").st_mode) == 0o640


def test_the_write_goes_to_a_temporary_file_beside_the_target(tmp_path):
    seen = []

    def write(tmp: str) -> None:
        seen.append(Path(tmp))
        assert not (tmp_path / "out.bin").exists()  # nothing at the target until the rename
        Path(tmp).write_bytes(b"new")

    atomic_write(tmp_path / "out.bin", write)
    folder = seen[0].parent  # a temporary folder beside the target, named for it and this process
    assert folder.parent == tmp_path and folder.name.startswith(f".out.bin.{os.getpid()}.") and folder.suffix == ".tmp"
    assert seen[0].name == "out.bin"  # the target's own name (and suffix) inside it
    assert not folder.exists() and (tmp_path / "out.bin").read_bytes() == b"new"


@pytest.mark.parametrize("error", [KeyboardInterrupt, ValueError])
def test_a_failure_before_anything_was_written_leaves_nothing_new(tmp_path, error):
    def fail(tmp: str) -> None:
        raise error("stopped")

    with pytest.raises(error):
        atomic_write(tmp_path / "new.txt", fail)
    assert list(tmp_path.iterdir()) == []  # no target, no temporary file


def _only(folder):
    return sorted(p.name for p in folder.iterdir())


def test_a_directory_in_the_way_is_an_is_a_directory_error_with_the_path(tmp_path):
    (tmp_path / "out.json").mkdir()
    with pytest.raises(IsADirectoryError, match=r"could not write .*out\.json: Is a directory"):
        atomic_write_text(tmp_path / "out.json", "{}")
    assert _only(tmp_path) == ["out.json"]


@pytest.mark.parametrize("error", [PermissionError(errno.EACCES, "Permission denied"),
                                   OSError(errno.ENOSPC, "No space left on device")])
def test_an_os_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, error):
    target = tmp_path / "model.json"
    target.write_text("old")

    def fail(tmp):
        Path(tmp).write_text("half")
        raise error

    with pytest.raises(type(error), match=rf"could not write .*model\.json: {error.strerror}") as info:
        atomic_write(target, fail)
    assert info.value.errno == error.errno
    assert target.read_text() == "old" and _only(tmp_path) == ["model.json"]


def test_a_failed_rename_leaves_no_temporary(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(dst))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(PermissionError, match="could not write"):
        atomic_write_text(tmp_path / "a.txt", "x")
    assert _only(tmp_path) == []


def test_check_output_before_any_work(tmp_path, monkeypatch):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file.txt").write_text("mine")
    with pytest.raises(ArgumentError, match=r"json='.*dir' is a directory; give a file path") as info:
        check_output(tmp_path / "dir", "json")
    assert info.value.argument == "json"
    with pytest.raises(ArgumentError, match=r"is a file; give a directory"):
        check_output(tmp_path / "file.txt", "out", directory=True)
    with pytest.raises(ArgumentError, match=r"already exists; pass overwrite=True to replace it"):
        check_output(tmp_path / "file.txt", "out", overwrite=False)
    with pytest.raises(ArgumentError, match=r"already exists"):
        check_output(tmp_path, "out", directory=True, overwrite=False)  # a non-empty folder
    (tmp_path / "empty").mkdir()
    assert check_output(tmp_path / "empty", "out", directory=True, overwrite=False) == tmp_path / "empty"
    assert check_output(tmp_path / "new" / "deeper" / "x.json", "json") == tmp_path / "new" / "deeper" / "x.json"
    with pytest.raises(ArgumentError, match=r"is not a directory"):
        check_output(tmp_path / "file.txt" / "x.json", "json")
    with pytest.raises(ArgumentError, match=r"bytes but .* free"):
        check_output(tmp_path / "big.bin", "out", need_bytes=2**62)
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as an unprivileged user in a read-only folder
    with pytest.raises(ArgumentError, match=r"cannot write in .* \(permission denied\)"):
        check_output(tmp_path / "x.json", "json")


def test_files_that_belong_together_are_all_written_before_any_is_renamed(tmp_path):
    (tmp_path / "m.safetensors").write_bytes(b"old tensors")
    (tmp_path / "m.json").write_text("old sidecar")

    def full(tmp):
        Path(tmp).write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=r"could not write .*m\.json: No space left on device"):
        atomic_write_files({tmp_path / "m.safetensors": lambda t: Path(t).write_bytes(b"new"),
                            tmp_path / "m.json": full})
    assert (tmp_path / "m.safetensors").read_bytes() == b"old tensors"  # the first was written, never renamed
    assert _only(tmp_path) == ["m.json", "m.safetensors"]
    atomic_write_files({tmp_path / "m.safetensors": lambda t: Path(t).write_bytes(b"new"),
                        tmp_path / "m.json": lambda t: Path(t).write_text("new")})
    assert (tmp_path / "m.safetensors").read_bytes() == b"new" and (tmp_path / "m.json").read_text() == "new"


def test_what_a_killed_writer_left_is_removed_by_the_next_write(tmp_path):
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)  # a process id that no longer runs
    stale = tmp_path / f".out.json.{dead}.ab12_z.tmp"
    stale.mkdir()
    (stale / "out.json").write_text("half")
    (stale / ".tmpAbC123").write_text("safetensors' own, inside")
    other = tmp_path / f".other.json.{dead}.cd34.tmp"  # another target's: left for its own next write
    other.mkdir()
    alive = tmp_path / f".out.json.{os.getppid()}.ef56.tmp"  # a writer that still runs: left alone
    alive.mkdir()
    atomic_write_text(tmp_path / "out.json", "{}")
    assert _only(tmp_path) == sorted([other.name, alive.name, "out.json"])
    assert check_output(tmp_path / "other.json", "json") and not other.exists()  # the check clears them too
    assert remove_stale_temporaries(tmp_path) == []  # nothing stale is left in the folder


def test_a_failed_write_removes_the_folders_it_made(tmp_path):
    def full(tmp):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(tmp_path / "run" / "deeper" / "model.safetensors", full)
    assert _only(tmp_path) == []
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(OSError, match="No space left"):
        atomic_write(tmp_path / "run" / "deeper" / "model.safetensors", full)
    assert _only(tmp_path / "run") == ["notes.txt"]  # the folder that was there stays
