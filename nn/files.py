"""Safe file writes: every file the library or its command line writes goes through ``safe_write``.

It lives in nn/ so that nn (``Module.save``) and viz (pictures, graphs) share it; viz may import
nn, never the reverse. The rules, each one a bug someone met:

- only a regular file (or a path that does not exist yet) is replaced: a save onto /dev/null, a
  FIFO or a directory is refused, where a rename would have put a regular file in its place;
- a symlink is followed: its target gets the new bytes and the link stays a link;
- an existing file keeps its permission bits (and, where allowed, its owner); a new one gets
  what a plain ``open()`` would give it (0666 less the umask);
- the bytes go to a temporary file beside the target, flushed to disk, then renamed over it, so
  a failed or interrupted write (a full disk, an exception in the middle) leaves the old file
  whole and no temporary file behind;
- every error names the path the caller gave, never the temporary file's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["check_target", "safe_write", "write_bytes"]


@contextmanager
def safe_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Open a binary file that replaces ``path`` when the ``with`` block ends without an error.

    Use as ``with safe_write("model.safetensors") as f: f.write(data)``. Nothing at ``path``
    changes until the block has finished: if it raises, ``path`` is left as it was and the
    temporary file is removed.

    Raises:
        IsADirectoryError: ``path`` is a directory.
        OSError: ``path`` exists and is not a regular file (a device, a FIFO, a socket), or its
            folder is missing or cannot be written, or the disk is full; ``filename`` is
            ``path`` as given, and so is the path in the message.
    """
    shown = os.fspath(path)
    target, info = _resolve(shown)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as e:
        raise _naming(e, shown) from None
    try:
        try:
            if info is not None:
                os.chmod(tmp, stat.S_IMODE(info.st_mode))
                if (info.st_uid, info.st_gid) != (os.getuid(), os.getgid()):
                    # only root may give a file away
                    with contextlib.suppress(PermissionError):
                        os.chown(tmp, info.st_uid, info.st_gid)
            else:
                # mkstemp makes the file private (0600); give it the mode a plain open() would
                os.chmod(tmp, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except OSError as e:
            raise _naming(e, shown) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_target(path: str | os.PathLike[str]) -> None:
    """Raise the error ``safe_write(path)`` would raise for a target it will not replace.

    For a check before a run of writes (a picture and its source), so that none is written
    when one would be refused. Raises IsADirectoryError or OSError as ``safe_write`` does.
    """
    _resolve(os.fspath(path))


def _resolve(shown: str) -> tuple[Path, os.stat_result | None]:
    """The file ``shown`` names, through any symlinks, and its stat (None when it is new)."""
    # Through a symlink (or a chain of them) to the file it names: replacing the link itself
    # would turn it into a regular file and leave its target stale.
    target = Path(os.path.realpath(shown))
    try:
        info: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        info = None
    except OSError as e:
        raise _naming(e, shown) from None
    if info is not None and not stat.S_ISREG(info.st_mode):
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "it is a directory, not a file", shown)
        raise OSError(
            errno.EINVAL,
            f"it is {_kind(info.st_mode)}, not a regular file, and will not be replaced",
            shown,
        )
    return target, info


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` by the rules of ``safe_write`` and return ``path`` as a Path.

    Raises OSError as ``safe_write`` does.
    """
    with safe_write(path) as f:
        f.write(data)
    return Path(path)


def _naming(e: OSError, shown: str) -> OSError:
    """The same error (same class and errno) with the caller's path as its file name."""
    if e.errno is None:
        return OSError(f"{shown}: {e}")
    return OSError(e.errno, e.strerror or os.strerror(e.errno), shown)


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "something other than a file"


def _umask() -> int:
    # The only portable way to read the umask is to set it and put it back.
    mask = os.umask(0)
    os.umask(mask)
    return mask
