"""Safe writes (nn.files.safe_write), through Module.save: what is not a regular file is never
replaced, symlinks and permissions survive, a failed save leaves the old file and no temporary
file, and every error names the user's path."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backproplab.nn.files import check_target, safe_write, write_bytes
from backproplab.nn.layers import MLP

AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def model(seed: int = 1) -> MLP:
    return MLP(2, 3, [4], "tanh", seed=seed)


def no_temp_files(folder: Path, *expected: str) -> None:
    assert sorted(os.listdir(folder)) == sorted(expected)


# --- targets that are not regular files ---------------------------------------------------------


@pytest.mark.parametrize("name", ["m.safetensors", "m.npz"])
def test_a_fifo_is_refused_and_stays_a_fifo(tmp_path: Path, name: str) -> None:
    fifo = tmp_path / name
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="FIFO") as e:
        model().save(fifo)
    assert e.value.filename == str(fifo)
    assert str(fifo) in str(e.value) and ".tmp" not in str(e.value)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    no_temp_files(tmp_path, name)


def test_a_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "m.safetensors"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="directory") as e:
        model().save(folder)
    assert e.value.filename == str(folder)
    assert ".tmp" not in str(e.value)
    assert folder.is_dir() and list(folder.iterdir()) == []
    no_temp_files(tmp_path, "m.safetensors")


@pytest.mark.skipif(not AS_ROOT, reason="making a device node needs root")
def test_a_device_node_is_refused(tmp_path: Path) -> None:
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("this container may not make device nodes")
    with pytest.raises(OSError, match="a device, not a regular file") as e:
        model().save(node)
    assert e.value.filename == str(node)
    assert stat.S_ISCHR(os.lstat(node).st_mode)
    no_temp_files(tmp_path, "null")


@pytest.mark.skipif(not AS_ROOT, reason="only root could replace /dev/null")
def test_dev_null_is_refused_and_kept() -> None:
    # Before safe_write, this replaced /dev/null with a regular file when run as root.
    try:
        with pytest.raises(OSError, match="a device") as e:
            model().save("/dev/null")
        assert e.value.filename == "/dev/null"
    finally:
        if not stat.S_ISCHR(os.lstat("/dev/null").st_mode):  # put the machine right again
            os.remove("/dev/null")
            os.mknod("/dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
            os.chmod("/dev/null", 0o666)
            pytest.fail("save replaced /dev/null (it has been made again)")


def test_check_target_refuses_as_safe_write_does(tmp_path: Path) -> None:
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="FIFO"):
        check_target(fifo)
    with pytest.raises(IsADirectoryError):
        check_target(tmp_path)
    check_target(tmp_path / "new")  # a new file is fine
    (tmp_path / "old").write_bytes(b"x")
    check_target(tmp_path / "old")


# --- symlinks and permissions -------------------------------------------------------------------


def test_a_symlink_is_followed_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "weights" / "m.safetensors"
    real.parent.mkdir()
    model(seed=1).save(real)
    link = tmp_path / "latest.safetensors"
    link.symlink_to(real)
    model(seed=2).save(link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    loaded = model(seed=3)
    loaded.load(real)
    np.testing.assert_array_equal(loaded.layers[0].weight.data, model(seed=2).layers[0].weight.data)
    no_temp_files(real.parent, "m.safetensors")
    no_temp_files(tmp_path, "weights", "latest.safetensors")


def test_a_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "m.safetensors"
    link.symlink_to(tmp_path / "target.safetensors")
    model().save(link)
    assert link.is_symlink() and (tmp_path / "target.safetensors").is_file()


def test_a_symlink_to_a_fifo_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    link = tmp_path / "m.safetensors"
    link.symlink_to(tmp_path / "fifo")
    with pytest.raises(OSError, match="FIFO") as e:
        model().save(link)
    assert e.value.filename == str(link)
    assert link.is_symlink() and stat.S_ISFIFO(os.stat(link).st_mode)


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444])
def test_an_existing_file_keeps_its_permissions(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "m.safetensors"
    model(seed=1).save(path)
    os.chmod(path, mode)
    model(seed=2).save(path)  # a read-only file is replaced as `mv` would: the folder allows it
    assert stat.S_IMODE(os.stat(path).st_mode) == mode


def test_a_new_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o027)
    try:
        model().save(tmp_path / "m.safetensors")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "m.safetensors").st_mode) == 0o640


@pytest.mark.skipif(not AS_ROOT, reason="giving a file away needs root")
def test_an_existing_file_keeps_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    model(seed=1).save(path)
    os.chown(path, 1234, 5678)
    model(seed=2).save(path)
    assert (os.stat(path).st_uid, os.stat(path).st_gid) == (1234, 5678)


# --- failed saves -------------------------------------------------------------------------------


def full_disk(*args: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("name", ["m.safetensors", "m.npz"])
def test_a_full_disk_leaves_the_old_file_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    path = tmp_path / name
    model(seed=1).save(path)
    old = path.read_bytes()
    monkeypatch.setattr(os, "fsync", full_disk)  # the data is flushed: the disk says full
    with pytest.raises(OSError) as e:
        model(seed=2).save(path)
    monkeypatch.undo()
    assert e.value.errno == errno.ENOSPC
    assert e.value.filename == str(path)
    assert "No space left on device" in str(e.value) and ".tmp" not in str(e.value)
    assert path.read_bytes() == old
    no_temp_files(tmp_path, name)


def test_an_interrupted_save_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "m.bin"
    path.write_bytes(b"the old weights")
    with pytest.raises(KeyboardInterrupt), safe_write(path) as f:
        f.write(b"half of the new")
        raise KeyboardInterrupt
    assert path.read_bytes() == b"the old weights"
    no_temp_files(tmp_path, "m.bin")


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "m.safetensors"
    with pytest.raises(FileNotFoundError) as e:
        model().save(path)
    assert e.value.filename == str(path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(AS_ROOT, reason="root may write into a read-only folder")
def test_a_read_only_folder_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(PermissionError) as e:
            write_bytes(folder / "x", b"data")
        assert e.value.filename == str(folder / "x")
    finally:
        folder.chmod(0o700)
