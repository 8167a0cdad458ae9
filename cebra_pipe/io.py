"""Atomic file writing (outputs are either complete or absent, never half-written) and
values made storable as JSON."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` on success.

    The temporary file keeps ``path``'s suffix (or ``suffix``) so that writers that
    choose a format by file name (pandas, numpy, h5py) behave as for ``path``. On any
    exception the temporary file is removed and ``path`` is left untouched.

    Raises
    ------
    NotADirectoryError
        A component of ``path``'s folder is a regular file (names that file).
    OSError with errno ENOSPC
        The write failed and the file system is full. Some writers report a full disk
        with an unrelated error (``torch.save``: a ``RuntimeError``; ``numpy.save``: an
        ``OSError`` without errno); those are turned into this one, naming ``path``.
    """
    path = Path(path)
    _make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix,
                               dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        # mkstemp creates 0600; results are shared (clusters, lab groups): use the umask.
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        full = (isinstance(err, RuntimeError) or (isinstance(err, OSError) and err.errno in
                (None, errno.ENOSPC))) and _disk_full(path.parent)
        tmp.unlink(missing_ok=True)
        if full or (isinstance(err, OSError) and err.errno == errno.ENOSPC):
            if not (isinstance(err, OSError) and err.errno == errno.ENOSPC and err.filename):
                detail = f" ({type(err).__name__}: {err})" if err.args else ""
                raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} while writing"
                              f"{detail}", str(path)) from err
        raise


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj)`` to ``path`` atomically, with the same bytes for the same ``obj``.

    torch names the zip's internal folder after the file name it is given; saved by name
    to :func:`atomic_write`'s randomly named temporary file, equal models would give
    different bytes (and provenance hashes). Given an open file instead, torch uses the
    fixed name ``archive``.
    """
    import torch

    with atomic_write(path) as tmp, open(tmp, "wb") as handle:
        torch.save(obj, handle)


def _make_folder(folder: Path) -> None:
    """``mkdir -p folder``, with an error naming the regular file in the way, if any."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()),
                       folder)
        raise NotADirectoryError(errno.ENOTDIR, "Cannot create the output folder: this path "
                                 "is a file, not a folder", str(blocker)) from err


def _disk_full(folder: Path) -> bool:
    """True when the file system holding ``folder`` has no free blocks left."""
    try:
        return os.statvfs(folder).f_bavail == 0
    except (AttributeError, OSError):  # no statvfs (Windows), or the folder is gone
        return False


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: dict keys as strings, tuples as lists, numpy
    scalars as Python numbers; a TypeError names any other object."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store {value!r} of type {type(value).__name__} as JSON")
