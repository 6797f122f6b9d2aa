"""sepconv._util.io: atomic writes give ordinary file modes, keep what was there on failure and leave
no temporary file behind; a missing directory is made."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from sepconv._util.checks import ArgumentError
from sepconv._util.io import atomic_write, atomic_write_text, check_output


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
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".out.bin.") and seen[0].suffix == ".tmp"
    assert not seen[0].exists() and (tmp_path / "out.bin").read_bytes() == b"new"


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
