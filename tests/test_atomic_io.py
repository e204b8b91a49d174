"""Atomic writes follow the umask and never leave a half-written file."""
import os
import stat

import pytest

from movinet_tf import atomic_io


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_and_folders_get_the_umask_modes(tmp_path, umask_022):
    atomic_io.write_text(tmp_path / "a.txt", "hello")
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert _mode(tmp_path / "a.txt") == 0o644
    with atomic_io.temporary_dir(tmp_path / "tree") as tmp:
        os.makedirs(os.path.join(tmp, "sub"))
        with open(os.path.join(tmp, "sub", "f"), "w") as f:
            f.write("x")
        os.chmod(os.path.join(tmp, "sub", "f"), 0o600)
    atomic_io.replace_dir(tmp, tmp_path / "tree")
    assert _mode(tmp_path / "tree") == 0o755
    assert _mode(tmp_path / "tree" / "sub") == 0o755
    assert _mode(tmp_path / "tree" / "sub" / "f") == 0o644
    os.umask(0o077)
    atomic_io.write_bytes(tmp_path / "b.bin", b"\x00")
    assert _mode(tmp_path / "b.bin") == 0o600


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "model.tflite"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError):
        with atomic_io.temporary_path(target) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise RuntimeError("killed")
    assert target.read_bytes() == b"good"
    assert sorted(os.listdir(tmp_path)) == ["model.tflite"]


def test_replace_dir_swaps_a_tree_in(tmp_path):
    old = tmp_path / "saved"
    old.mkdir()
    (old / "old_file").write_text("old")
    with atomic_io.temporary_dir(old) as tmp:
        with open(os.path.join(tmp, "new_file"), "w") as f:
            f.write("new")
    atomic_io.replace_dir(tmp, old)
    assert sorted(os.listdir(old)) == ["new_file"]
    assert sorted(os.listdir(tmp_path)) == ["saved"]
