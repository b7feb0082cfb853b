"""Writing files so that a reader never sees a half-written one.

:func:`atomic_file` writes to a temporary file beside the target and renames
it over the target only when the data are complete and on the disk. What
that guarantees:

- After a crash, a kill or a power cut, the target holds either its old
  content or the complete new one, never a mix. The data are flushed to the
  disk (:func:`os.fsync`) before the rename, and on Linux and macOS the
  folder is flushed after it, so that the rename itself survives a power cut.
  (On Windows the folder cannot be flushed; on macOS :func:`os.fsync` leaves
  the data in the drive's own cache, which a power cut can still lose.)
- A process killed while writing leaves its temporary file behind. It is
  hidden, sits in the same folder and is named ``.NAME.RANDOM.part`` for a
  target ``NAME`` (for example ``.model.npz.3f9a1c0e5b7d.part``); nothing
  ever reads it, and it can be deleted.
- Two processes writing the *same* target at once each write a complete
  file, and the last rename wins; neither is merged into the other.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

# Windows opens files as text unless told otherwise; elsewhere the flag does not exist.
_BINARY = getattr(os, "O_BINARY", 0)


def _open_temporary(path: Path) -> tuple[Path, IO[bytes]]:
    """Create a new, empty file ``.NAME.RANDOM.part`` beside ``path`` and open it.

    ``O_EXCL`` makes the creation fail if the name exists (even as a
    symbolic link), so the file is ours alone. The mode ``0o666`` goes
    through the process's umask in the kernel, so the file gets the
    permissions that a plain :func:`open` would give it, without the umask
    ever being read (reading it means changing it, for every thread).
    """
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY, 0o666)
        except FileExistsError:  # 1 chance in 2**48 per file already there: draw again
            continue
        return temporary, os.fdopen(handle, "wb")


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's list of names to the disk, so that a rename in it is kept."""
    if not hasattr(os, "O_DIRECTORY"):  # Windows cannot open a folder to flush it
        return
    handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(handle)
    except OSError as error:
        # Some file systems (some network and FUSE ones) cannot flush a folder.
        if error.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(handle)


def _naming(error: OSError, where: str, path: Path) -> OSError:
    """The same kind of error as ``error`` (same errno), with a message naming ``path``."""
    return OSError(
        error.errno,
        f"{where}: could not write {path} ({error.strerror}). The file was left as it "
        "was; check the free space and the permissions of its folder, then try again.",
    )


@contextmanager
def atomic_file(path: Path, where: str) -> Iterator[IO[bytes]]:
    """Write ``path`` through a temporary file that replaces it at the end.

    The ``with`` block writes to a new hidden file in the same folder (see
    :func:`_open_temporary`). When the block ends normally, the file is
    flushed to the disk and renamed to ``path`` in one step
    (:func:`os.replace`), and then the folder is flushed too. When anything
    fails, the temporary file is deleted and ``path`` is untouched.

    An error of the operating system (an :class:`OSError` with an ``errno``,
    such as a full disk during a write or a failing disk during the flush)
    is raised again as the same kind of error, with a message that starts
    with ``where`` (the public function's name) and names ``path``; a failed
    write does not say which file it was writing.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_file(folder / "notes.txt", "example") as file:
    ...     _ = file.write(b"complete")
    >>> [p.name for p in folder.iterdir()]
    ['notes.txt']
    >>> with atomic_file(folder / "notes.txt", "example") as file:
    ...     _ = file.write(b"half of a new ver")
    ...     raise RuntimeError("stopped halfway")
    Traceback (most recent call last):
    RuntimeError: stopped halfway
    >>> (folder / "notes.txt").read_bytes(), [p.name for p in folder.iterdir()]
    (b'complete', ['notes.txt'])
    """
    try:
        temporary, file = _open_temporary(path)
    except OSError as error:
        raise _naming(error, where, path) from error
    try:
        with file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        with suppress(OSError):  # the error that brought us here is the one to report
            temporary.unlink()
        if isinstance(error, OSError) and error.errno is not None:
            raise _naming(error, where, path) from error
        raise
    try:
        _fsync_folder(path.parent)
    except OSError as error:
        raise OSError(
            error.errno,
            f"{where}: {path} was written, but its folder could not be flushed to "
            f"the disk ({error.strerror}); the new file may not survive a power cut.",
        ) from error

