"""A hostile download server: what autodiff.nn.download does when the server misbehaves.

The server runs in a thread on 127.0.0.1 and answers each request for a path
with the next behaviour planned for it: it stalls, hangs up, sends more than
it announced, sends the wrong bytes, redirects, fails with a 5xx. Whatever it
does, no partial file may ever appear under the final name.
"""

import gzip
import hashlib
import http.server
import os
import re
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from autodiff.nn import DownloadError, download
from autodiff.nn import _files

BODY = np.random.default_rng(0).integers(0, 256, size=200_000, dtype=np.uint8).tobytes()
SHA256 = hashlib.sha256(BODY).hexdigest()


# -- what the server can do ---------------------------------------------------------


def send(body, status=200, length=None):
    """Answer ``status`` with ``body``, announcing ``length`` bytes (by default its length)."""
    def behaviour(handler):
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body) if length is None else length))
        handler.end_headers()
        handler.wfile.write(body)
    return behaviour


def fail(status):
    return send(b"", status)


def stall(body, after):
    """Announce all of ``body``, send ``after`` bytes, then send nothing until the test ends."""
    def behaviour(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body[:after])
        handler.wfile.flush()
        handler.server.test_over.wait(timeout=30)
    return behaviour


def hang_up(body, after):
    """Announce all of ``body``, send ``after`` bytes, then close the connection."""
    def behaviour(handler):
        send(body[:after], length=len(body))(handler)
        handler.close_connection = True
    return behaviour


def endless():
    """Send bytes without announcing a length, until the client goes away (64 MB at most)."""
    def behaviour(handler):
        handler.send_response(200)
        handler.end_headers()
        handler.close_connection = True
        try:
            for _ in range(1024):
                handler.wfile.write(bytes(1 << 16))
        except OSError:  # the client hung up, as it should
            pass
    return behaviour


def redirect(location):
    def behaviour(handler):
        handler.send_response(302)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return behaviour


def together(body, barrier):
    """Wait until every client has asked (``barrier``), then send ``body`` to each, slowly."""
    def behaviour(handler):
        barrier.wait(timeout=20)
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for start in range(0, len(body), len(body) // 8 + 1):
            handler.wfile.write(body[start : start + len(body) // 8 + 1])
            handler.wfile.flush()
            time.sleep(0.02)
    return behaviour


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.requests.append((time.monotonic(), self.path))
        plan = self.server.plans.get(self.path) or [fail(404)]
        behaviour = plan.pop(0) if len(plan) > 1 else plan[0]  # the last one repeats
        behaviour(self)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A server on a free port of 127.0.0.1; yields it, with ``url``, ``plans`` and ``requests``."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.plans, httpd.requests, httpd.test_over = {}, [], threading.Event()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd
    finally:
        httpd.test_over.set()  # releases the stalled answers
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def nothing_kept(folder):
    """No final file and no temporary file: the folder is as empty as it was."""
    return os.listdir(folder) == []


# -- the campaign ------------------------------------------------------------------


def test_a_stalled_server_times_out_with_a_clear_error(server, tmp_path):
    server.plans["/f"] = [stall(BODY, after=30_000)]
    path = tmp_path / "f.bin"
    start = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        download(server.url + "/f", path, size=len(BODY), sha256=SHA256, progress=False,
                 timeout=0.3, retries=1, retry_wait=0)
    elapsed = time.monotonic() - start
    message = str(caught.value)
    assert f"{server.url}/f sent nothing for 0.3 s after 30000 bytes" in message
    assert "larger timeout" in message and "Tried 2 times" in message
    assert len(server.requests) == 2 and elapsed < 5  # each attempt waited 0.3 s, not more
    assert nothing_kept(tmp_path)


def test_a_connection_that_breaks_is_tried_again(server, tmp_path):
    server.plans["/f"] = [hang_up(BODY, after=50_000), send(BODY)]
    path = download(server.url + "/f", tmp_path / "f.bin", size=len(BODY), sha256=SHA256,
                    progress=False, retry_wait=0)
    assert path.read_bytes() == BODY and len(server.requests) == 2
    assert os.listdir(tmp_path) == ["f.bin"]


def test_bytes_past_the_announced_length_are_never_read(server, tmp_path):
    server.plans["/f"] = [send(BODY + b"trailing garbage" * 1000, length=len(BODY))]
    path = download(server.url + "/f", tmp_path / "f.bin", size=len(BODY), sha256=SHA256,
                    progress=False)
    assert path.read_bytes() == BODY
    assert os.listdir(tmp_path) == ["f.bin"]


def test_an_announced_length_other_than_the_expected_size_is_refused(server, tmp_path):
    server.plans["/f"] = [send(BODY + b"more", length=len(BODY) + 4)]
    with pytest.raises(DownloadError, match=f"announces {len(BODY) + 4} bytes, expected "
                                            f"{len(BODY)}"):
        download(server.url + "/f", tmp_path / "f.bin", size=len(BODY), progress=False)
    assert nothing_kept(tmp_path) and len(server.requests) == 1  # not tried again


def test_a_server_that_never_stops_sending_is_stopped_past_the_expected_size(server, tmp_path):
    server.plans["/f"] = [endless()]
    with pytest.raises(DownloadError, match=f"sends more than the expected {len(BODY)} bytes"
                       ) as caught:
        download(server.url + "/f", tmp_path / "f.bin", size=len(BODY), progress=False)
    received = int(re.search(r"stopped after (\d+)", str(caught.value)).group(1))
    assert len(BODY) < received <= len(BODY) + (1 << 16)  # one piece too many, no more
    assert nothing_kept(tmp_path)


def test_the_right_length_with_the_wrong_content_fails_the_checksum(server, tmp_path):
    wrong = bytes(len(BODY))
    server.plans["/f"] = [send(wrong)]
    with pytest.raises(DownloadError) as caught:
        download(server.url + "/f", tmp_path / "f.bin", size=len(BODY), sha256=SHA256,
                 progress=False)
    message = str(caught.value)
    assert SHA256 in message and hashlib.sha256(wrong).hexdigest() in message
    assert nothing_kept(tmp_path) and len(server.requests) == 1  # not tried again


def test_a_redirect_to_another_host_is_refused(server, tmp_path):
    port = server.server_address[1]
    elsewhere = f"http://localhost:{port}/f"  # the same machine under another host name
    server.plans["/moved"] = [redirect(elsewhere)]
    server.plans["/f"] = [send(BODY)]
    with pytest.raises(DownloadError, match=f"redirects to {elsewhere}, on another host"):
        download(server.url + "/moved", tmp_path / "f.bin", progress=False)
    assert [path for _, path in server.requests] == ["/moved"]  # localhost was never asked
    assert nothing_kept(tmp_path)


def test_a_redirect_on_the_same_host_is_followed(server, tmp_path):
    server.plans["/moved"] = [redirect("/f")]
    server.plans["/f"] = [send(BODY)]
    path = download(server.url + "/moved", tmp_path / "f.bin", sha256=SHA256, progress=False)
    assert path.read_bytes() == BODY
    assert [path for _, path in server.requests] == ["/moved", "/f"]


def test_server_errors_are_tried_again_after_waits_that_double(server, tmp_path):
    server.plans["/f"] = [fail(500), fail(503), send(BODY)]
    path = download(server.url + "/f", tmp_path / "f.bin", size=len(BODY), sha256=SHA256,
                    progress=False, retries=2, retry_wait=0.1)
    assert path.read_bytes() == BODY and os.listdir(tmp_path) == ["f.bin"]
    times = [moment for moment, _ in server.requests]
    assert len(times) == 3
    first_wait, second_wait = times[1] - times[0], times[2] - times[1]
    assert 0.1 <= first_wait and 0.2 <= second_wait


def test_retries_are_bounded(server, tmp_path):
    server.plans["/f"] = [fail(502)]
    with pytest.raises(DownloadError, match=r"502 Bad Gateway.*Tried 4 times"):
        download(server.url + "/f", tmp_path / "f.bin", progress=False, retries=3,
                 retry_wait=0)
    assert len(server.requests) == 4 and nothing_kept(tmp_path)


def test_a_client_error_is_not_tried_again(server, tmp_path):
    with pytest.raises(DownloadError, match="404 Not Found"):
        download(server.url + "/missing", tmp_path / "f.bin", progress=False, retry_wait=0)
    assert len(server.requests) == 1 and nothing_kept(tmp_path)


def test_a_full_disk_during_a_download_names_the_file_and_keeps_nothing(server, tmp_path,
                                                                         monkeypatch):
    real_open = _files._open_temporary

    class FullDisk:
        def __init__(self, file):
            self.file = file

        def write(self, data):
            raise OSError(28, os.strerror(28))

        def __getattr__(self, name):
            return getattr(self.file, name)

        def __enter__(self):
            return self

        def __exit__(self, *exception):
            self.file.close()

    def open_on_a_full_disk(path):
        temporary, file = real_open(path)
        return temporary, FullDisk(file)
    monkeypatch.setattr(_files, "_open_temporary", open_on_a_full_disk)
    server.plans["/f"] = [send(BODY)]
    path = tmp_path / "f.bin"
    with pytest.raises(OSError, match=f"download: could not write {path} "
                                      r"\(No space left on device\)") as caught:
        download(server.url + "/f", path, progress=False, retry_wait=0)
    assert caught.value.errno == 28 and not isinstance(caught.value, DownloadError)
    assert nothing_kept(tmp_path) and len(server.requests) == 1  # a full disk is not retried


@pytest.mark.parametrize("bad", [{"retries": -1}, {"retries": 1.5}, {"timeout": 0},
                                 {"retry_wait": -1}])
def test_bad_download_options_are_explained(tmp_path, bad):
    with pytest.raises(ValueError, match=f"download: .*{next(iter(bad))}"):
        download("http://127.0.0.1:9/f", tmp_path / "f.bin", progress=False, **bad)


# -- two processes, one cache folder -----------------------------------------------

NAMES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def fake_mnist_files():
    """{name: gzip bytes} of four small IDX files in MNIST's format."""
    rng = np.random.default_rng(1)
    arrays = [rng.integers(0, 256, size=(200, 28, 28)), rng.integers(0, 10, size=200),
              rng.integers(0, 256, size=(100, 28, 28)), rng.integers(0, 10, size=100)]
    files = {}
    for name, array in zip(NAMES, arrays):
        header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
        files[name] = gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)
    return files


@pytest.mark.slow
def test_two_processes_downloading_into_one_folder_both_end_with_verified_files(server,
                                                                                tmp_path):
    files = fake_mnist_files()
    checksums = {name: (len(body), hashlib.sha256(body).hexdigest()) for name, body in files.items()}
    for name, body in files.items():
        # Each file is sent only once both processes have asked for it, so the
        # two downloads of every file overlap.
        server.plans[f"/mnist/{name}"] = [together(body, threading.Barrier(2))]
    folder = tmp_path / "cache"
    program = textwrap.dedent(f"""
        from autodiff.nn import load_mnist
        data = load_mnist({str(folder)!r}, url={server.url + "/mnist/"!r},
                          checksums={checksums!r}, progress=False, retries=0)
        print(len(data.train_images), len(data.test_labels))
    """)
    processes = [subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
    # Meanwhile, whatever appears under a final name must be the complete file.
    looks = 0
    while any(process.poll() is None for process in processes):
        for name in NAMES:
            try:
                seen = (folder / name).read_bytes()
            except FileNotFoundError:
                continue
            assert seen == files[name], f"{name}: {len(seen)} bytes under the final name"
            looks += 1
        time.sleep(0.005)
    outputs = [process.communicate() for process in processes]
    for process, (out, err) in zip(processes, outputs):
        assert process.returncode == 0, err
        assert out.split() == ["200", "100"]
    assert sorted(path for _, path in server.requests) == sorted(2 * [f"/mnist/{n}" for n in NAMES])
    assert sorted(os.listdir(folder)) == sorted(NAMES)
    for name in NAMES:
        assert (folder / name).read_bytes() == files[name]
    assert looks > 0  # the watch saw finished files while the processes ran
