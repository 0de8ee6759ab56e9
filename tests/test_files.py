"""fewlabels.files: every OS and decoding error on a user's file becomes one sentence naming it."""

import errno
import os

import numpy as np
import pytest

from fewlabels import files
from fewlabels.errors import UserError


@pytest.mark.parametrize("code, words", [
    (errno.EACCES, "permission denied"), (errno.EPERM, "permission denied"), (errno.ENOSPC, "the disk is full"),
    (errno.EROFS, "the file system is read-only"), (errno.EISDIR, "it is a folder, not a file"),
    (errno.ENOTDIR, "a part of its path is a file, not a folder"), (errno.ENAMETOOLONG, "its name is too long"),
])
def test_user_file_words_the_os_error_and_names_the_file(code, words):
    with pytest.raises(UserError) as e, files.user_file("runs/a/x.npy", "output file", "written", "try another"):
        raise OSError(code, os.strerror(code), "runs/a/x.npy")
    assert str(e.value) == f"output file 'runs/a/x.npy' could not be written ({words}); try another"


def test_a_missing_file_and_a_missing_folder_are_told_apart(tmp_path):
    with pytest.raises(UserError, match=r"could not be read \(it does not exist\)"):
        files.read_text(tmp_path / "nope.yaml", "config file")
    with pytest.raises(UserError, match=r"could not be written \(its folder '.*nodir' does not exist\)"):
        files.write_text_atomic(tmp_path / "nodir" / "x.txt", "x", "output file")


def test_read_text_refuses_bytes_that_are_not_utf8(tmp_path):
    (tmp_path / "c.yaml").write_bytes(b"ab\xffcd")
    with pytest.raises(UserError, match=r"c.yaml' could not be read \(it is not UTF-8 text: byte 0xff at position 2"):
        files.read_text(tmp_path / "c.yaml", "config file")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "summary.json"
    target.write_text("old")

    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(UserError, match="the disk is full"):
        files.write_text_atomic(target, "new", "run summary")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_save_npy_atomic_writes_exactly_the_named_file(tmp_path):
    files.save_npy_atomic(tmp_path / "s.npy", np.arange(6, dtype=np.float32).reshape(3, 2), "output file")
    assert [p.name for p in tmp_path.iterdir()] == ["s.npy"]
    assert np.load(tmp_path / "s.npy").tolist() == [[0, 1], [2, 3], [4, 5]]


def test_check_writable_refuses_before_any_work(tmp_path):
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(UserError, match="it is a folder"):
        files.check_writable(tmp_path / "d.npy", "output file")
    with pytest.raises(UserError, match="its folder .* does not exist"):
        files.check_writable(tmp_path / "no" / "x.npy", "output file")
    files.check_writable(tmp_path / "x.npy", "output file")


def test_a_stray_error_is_worded_only_when_it_can_be():
    assert "'x.png' could not be used (the disk is full)" in str(files.stray(OSError(errno.ENOSPC, "full", "x.png")))
    assert "free disk space" in str(files.stray(OSError(errno.ENOSPC, "No space left on device")))
    assert files.stray(OSError(errno.EIO, "I/O error")) is None  # nothing to name: let the traceback show


def test_npz_snapshots_are_written_atomically_and_a_cut_one_reads_as_none(tmp_path):
    path = files.save_npz_atomic(tmp_path / "snapshot.npz", "sample snapshot", step=np.array(3), x=np.ones((2, 2)))
    assert [p.name for p in tmp_path.iterdir()] == ["snapshot.npz"]
    back = files.read_npz(path)
    assert int(back["step"]) == 3 and back["x"].shape == (2, 2)
    path.write_bytes(path.read_bytes()[:100])
    assert files.read_npz(path) is None
    assert files.read_npz(tmp_path / "missing.npz") is None
    assert files.read_npz(tmp_path) is None
