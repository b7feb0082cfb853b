"""Tests of autodiff.nn.data: the IDX parser, the downloader, load_mnist and batches.

The downloads come from a small HTTP server on 127.0.0.1, run in a thread,
serving IDX files the tests write; no test touches the internet.
"""

import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest

from autodiff.nn import DownloadError, IDXError, batches, download, load_mnist, read_idx
from autodiff.nn import data as data_module

NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def idx_bytes(array, magic=None):
    """Serialise a uint8 array as IDX: magic (0, 0, 8, ndim), dims, data."""
    array = np.asarray(array, dtype=np.uint8)
    if magic is None:
        magic = 0x0800 + array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.tobytes()


def fake_mnist(n_train=6, n_test=4, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "train_images": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, size=n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, size=n_test, dtype=np.uint8),
    }
    files = {NAMES[key]: gzip.compress(idx_bytes(value), mtime=0) for key, value in arrays.items()}
    return arrays, files


def checksums_of(files):
    return {name: (len(body), hashlib.sha256(body).hexdigest()) for name, body in files.items()}


def write_folder(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in files.items():
        (folder / name).write_bytes(body)
    return folder


# -- the local server --------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}  # path -> (status, body, announced length or None)
    requests: list = []

    def do_GET(self):
        self.requests.append(self.path)
        status, body, length = self.routes.get(self.path, (404, b"not found", None))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if length is not None:  # announce more than we send, then hang up
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A server on a free port of 127.0.0.1; yields (base URL, routes)."""
    Handler.routes, Handler.requests = {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/mnist/", Handler.routes
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def serve(routes, files):
    for name, body in files.items():
        routes[f"/mnist/{name}"] = (200, body, None)


def leftovers(folder):
    """Temporary files left in ``folder``."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


# -- downloads ---------------------------------------------------------------------


def test_load_mnist_downloads_verifies_and_reads(server, tmp_path):
    url, routes = server
    arrays, files = fake_mnist()
    serve(routes, files)
    folder = tmp_path / "cache" / "mnist"  # created on demand
    data = load_mnist(folder, url=url, checksums=checksums_of(files), progress=False)
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)
    for key in NAMES:
        loaded = getattr(data, key)
        if key.endswith("images"):
            assert loaded.dtype == np.float32 and loaded.shape[1:] == (28, 28)
            assert 0 <= loaded.min() and loaded.max() < 1
            np.testing.assert_array_equal(loaded * 256, arrays[key])
        else:
            assert loaded.dtype == np.int64
            np.testing.assert_array_equal(loaded, arrays[key])
    # A second call finds the files and downloads nothing.
    count = len(Handler.requests)
    load_mnist(folder, url=url, checksums=checksums_of(files), progress=False)
    assert len(Handler.requests) == count


def test_download_shows_a_progress_bar(server, tmp_path, capsys):
    url, routes = server
    _, files = fake_mnist()
    serve(routes, files)
    name = NAMES["train_labels"]
    download(url + name, tmp_path / name, progress=True)
    assert name in capsys.readouterr().err


def test_only_missing_files_are_downloaded(server, tmp_path):
    url, routes = server
    _, files = fake_mnist()
    serve(routes, files)
    names = sorted(files)
    write_folder(tmp_path, {names[0]: files[names[0]]})
    load_mnist(tmp_path, url=url, checksums=checksums_of(files), progress=False)
    assert sorted(Handler.requests) == sorted(f"/mnist/{n}" for n in names[1:])


def test_wrong_checksum_raises_with_url_and_both_hashes_and_keeps_nothing(server, tmp_path):
    url, routes = server
    _, files = fake_mnist()
    serve(routes, files)
    checksums = checksums_of(files)
    name = NAMES["train_images"]
    expected = "0" * 64
    checksums[name] = (checksums[name][0], expected)
    with pytest.raises(DownloadError) as caught:
        load_mnist(tmp_path, url=url, checksums=checksums, progress=False)
    message = str(caught.value)
    assert url + name in message and expected in message
    assert hashlib.sha256(files[name]).hexdigest() in message
    assert not (tmp_path / name).exists() and leftovers(tmp_path) == []


def test_short_download_is_refused_and_keeps_nothing(server, tmp_path):
    url, routes = server
    _, files = fake_mnist()
    name = NAMES["test_labels"]
    routes[f"/mnist/{name}"] = (200, files[name][:-10], None)  # truncated file, honest length
    size, sha = checksums_of(files)[name]
    with pytest.raises(DownloadError, match=rf"{len(files[name]) - 10} bytes, expected {size}"):
        download(url + name, tmp_path / name, size=size, sha256=sha, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_connection_broken_mid_file_keeps_nothing(server, tmp_path):
    url, routes = server
    _, files = fake_mnist()
    name = NAMES["test_images"]
    body = files[name]
    routes[f"/mnist/{name}"] = (200, body[: len(body) // 2], len(body))  # hangs up early
    with pytest.raises(DownloadError, match=url + name):
        download(url + name, tmp_path / name, progress=False, retries=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("status", [404, 500])
def test_server_error_is_reported_with_the_url(server, tmp_path, status):
    url, routes = server
    _, files = fake_mnist()
    serve(routes, files)
    name = NAMES["test_labels"]
    routes[f"/mnist/{name}"] = (status, b"oops", None)
    with pytest.raises(DownloadError, match=rf"{status}.*{url + name}"):
        load_mnist(tmp_path, url=url, checksums=checksums_of(files), progress=False,
                   retries=0)
    assert not (tmp_path / name).exists() and leftovers(tmp_path) == []


def test_unreachable_server_is_reported(tmp_path):
    # Port 9 on 127.0.0.1 (discard) is closed on any sane machine: connection refused.
    with pytest.raises(DownloadError, match="cannot reach"):
        download("http://127.0.0.1:9/x.gz", tmp_path / "x.gz", progress=False, timeout=5,
                 retries=0)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_gzip_with_matching_checksum_fails_in_the_parser(server, tmp_path):
    url, routes = server
    _, files = fake_mnist()
    name = NAMES["train_labels"]
    files[name] = b"\x1f\x8b this is not really gzip"
    serve(routes, files)
    with pytest.raises(IDXError, match=rf"{name}.*gzip"):
        load_mnist(tmp_path, url=url, checksums=checksums_of(files), progress=False)


def test_missing_files_without_download_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="AUTODIFF_MNIST_DIR"):
        load_mnist(tmp_path, download=False)


def test_the_official_table_is_the_default():
    assert data_module.MNIST_CHECKSUMS["train-images-idx3-ubyte.gz"][0] == 9912422
    assert data_module.MNIST_URL == "https://raw.githubusercontent.com/fgnt/mnist/master/"


# -- the folder --------------------------------------------------------------------


def test_folder_argument_then_environment_then_cache(tmp_path, monkeypatch):
    _, files = fake_mnist(n_train=3)
    write_folder(tmp_path / "env", files)
    monkeypatch.setenv("AUTODIFF_MNIST_DIR", str(tmp_path / "env"))
    assert len(load_mnist(download=False).train_images) == 3
    _, other = fake_mnist(n_train=5)
    assert len(load_mnist(write_folder(tmp_path / "arg", other), download=False).train_images) == 5
    monkeypatch.delenv("AUTODIFF_MNIST_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_module.default_folder() == tmp_path / "xdg" / "autodiff" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_module.default_folder() == tmp_path / "home" / ".cache" / "autodiff" / "mnist"


def test_limit_keeps_the_first_training_images_and_every_test_image(tmp_path):
    arrays, files = fake_mnist(n_train=6, n_test=4)
    folder = write_folder(tmp_path, files)
    data = load_mnist(folder, download=False, flatten=True, limit=4)
    np.testing.assert_array_equal(data.train_images * 256,
                                  arrays["train_images"][:4].reshape(4, 784))
    np.testing.assert_array_equal(data.train_labels, arrays["train_labels"][:4])
    np.testing.assert_array_equal(data.test_labels, arrays["test_labels"])
    assert data.test_images.shape == (4, 784)


def test_a_limit_above_the_number_of_images_keeps_them_all(tmp_path):
    arrays, files = fake_mnist(n_train=6)
    data = load_mnist(write_folder(tmp_path, files), download=False, limit=np.int64(100))
    np.testing.assert_array_equal(data.train_labels, arrays["train_labels"])


@pytest.mark.parametrize("limit", [0, -3, 2.5, True, "10"])
def test_a_bad_limit_is_explained(tmp_path, limit):
    _, files = fake_mnist()
    with pytest.raises(ValueError, match=rf"limit must be a positive int.*got {limit!r}"):
        load_mnist(write_folder(tmp_path, files), download=False, limit=limit)


def test_a_users_folder_is_checked_by_headers_not_checksums(tmp_path):
    # A subset, like ../shared/mnist: valid headers, unofficial checksums.
    arrays, files = fake_mnist(n_train=7)
    data = load_mnist(write_folder(tmp_path, files), download=False, flatten=True)
    assert data.train_images.shape == (7, 784)
    np.testing.assert_array_equal(data.train_labels, arrays["train_labels"])


def test_images_and_labels_must_match_in_number(tmp_path):
    _, files = fake_mnist(n_train=6)
    _, fewer = fake_mnist(n_train=5)
    files[NAMES["train_labels"]] = fewer[NAMES["train_labels"]]
    with pytest.raises(IDXError, match=r"6 images but .*5 labels"):
        load_mnist(write_folder(tmp_path, files), download=False)


def test_swapped_files_are_caught(tmp_path):
    _, files = fake_mnist()
    files[NAMES["test_images"]], files[NAMES["test_labels"]] = (
        files[NAMES["test_labels"]], files[NAMES["test_images"]])
    with pytest.raises(IDXError, match=r"t10k-images.*expected 2051"):
        load_mnist(write_folder(tmp_path, files), download=False)


def test_images_must_be_28_by_28(tmp_path):
    _, files = fake_mnist()
    files[NAMES["train_images"]] = gzip.compress(idx_bytes(np.zeros((6, 28, 27))))
    with pytest.raises(IDXError, match="train-images.*28 x 28"):
        load_mnist(write_folder(tmp_path, files), download=False)


def test_labels_must_be_digits(tmp_path):
    _, files = fake_mnist()
    files[NAMES["train_labels"]] = gzip.compress(idx_bytes(np.array([0, 1, 2, 3, 4, 12])))
    with pytest.raises(IDXError, match="train-labels.*12"):
        load_mnist(write_folder(tmp_path, files), download=False)


# -- the IDX parser ----------------------------------------------------------------


def test_read_idx_plain_and_gzip(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a-idx3-ubyte").write_bytes(idx_bytes(array))
    (tmp_path / "a-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(array)))
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        np.testing.assert_array_equal(read_idx(tmp_path / name), array)


@pytest.mark.parametrize("body, message", [
    (idx_bytes(np.zeros((2, 28, 28)), magic=0x12345678), "magic number"),
    (idx_bytes(np.zeros((2, 28, 28)), magic=0x0D03), "magic number"),    # float data
    (idx_bytes(np.zeros((2, 28, 28)))[:-1], "truncated"),
    (idx_bytes(np.zeros((2, 28, 28)))[:10], "truncated"),
    (idx_bytes(np.zeros((2, 28, 28))) + b"\0", "trailing bytes"),
    (b"\0\0", "too short"),
])
def test_parser_failures_name_the_file(tmp_path, body, message):
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(body)
    with pytest.raises(IDXError, match=message) as caught:
        read_idx(path)
    assert str(path) in str(caught.value)


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "cut-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.arange(100)))[:-12])
    with pytest.raises(IDXError, match=rf"{path}.*gzip"):
        read_idx(path)


def test_wrong_magic_for_the_expected_kind(tmp_path):
    path = tmp_path / "labels-idx1-ubyte"
    path.write_bytes(idx_bytes(np.arange(5)))
    with pytest.raises(IDXError, match="expected 2051"):
        read_idx(path, magic=2051)


# -- batches -----------------------------------------------------------------------


def test_batches_cover_every_row_once_with_a_partial_last_batch():
    x, y = np.arange(103) * 10, np.arange(103)
    seen = []
    sizes = []
    for bx, by in batches(x, y, 10, seed=0):
        np.testing.assert_array_equal(bx, by * 10)  # rows stay paired
        seen += by.tolist()
        sizes.append(len(by))
    assert sizes == [10] * 10 + [3]
    assert sorted(seen) == list(range(103)) and seen != list(range(103))


def test_batches_seeded_shuffle_is_reproducible():
    x = np.arange(50)
    first = [b.tolist() for b, _ in batches(x, x, 7, seed=3)]
    assert first == [b.tolist() for b, _ in batches(x, x, 7, seed=3)]
    assert first != [b.tolist() for b, _ in batches(x, x, 7, seed=4)]
    rng = np.random.default_rng(0)  # one generator: a new order each epoch
    assert [b.tolist() for b, _ in batches(x, x, 7, seed=rng)] != \
        [b.tolist() for b, _ in batches(x, x, 7, seed=rng)]


def test_batches_drop_last_and_no_shuffle():
    x = np.arange(10)
    assert [b.tolist() for b, _ in batches(x, x, 4, shuffle=False, drop_last=True)] == \
        [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_batches_check_their_arguments():
    with pytest.raises(ValueError, match="same length"):
        next(batches(np.zeros(3), np.zeros(4), 2))
    with pytest.raises(ValueError, match="batch_size"):
        next(batches(np.zeros(3), np.zeros(3), 0))


# -- the offline copies beside the repository -----------------------------------------
# Read by name, whatever AUTODIFF_MNIST_DIR says: each test knows what its folder holds.

SHARED = Path(__file__).resolve().parents[2] / "shared" / "mnist"
SHARED_FULL = SHARED.with_name("mnist-full")


@pytest.mark.skipif(not (SHARED / NAMES["train_images"]).exists(), reason="no offline MNIST copy")
def test_the_offline_subset_loads_by_its_headers():
    data = load_mnist(SHARED, download=False)
    assert data.train_images.shape == (5000, 28, 28) and data.test_images.shape == (10000, 28, 28)
    assert np.bincount(data.train_labels).tolist() == [500] * 10
    assert data.train_images.dtype == np.float32 and data.train_labels.dtype == np.int64
    assert data.train_images.min() == 0 and data.train_images.max() == 255 / 256


# The official files' SHA-256 once decompressed, and the official counts of each digit.
OFFICIAL_SHA256 = {
    "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
TRAIN_DIGITS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_DIGITS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

needs_full_copy = pytest.mark.skipif(
    not (SHARED_FULL / NAMES["train_images"]).exists(), reason="no offline copy of the full MNIST"
)


@needs_full_copy
@pytest.mark.parametrize("name", sorted(OFFICIAL_SHA256))
def test_the_full_copy_decompresses_to_the_official_files(name):
    raw = gzip.decompress((SHARED_FULL / name).read_bytes())
    assert hashlib.sha256(raw).hexdigest() == OFFICIAL_SHA256[name]


@needs_full_copy
def test_the_full_copy_has_every_image_and_the_official_digit_counts():
    data = load_mnist(SHARED_FULL, download=False)
    assert data.train_images.shape == (60_000, 28, 28) and data.train_labels.shape == (60_000,)
    assert data.test_images.shape == (10_000, 28, 28) and data.test_labels.shape == (10_000,)
    assert np.bincount(data.train_labels).tolist() == TRAIN_DIGITS
    assert np.bincount(data.test_labels).tolist() == TEST_DIGITS
    first = load_mnist(SHARED_FULL, download=False, limit=1000)
    np.testing.assert_array_equal(first.train_images, data.train_images[:1000])
    assert len(np.unique(first.train_labels)) == 10  # the first images hold every digit
