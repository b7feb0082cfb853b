"""Writing files so that a reader never sees a half-written one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """Write ``path`` through a temporary file that replaces it at the end.

    The data go to a hidden temporary file in the same folder. When the
    ``with`` block ends normally, the file is flushed to disk and renamed to
    ``path`` in one step (:func:`os.replace`), so ``path`` holds either its
    old content or the complete new one. When the block raises, the
    temporary file is deleted and ``path`` is untouched. The file gets the
    permissions a plain ``open`` would give it (the temporary file starts
    private to its owner).
    """
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
