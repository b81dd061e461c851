"""Every file the command line writes follows nn.files.safe_write: `graph -o` and the demo's
pictures refuse what is not a regular file, keep symlinks and permissions, leave the old file
on a full disk, and say so in one line naming the user's path, exit code 1. And --version."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from backproplab.viz.cli import main

from backproplab import __version__

EXPR = ["graph", "x*y + 1", "--var", "x=2", "--var", "y=3"]


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert ".tmp" not in err, err  # never the temporary file's name
    return err.strip()


def full_disk(*args: Any) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"backproplab {version('backproplab')}\n"
    assert __version__ == version("backproplab")


def test_version_from_the_installed_script() -> None:
    script = Path(sys.executable).with_name("backproplab")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"backproplab {__version__}\n", "")


@pytest.mark.parametrize("name", ["g.gv", "g.svg"])
def test_graph_onto_a_fifo_exits_1_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    fifo = tmp_path / name
    os.mkfifo(fifo)
    assert main([*EXPR, "-o", str(fifo)]) == 1
    err = one_line(capsys.readouterr().err)
    assert err == (
        f"backproplab graph: error: cannot write {fifo}: it is a FIFO (named pipe), not a "
        "regular file, and will not be replaced"
    )
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    # Checked before anything is written: not even the .gv source beside the picture.
    assert os.listdir(tmp_path) == [name]


def test_graph_onto_a_directory_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "g.gv").mkdir()
    assert main([*EXPR, "-o", str(tmp_path / "g.svg")]) == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith(f"backproplab graph: error: cannot write {tmp_path / 'g.gv'}: ")
    assert "directory" in err
    assert os.listdir(tmp_path) == ["g.gv"]


def test_graph_on_a_full_disk_keeps_the_old_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "g.gv"
    path.write_text("the old graph\n")
    monkeypatch.setattr(os, "fsync", full_disk)
    assert main([*EXPR, "-o", str(path)]) == 1
    monkeypatch.undo()
    err = one_line(capsys.readouterr().err)
    assert err == f"backproplab graph: error: cannot write {path}: No space left on device"
    assert path.read_text() == "the old graph\n"
    assert os.listdir(tmp_path) == ["g.gv"]


def test_graph_through_a_symlink_keeps_the_link_and_the_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "real.gv"
    real.write_text("old\n")
    real.chmod(0o600)
    link = tmp_path / "link.gv"
    link.symlink_to(real)
    assert main([*EXPR, "-o", str(link)]) == 0
    assert link.is_symlink()
    assert "digraph" in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["link.gv", "real.gv"]


def test_demo_picture_onto_a_fifo_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib")
    fifo = tmp_path / "circle_loss.png"
    os.mkfifo(fifo)
    code = main(["demo", "circle", "--engine", "tensor", "--steps", "2", "--out", str(tmp_path)])
    assert code == 1
    err = one_line(capsys.readouterr().err)
    assert err == (
        f"backproplab: error: cannot write {fifo}: it is a FIFO (named pipe), not a regular "
        "file, and will not be replaced"
    )
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_demo_pictures_on_a_full_disk_keep_the_old_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("matplotlib")
    old = tmp_path / "circle_loss.png"
    old.write_bytes(b"the old picture")
    old.chmod(0o640)
    monkeypatch.setattr(os, "fsync", full_disk)
    code = main(["demo", "circle", "--engine", "tensor", "--steps", "2", "--out", str(tmp_path)])
    monkeypatch.undo()
    assert code == 1
    err = one_line(capsys.readouterr().err)
    assert err == f"backproplab: error: cannot write {old}: No space left on device"
    assert old.read_bytes() == b"the old picture"
    assert os.listdir(tmp_path) == ["circle_loss.png"]
