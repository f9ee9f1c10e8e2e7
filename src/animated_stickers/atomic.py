"""Atomic writes: a temp file (or folder) beside the target, renamed onto it only when complete.

Readers never see half a file, and an error or Ctrl-C mid-write leaves the old file (if any) as it
was and no temp file behind. Temp names are hidden and end in ".part" (`is_partial` spots them).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

PARTIAL_SUFFIX = ".part"


def is_partial(path: Path) -> bool:
    """True for the temp name of a write in progress (or one killed by power loss)."""
    return path.name.startswith(".") and path.name.endswith(PARTIAL_SUFFIX)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, folder: bool = False, fsync: bool = False,
                mode: int = 0o644) -> Iterator[Path]:
    """Yield a fresh temp path in `path`'s folder (a file, or an empty folder with `folder`); when the
    block ends normally it is renamed onto `path` (a file is replaced; an existing folder is removed
    first). On any exception, KeyboardInterrupt included, the temp is deleted and the error re-raised.
    `fsync` flushes a file to disk before the rename (for state a crash must not lose)."""
    path = Path(path)
    parent = path.parent
    prefix, suffix = f".{path.name}.", PARTIAL_SUFFIX
    if folder:
        tmp = Path(tempfile.mkdtemp(dir=parent, prefix=prefix, suffix=suffix))
    else:
        fd, name = tempfile.mkstemp(dir=parent, prefix=prefix, suffix=suffix)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if folder:
            shutil.rmtree(path, ignore_errors=True)
        else:
            if fsync:
                _fsync(tmp)
            os.chmod(tmp, mode)  # mkstemp makes 0600 files; outputs are meant to be shared
        os.replace(tmp, path)
    finally:
        if folder:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes, *, fsync: bool = False) -> Path:
    """Write `data` to `path` atomically; returns `path`."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str, *, fsync: bool = False) -> Path:
    """Write `text` (UTF-8) to `path` atomically; returns `path`."""
    with atomic_path(path, fsync=fsync) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
