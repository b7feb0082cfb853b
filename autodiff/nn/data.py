"""MNIST: find, download, verify and read the files, and cut them into batches.

:func:`load_mnist` looks for the four MNIST files in a folder:

1. the ``folder`` argument, else
2. the environment variable ``AUTODIFF_MNIST_DIR``, else
3. the user cache folder, ``$XDG_CACHE_HOME/autodiff/mnist`` (by default
   ``~/.cache/autodiff/mnist``).

Missing files are downloaded from a public mirror of the official files,
with a progress bar. A download is written to a temporary file in the same
folder, checked against the official size and SHA-256, and only then renamed
to its final name, so an interrupted or corrupt download never leaves a file
that looks complete. Server errors and broken or stalled connections are
tried again, twice by default; a redirect to another host is refused. Files
already in the folder (your own copy, or a subset of the training images)
are checked by their IDX headers instead, since their checksums may differ.
``load_mnist(limit=n)`` keeps only the first ``n`` training images, for
quick runs.

The IDX format is a tiny header followed by raw bytes: a magic number
(``2051`` for images, ``2049`` for labels) whose last byte is the number of
dimensions, then each dimension as a big-endian 32-bit integer.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np

from autodiff.nn._files import atomic_file
from autodiff.nn.layers import make_rng

__all__ = [
    "MNIST",
    "MNIST_URL",
    "MNIST_CHECKSUMS",
    "ENVIRONMENT_VARIABLE",
    "IDXError",
    "DownloadError",
    "default_folder",
    "read_idx",
    "download",
    "load_mnist",
    "batches",
]

#: The public mirror of the official files used by the exercise.
MNIST_URL = "https://raw.githubusercontent.com/fgnt/mnist/master/"

#: The environment variable naming a folder with the MNIST files.
ENVIRONMENT_VARIABLE = "AUTODIFF_MNIST_DIR"

#: Size in bytes and SHA-256 of each official file, checked after a download.
MNIST_CHECKSUMS: dict[str, tuple[int, str]] = {
    "train-images-idx3-ubyte.gz": (
        9912422,
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    ),
    "train-labels-idx1-ubyte.gz": (
        28881,
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    ),
    "t10k-images-idx3-ubyte.gz": (
        1648877,
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        4542,
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    ),
}

_IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
_LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension


class IDXError(ValueError):
    """A file is not a valid MNIST IDX file; the message names the file.

    Examples
    --------
    A label file (magic number 2049) read where images (2051) are expected:

    >>> import pathlib, tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = pathlib.Path(folder.name) / "labels-idx1-ubyte"
    >>> _ = path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> read_idx(path, magic=2051)
    Traceback (most recent call last):
    ...
    autodiff.nn.data.IDXError: ...labels-idx1-ubyte: magic number 2049, expected 2051 (images). Are the image and label files swapped?
    >>> folder.cleanup()
    """


class DownloadError(OSError):
    """A download failed or did not match its expected size or SHA-256.

    It is an :class:`OSError`, so ``except OSError`` catches it as well.

    Examples
    --------
    A URL that cannot be reached (here a local file that does not exist):

    >>> import pathlib, tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> missing = pathlib.Path(folder.name) / "missing.gz"
    >>> download(missing.as_uri(), missing.with_name("copy.gz"), progress=False, retries=0)
    Traceback (most recent call last):
    ...
    autodiff.nn.data.DownloadError: download: cannot reach file:///...missing.gz (...). Check the network, or copy the file to .../copy.gz yourself. Try again later.
    >>> folder.cleanup()
    """


class MNIST(NamedTuple):
    """The four MNIST arrays, in the order the exercise's ``get_mnist`` returns them.

    :func:`load_mnist` returns one. Its fields have names, and it unpacks
    like the exercise's tuple.

    Examples
    --------
    >>> data = MNIST(np.zeros((3, 28, 28)), np.array([5, 0, 4]),
    ...              np.zeros((1, 28, 28)), np.array([7]))
    >>> data.train_labels
    array([5, 0, 4])
    >>> train_images, train_labels, test_images, test_labels = data
    >>> test_images.shape
    (1, 28, 28)
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def default_folder() -> Path:
    """The folder :func:`load_mnist` uses when none is given.

    ``$AUTODIFF_MNIST_DIR`` if set, else ``$XDG_CACHE_HOME/autodiff/mnist``,
    else ``~/.cache/autodiff/mnist``.

    Examples
    --------
    >>> import os
    >>> saved = os.environ.pop("AUTODIFF_MNIST_DIR", None)
    >>> default_folder().parts[-2:]   # in the user cache folder
    ('autodiff', 'mnist')
    >>> os.environ["AUTODIFF_MNIST_DIR"] = "/data/mnist"
    >>> default_folder().as_posix()
    '/data/mnist'
    >>> del os.environ["AUTODIFF_MNIST_DIR"]
    >>> if saved is not None:   # put back the setting this example found
    ...     os.environ["AUTODIFF_MNIST_DIR"] = saved
    """
    if os.environ.get(ENVIRONMENT_VARIABLE):
        return Path(os.environ[ENVIRONMENT_VARIABLE]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "autodiff" / "mnist"


def read_idx(path: str | os.PathLike[str], magic: int | None = None) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzip-compressed or not).

    Parameters
    ----------
    path
        The file. A name ending in ``.gz`` is decompressed.
    magic
        If given, the magic number the file must have (2051 for images,
        2049 for labels).

    Returns
    -------
    numpy.ndarray
        A ``uint8`` array of the shape the header gives.

    Raises
    ------
    IDXError
        If the file is a folder, is not valid gzip, has another magic number,
        or holds fewer or more bytes than its header announces. The message
        names the file. (A raw IDX file has no checksum: a changed byte among
        the pixels goes unnoticed. A gzip file has one, CRC-32.)

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
    >>> _ = path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> read_idx(path, magic=2049)
    array([7, 2, 1], dtype=uint8)
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"read_idx: no file {path}") from None
    except IsADirectoryError:
        raise IDXError(f"{path}: a folder, not an IDX file.") from None
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise IDXError(
                f"{path}: not a valid gzip file ({error}). The file is damaged or "
                "incomplete; delete it so that it is downloaded again."
            ) from None
    if len(raw) < 4:
        raise IDXError(f"{path}: only {len(raw)} bytes, too short for an IDX header.")
    found_magic = int.from_bytes(raw[:4], "big")
    ndim = raw[3]
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or ndim == 0:
        raise IDXError(
            f"{path}: magic number {found_magic} is not that of an IDX file of "
            "unsigned bytes (2051 for images, 2049 for labels)."
        )
    if magic is not None and found_magic != magic:
        raise IDXError(
            f"{path}: magic number {found_magic}, expected {magic} "
            f"({'images' if magic == _IMAGES_MAGIC else 'labels'}). "
            "Are the image and label files swapped?"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"{path}: truncated: the header announces {ndim} dimensions.")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + math.prod(shape)  # exact: NumPy's product of int64 can overflow
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise IDXError(
            f"{path}: {what}: the header announces shape {shape}, that is "
            f"{expected} bytes in all, but the file holds {len(raw)}."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def _read_images(path: Path) -> np.ndarray:
    images = read_idx(path, magic=_IMAGES_MAGIC)
    if images.shape[1:] != (28, 28):
        raise IDXError(
            f"{path}: images of {images.shape[1:]} pixels; MNIST images are 28 x 28."
        )
    return images


def _read_labels(path: Path) -> np.ndarray:
    labels = read_idx(path, magic=_LABELS_MAGIC)
    if labels.size and labels.max() > 9:
        raise IDXError(f"{path}: a label is {labels.max()}; MNIST labels are 0 to 9.")
    return labels


# Why not pooch, the downloader of SciPy and scikit-image? pooch 1.9 also
# downloads to a temporary file, checks the hash and renames. But its files end
# with mode 0o600 whatever the umask; nothing is fsynced before or after the
# rename; pooch.retrieve never retries (Pooch.fetch does, and retries a wrong
# hash as well); it follows redirects to any host; with no size to check, it
# reads a server that never stops until the disk is full; and its errors are
# requests' own. It would also bring requests, platformdirs and packaging.


class _TryAgain(DownloadError):
    """A failure that may pass: a server error, or a connection that failed or stalled."""


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to the same scheme, host and port.

    A redirect to another host is refused: the checksums protect the MNIST
    files, but :func:`download` may be called without one, and then the
    host is all there is to trust.
    """

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if (new.scheme, new.netloc) != (old.scheme, old.netloc):
            fp.close()
            raise DownloadError(
                f"download: {req.full_url} redirects to {newurl}, on another host; "
                "the redirect was not followed. If you trust that host, download "
                "from its URL directly."
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open(url: str, path: Path, timeout: float) -> Any:
    """The server's response (an ``http.client.HTTPResponse``, or for a
    ``file:`` URL its stand-in), with the headers read and the body not yet."""
    opener = urllib.request.build_opener(_SameHostRedirects)
    try:
        return opener.open(url, timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        # 5xx: the server fails; 408 and 429: it asks us to come back later.
        passing = error.code >= 500 or error.code in (408, 429)
        kind = _TryAgain if passing else DownloadError
        raise kind(
            f"download: the server answered {error.code} {error.reason} for {url}."
        ) from None
    except DownloadError:  # a refused redirect
        raise
    except (OSError, http.client.HTTPException) as error:  # OSError includes URLError
        reason = getattr(error, "reason", error)
        raise _TryAgain(
            f"download: cannot reach {url} ({reason}). Check the network, or copy "
            f"the file to {path} yourself."
        ) from None


def _read_chunk(response: Any, url: str, received: int, timeout: float) -> bytes:
    try:
        chunk: bytes = response.read1(1 << 16)  # what has come, without waiting for more
    except TimeoutError:
        raise _TryAgain(
            f"download: {url} sent nothing for {timeout} s after {received} bytes; "
            "pass a larger timeout if the server is just slow."
        ) from None
    except (OSError, http.client.HTTPException) as error:
        raise _TryAgain(
            f"download: the connection broke after {received} bytes of {url} ({error!r})."
        ) from None
    return chunk


def _download_once(
    url: str, path: Path, size: int | None, sha256: str | None, progress: bool,
    timeout: float,
) -> None:
    from tqdm import tqdm

    with _open(url, path, timeout) as response, atomic_file(path, "download") as output:
        length = response.headers.get("Content-Length")
        announced = int(length) if length and length.isdigit() else None
        if announced is not None and size is not None and announced != size:
            raise DownloadError(
                f"download: {url} announces {announced} bytes, expected {size}. "
                "Nothing was kept; the file on the server may have changed."
            )
        digest = hashlib.sha256()
        received = 0
        with tqdm(
            total=announced or size, unit="B", unit_scale=True, unit_divisor=1024,
            desc=path.name, disable=not progress, file=sys.stderr,
        ) as bar:
            while chunk := _read_chunk(response, url, received, timeout):
                received += len(chunk)
                if size is not None and received > size:  # a server that never stops
                    raise DownloadError(
                        f"download: {url} sends more than the expected {size} bytes; "
                        f"stopped after {received}. Nothing was kept."
                    )
                output.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
        if announced is not None and received != announced:
            raise _TryAgain(
                f"download: the connection broke after {received} of the "
                f"{announced} bytes of {url}."
            )
        if size is not None and received != size:
            raise DownloadError(
                f"download: {url} gave {received} bytes, expected {size}. The file was "
                "not kept; try again."
            )
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise DownloadError(
                f"download: the SHA-256 of {url} is {digest.hexdigest()}, expected "
                f"{sha256.lower()}. The file was not kept. The mirror may have "
                "changed, or the download was corrupted; try again."
            )


def download(
    url: str,
    path: str | os.PathLike[str],
    *,
    size: int | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    retries: int = 2,
    retry_wait: float = 1.0,
) -> Path:
    """Download ``url`` to ``path`` atomically, checking its size and SHA-256.

    The data go to a temporary file beside ``path``, which is renamed to
    ``path`` only when it is complete, matches ``size`` and ``sha256``, and
    is on the disk. On any failure the temporary file is deleted, so
    ``path`` is never a partial file: it keeps what it held before (usually
    nothing) or holds the whole, checked file. Two processes downloading
    the same file at once each write their own temporary file; both end
    with the complete file.

    A failure that may pass, a server error (5xx, 408, 429) or a connection
    that cannot be made, breaks or stalls, is tried again ``retries`` times,
    after waiting ``retry_wait`` seconds, then twice as long each time. A
    wrong size or checksum, another client error (404) or a redirect to
    another host is not tried again.

    Parameters
    ----------
    url
        What to download: ``http``, ``https`` or ``file``. Redirects are
        followed on the same host only.
    path
        Where to store it; the folder must exist.
    size, sha256
        The expected number of bytes and SHA-256 (hex); ``None`` skips a
        check. With ``size``, a server that announces or sends more bytes is
        stopped at once. Without it, a server may send as much as it likes.
    progress
        Show a progress bar (tqdm) on standard error.
    timeout
        Seconds to wait for the server to answer, and then for each next
        piece of the file; not a limit on the whole download.
    retries, retry_wait
        How many more attempts after a failure that may pass, and the wait
        in seconds before the first of them.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    DownloadError
        If the server fails, the connection breaks or stalls, or the size or
        the hash differ; the message gives the URL (and both hashes).
    OSError
        If ``path`` cannot be written (a full disk, say); the message names it.

    Examples
    --------
    Any URL that :func:`urllib.request.urlopen` opens will do, here a local
    file. A copy whose SHA-256 differs from the expected one is not kept:

    >>> import hashlib, pathlib, tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> source = pathlib.Path(folder.name) / "source.txt"
    >>> _ = source.write_bytes(b"hello")
    >>> sha256 = hashlib.sha256(b"hello").hexdigest()
    >>> copy = download(source.as_uri(), source.with_name("copy.txt"),
    ...                 size=5, sha256=sha256, progress=False)
    >>> copy.read_bytes()
    b'hello'
    >>> download(source.as_uri(), source.with_name("bad.txt"),
    ...          sha256=hashlib.sha256(b"other").hexdigest(), progress=False)
    Traceback (most recent call last):
    ...
    autodiff.nn.data.DownloadError: download: the SHA-256 of file:///...source.txt is 2cf24dba..., expected d9298a10.... The file was not kept. ...
    >>> sorted(path.name for path in source.parent.iterdir())
    ['copy.txt', 'source.txt']
    >>> folder.cleanup()
    """
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"download: retries must be an int >= 0, got {retries!r}.")
    if not timeout > 0 or not retry_wait >= 0:
        raise ValueError(
            f"download: timeout must be positive and retry_wait >= 0, got "
            f"timeout={timeout!r} and retry_wait={retry_wait!r}."
        )
    path = Path(path)
    attempt = 0
    while True:
        try:
            _download_once(url, path, size, sha256, progress, timeout)
            return path
        except _TryAgain as error:
            if attempt == retries:
                tried = f"Tried {retries + 1} times; try" if retries else "Try"
                raise DownloadError(f"{error} {tried} again later.") from None
        time.sleep(retry_wait * 2**attempt)
        attempt += 1


def load_mnist(
    folder: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    flatten: bool = False,
    limit: int | None = None,
    url: str = MNIST_URL,
    checksums: Mapping[str, tuple[int, str]] = MNIST_CHECKSUMS,
    progress: bool = True,
    timeout: float = 60.0,
    retries: int = 2,
) -> MNIST:
    """Load MNIST, downloading the files that are missing.

    Parameters
    ----------
    folder
        Where the four ``*-ubyte.gz`` files are or go. Default: the
        environment variable ``AUTODIFF_MNIST_DIR``, else the user cache
        folder (see :func:`default_folder`).
    download
        Download missing files. With ``False`` a missing file is an error.
    flatten
        Return images of shape ``(n, 784)`` instead of ``(n, 28, 28)``.
    limit
        Keep only the first ``limit`` training images and their labels, in
        the order of the file, for a quicker run (``None`` keeps them all;
        a folder with fewer gives them all). MNIST's training file is not
        sorted by digit: its first images hold every digit about equally
        often.
        The test set is always complete, so that test accuracies stay
        comparable whatever the limit.
    url
        The base URL the file names are appended to.
    checksums
        ``{file name: (size, sha256)}`` that downloaded files must match.
    progress
        Show a progress bar while downloading.
    timeout, retries
        For each download (see :func:`download`): the seconds to wait for the
        server, and how many more attempts after a failure that may pass.

    Returns
    -------
    MNIST
        A named tuple ``(train_images, train_labels, test_images,
        test_labels)``. Images are ``float32`` in ``[0, 1)``: the bytes
        0..255 divided by 256, as in the exercise. Labels are ``int64``.

    Raises
    ------
    FileNotFoundError
        If a file is missing and ``download`` is false.
    DownloadError
        If a download fails or does not match its checksum.
    IDXError
        If a file is not a valid MNIST IDX file, or the numbers of images
        and labels differ.
    ValueError
        If ``limit`` is not a positive int or ``None``.

    Examples
    --------
    Usually ``data = load_mnist()``, which downloads the files once. Here, a
    folder with tiny files of the same format, 3 training and 2 test images:

    >>> import gzip, pathlib, tempfile
    >>> def idx(array):   # the IDX header: magic number, then each dimension
    ...     header = bytes([0, 0, 8, array.ndim])
    ...     header += b"".join(n.to_bytes(4, "big") for n in array.shape)
    ...     return gzip.compress(header + array.astype(np.uint8).tobytes())
    >>> folder = tempfile.TemporaryDirectory()
    >>> for split, n in [("train", 3), ("t10k", 2)]:
    ...     path = pathlib.Path(folder.name, split)
    ...     _ = path.with_name(f"{split}-images-idx3-ubyte.gz").write_bytes(idx(np.full((n, 28, 28), 128)))
    ...     _ = path.with_name(f"{split}-labels-idx1-ubyte.gz").write_bytes(idx(np.arange(n)))
    >>> data = load_mnist(folder.name, download=False, flatten=True)
    >>> data.train_images.shape, data.train_images.dtype, float(data.train_images.max())
    ((3, 784), dtype('float32'), 0.5)
    >>> data.test_labels
    array([0, 1])

    With ``limit``, the first training images only; the test set stays whole:

    >>> data = load_mnist(folder.name, download=False, limit=2)
    >>> data.train_labels, data.test_labels
    (array([0, 1]), array([0, 1]))
    >>> folder.cleanup()
    """
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1
    ):
        raise ValueError(
            f"load_mnist: limit must be a positive int (the number of training "
            f"images to keep) or None for all of them, got {limit!r}."
        )
    folder = default_folder() if folder is None else Path(folder).expanduser()
    arrays: list[np.ndarray] = []
    for split in ("train", "t10k"):
        images_name = f"{split}-images-idx3-ubyte.gz"
        labels_name = f"{split}-labels-idx1-ubyte.gz"
        paths = []
        for name in (images_name, labels_name):
            path = folder / name
            if not path.exists():
                if not download:
                    raise FileNotFoundError(
                        f"load_mnist: {path} does not exist. Put the MNIST files in "
                        f"{folder}, point the environment variable "
                        f"{ENVIRONMENT_VARIABLE} at a folder that holds them, or pass "
                        "download=True."
                    )
                if name not in checksums:
                    raise KeyError(f"load_mnist: no checksum known for {name}.")
                expected_size, expected_hash = checksums[name]
                folder.mkdir(parents=True, exist_ok=True)
                _download_file(url.rstrip("/") + "/" + name, path, size=expected_size,
                               sha256=expected_hash, progress=progress, timeout=timeout,
                               retries=retries)
            paths.append(path)
        images = _read_images(paths[0])
        labels = _read_labels(paths[1])
        if len(images) != len(labels):
            raise IDXError(
                f"load_mnist: {paths[0]} holds {len(images)} images but {paths[1]} "
                f"holds {len(labels)} labels; they must match one to one."
            )
        if split == "train" and limit is not None:
            # Before the conversion to float32, which would copy every image.
            images, labels = images[:limit], labels[:limit]
        flat = images.reshape(len(images), -1) if flatten else images
        pixels = flat.astype(np.float32)
        pixels *= np.float32(1 / 256)  # exact: a power of two
        arrays += [pixels, labels.astype(np.int64)]
    return MNIST(*arrays)


# A module-level alias, because load_mnist's ``download`` argument hides the function.
_download_file = download


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    *,
    shuffle: bool = True,
    seed: int | np.random.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield minibatches ``(images[i], labels[i])``, in a seeded random order.

    Parameters
    ----------
    images, labels
        Arrays with the same first axis.
    batch_size
        Rows per batch. The last batch is smaller when ``batch_size`` does
        not divide the number of rows.
    shuffle
        Visit the rows in a random order (a new one for each call).
    seed
        An int or a :class:`numpy.random.Generator`; the same seed gives the
        same order. Pass one generator to every epoch's call for a new order
        each epoch that is still reproducible.
    drop_last
        Skip the last batch if it is smaller than ``batch_size``.

    Examples
    --------
    >>> x, y = np.arange(10.0), np.arange(10)
    >>> [len(b) for b, _ in batches(x, y, 4)]
    [4, 4, 2]
    >>> [b.tolist() for _, b in batches(x, y, 4, shuffle=False, drop_last=True)]
    [[0, 1, 2, 3], [4, 5, 6, 7]]
    """
    if len(images) != len(labels):
        raise ValueError(
            f"batches: {len(images)} images but {len(labels)} labels; they must "
            "have the same length."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batches: batch_size must be a positive int, got {batch_size!r}.")
    n = len(images)
    order = make_rng(seed).permutation(n) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            yield images[start : start + batch_size], labels[start : start + batch_size]
        else:
            index = order[start : start + batch_size]
            yield images[index], labels[index]

