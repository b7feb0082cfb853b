"""Fault injection for the files the package writes and reads.

- Processes killed with SIGKILL at random moments while they save.
- A full or failing disk (ENOSPC, EIO) during the write and during the flush.
- Damaged parameter files and MNIST files: cut short at 20 places, a byte
  changed at 20 places, empty, a folder, a file of another kind.
- Threads that save while another one loads.

The tests marked ``slow`` run in ``make test`` too.
"""

import errno
import gzip
import itertools
import json
import multiprocessing
import os
import re
import signal
import stat
import struct
import threading
import time
import zlib

import numpy as np
import pytest

from autodiff import Parameter
from autodiff.nn import IDXError, load_mnist, load_parameters, read_idx, save_parameters
from autodiff.nn import _files


def model(seed=0, size=12):
    """A mapping {name: Parameter} of float32 values, like a small layer's."""
    rng = np.random.default_rng(seed)
    return {
        "weight": Parameter(rng.normal(size=(size, 4)).astype(np.float32)),
        "bias": Parameter(rng.normal(size=4).astype(np.float32)),
    }


def values(parameters):
    return {name: p.value.copy() for name, p in parameters.items()}


def assert_unchanged(parameters, before, what=""):
    for name, p in parameters.items():
        np.testing.assert_array_equal(p.value, before[name], err_msg=what)


def damaged_copies(body, rng):
    """``(what, bytes)``: ``body`` cut at 20 places spread over it, then 20
    copies with the byte at a random place changed."""
    for cut in np.linspace(1, len(body) - 1, 20, dtype=int):
        yield f"cut to {cut} of {len(body)} bytes", body[:cut]
    for position in rng.choice(len(body), size=20, replace=False):
        copy = bytearray(body)
        copy[position] ^= int(rng.integers(1, 256))
        yield f"byte {position} of {len(body)} changed", bytes(copy)


def png_bytes():
    """A valid 1 x 1 PNG image."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)  # 1 x 1, 8-bit grey
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


def leftovers(folder, keep):
    return sorted(name for name in os.listdir(folder) if name not in keep)


# -- killed mid-save ---------------------------------------------------------------

KILLS_PER_FORMAT = 30  # 60 kills in all
STARTED, WRITING, FINISHED = range(3)  # what the saving process records, by version


def save_forever(path, size, first_version, progress):
    """In a child process: save version 1, 2, ... of a model whose values all
    equal the version. ``progress`` records the last version started, the
    last whose temporary file was created, and the last finished."""
    real_open_temporary = _files._open_temporary

    def open_temporary(target):
        progress[WRITING] = progress[STARTED]
        return real_open_temporary(target)
    _files._open_temporary = open_temporary  # in this process only

    parameters = {f"w{i}": Parameter(np.zeros(size, np.float32)) for i in range(4)}
    for version in itertools.count(first_version):
        for p in parameters.values():
            p.value.fill(version)
        progress[STARTED] = version
        save_parameters(parameters, path)
        progress[FINISHED] = version


def version_in(path, size):
    """Load the file and return the one value it holds everywhere."""
    parameters = {f"w{i}": Parameter(np.full(size, -1, np.float32)) for i in range(4)}
    load_parameters(parameters, path)
    found = np.unique(np.concatenate([p.value for p in parameters.values()]))
    assert len(found) == 1, f"{path} mixes versions {found}"
    return int(found[0])


@pytest.mark.slow
@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                    reason="needs fork to start the saving processes quickly")
@pytest.mark.parametrize("suffix, size", [(".npz", 500_000), (".json", 25_000)])
def test_a_save_killed_at_a_random_moment_leaves_the_old_or_the_new_file(tmp_path, suffix, size):
    # 8 MB of npz or 100,000 numbers in JSON: a save takes some 30 ms. The
    # processes are forked from this one, which has already imported NumPy;
    # a new interpreter would take ten times longer to start.
    context = multiprocessing.get_context("fork")
    rng = np.random.default_rng(13)
    path = tmp_path / f"model{suffix}"
    zeros = {f"w{i}": Parameter(np.zeros(size, np.float32)) for i in range(4)}
    save_parameters(zeros, path)  # version 0
    on_disk, killed_mid_save, killed_writing, kill = 0, 0, 0, 0
    # At least KILLS_PER_FORMAT kills; on a busy machine a kill may miss the
    # save it aimed at, so go on (up to four times as many) until enough hit.
    while kill < KILLS_PER_FORMAT or (
        (killed_mid_save < KILLS_PER_FORMAT // 2 or killed_writing < KILLS_PER_FORMAT // 4)
        and kill < 4 * KILLS_PER_FORMAT
    ):
        kill += 1
        progress = context.Array("q", [on_disk] * 3, lock=False)
        child = context.Process(target=save_forever, args=(path, size, on_disk + 1, progress))
        child.start()
        if kill % 2:  # at any moment of the first few saves
            time.sleep(rng.uniform(0.0, 0.1))
        else:  # soon after a temporary file is made: while it is written, flushed, renamed
            deadline = time.monotonic() + 10
            while progress[WRITING] == on_disk and time.monotonic() < deadline:
                time.sleep(0.0002)
            time.sleep(rng.uniform(0.0, 0.005))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        assert child.exitcode == -signal.SIGKILL  # killed, not failed on its own
        started, writing, finished = progress
        version = version_in(path, size)
        assert version in (finished, started), (version, started, finished)
        killed_mid_save += started != finished
        killed_writing += writing == started != finished
        on_disk = version
    # The kills really hit saves, and a good part of them the writing of the file.
    assert killed_mid_save >= KILLS_PER_FORMAT // 2
    assert killed_writing >= KILLS_PER_FORMAT // 4
    # What a kill leaves is what the documentation of atomic_file says:
    # hidden files .NAME.RANDOM.part beside the target, never the target.
    for name in leftovers(tmp_path, keep={path.name}):
        assert re.fullmatch(rf"\.{re.escape(path.name)}\.[0-9a-f]{{12}}\.part", name), name
    assert len(leftovers(tmp_path, keep={path.name})) <= killed_writing
    save_parameters(zeros, path)  # and the next save works as usual
    assert version_in(path, size) == 0


# -- a full or failing disk --------------------------------------------------------


class FailingFile:
    """A file that fails as a full or broken disk does: the write that would
    go past ``room`` bytes writes what fits, then raises ``OSError(number)``."""

    def __init__(self, file, number, room):
        self.file, self.number, self.room = file, number, room

    def write(self, data):
        if len(data) > self.room:
            self.file.write(bytes(data[: self.room]))
            self.room = 0
            raise OSError(self.number, os.strerror(self.number))
        self.room -= len(data)
        return self.file.write(data)

    def __getattr__(self, name):  # tell, seek, flush, fileno, ... of the real file
        return getattr(self.file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exception):
        self.file.close()


def inject_failing_disk(monkeypatch, number, moment, room=0):
    """Make the temporary files of atomic_file fail at the first write past
    ``room`` bytes, or in os.fsync."""
    real_open, real_fsync = _files._open_temporary, os.fsync
    temporary_handles = []

    def open_failing(path):
        temporary, file = real_open(path)
        temporary_handles.append(file.fileno())
        return temporary, (file if moment == "fsync" else FailingFile(file, number, room))

    def fsync_failing(handle):
        if handle in temporary_handles:
            raise OSError(number, os.strerror(number))
        real_fsync(handle)

    monkeypatch.setattr(_files, "_open_temporary", open_failing)
    if moment == "fsync":
        monkeypatch.setattr(os, "fsync", fsync_failing)


@pytest.mark.parametrize("suffix", [".npz", ".json"])
@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EIO], ids=["ENOSPC", "EIO"])
@pytest.mark.parametrize("moment", ["first write", "halfway", "fsync"])
def test_a_failing_disk_names_the_file_keeps_the_old_one_and_leaves_no_temporary(
        tmp_path, monkeypatch, suffix, number, moment):
    path = tmp_path / f"model{suffix}"
    save_parameters(model(seed=0), path)
    old = path.read_bytes()
    inject_failing_disk(monkeypatch, number, moment, room=0 if moment == "first write"
                        else len(old) // 2)
    with pytest.raises(OSError) as caught:
        save_parameters(model(seed=1), path)
    assert caught.value.errno == number
    message = str(caught.value)
    assert message.startswith(f"[Errno {number}] save_parameters: could not write {path}")
    assert os.strerror(number) in message
    assert path.read_bytes() == old
    assert leftovers(tmp_path, keep={path.name}) == []


def test_a_missing_folder_is_named_with_the_file(tmp_path):
    path = tmp_path / "no such folder" / "model.npz"
    with pytest.raises(FileNotFoundError, match=f"save_parameters: could not write {path}"):
        save_parameters(model(), path)


def fsync_failing_on_folders(monkeypatch, number):
    real_fsync = os.fsync

    def fsync(handle):
        if stat.S_ISDIR(os.fstat(handle).st_mode):
            raise OSError(number, os.strerror(number))
        real_fsync(handle)
    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.skipif(not hasattr(os, "O_DIRECTORY"), reason="folders are flushed on POSIX only")
def test_a_folder_that_fails_to_flush_is_reported_after_the_rename(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    fsync_failing_on_folders(monkeypatch, errno.EIO)
    with pytest.raises(OSError, match="may not survive a power cut") as caught:
        save_parameters(model(seed=3), path)
    assert caught.value.errno == errno.EIO and str(path) in str(caught.value)
    target = model(seed=4)
    load_parameters(target, path)  # the new file is in place
    assert_unchanged(target, values(model(seed=3)))


@pytest.mark.skipif(not hasattr(os, "O_DIRECTORY"), reason="folders are flushed on POSIX only")
def test_a_file_system_that_cannot_flush_folders_is_no_error(tmp_path, monkeypatch):
    fsync_failing_on_folders(monkeypatch, errno.EINVAL)
    save_parameters(model(seed=3), tmp_path / "model.npz")
    assert os.listdir(tmp_path) == ["model.npz"]


def test_the_data_reach_the_disk_before_the_rename_and_the_rename_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(handle):
        events.append("flush folder" if stat.S_ISDIR(os.fstat(handle).st_mode) else "flush file")
        real_fsync(handle)

    def replace(source, target):
        events.append("rename")
        real_replace(source, target)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    save_parameters(model(), tmp_path / "model.json")
    folder_flush = ["flush folder"] if hasattr(os, "O_DIRECTORY") else []
    assert events == ["flush file", "rename", *folder_flush]


def test_saving_never_reads_the_umask(tmp_path, monkeypatch):
    # Reading the umask means setting it: for that instant, every file that
    # another thread creates would be open to all.
    real_umask = os.umask

    def umask(mask):
        raise AssertionError("os.umask was called")
    old = real_umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", umask)
        path = save_parameters(model(), tmp_path / "model.npz")
    finally:
        real_umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640  # 0o666 less the umask


# -- damaged parameter files -------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_damaged_parameter_files_are_refused_and_change_nothing(tmp_path, rng, suffix):
    source = values(model(seed=0))
    original = save_parameters(model(seed=0), tmp_path / f"original{suffix}").read_bytes()
    path = tmp_path / f"model{suffix}"
    target = model(seed=1)
    before = values(target)
    refused = 0
    for what, body in damaged_copies(original, rng):
        path.write_bytes(body)
        try:
            load_parameters(target, path)
        except ValueError as error:  # ParameterMismatchError is one
            message = str(error)
            assert message.startswith(f"load_parameters: {path}") or \
                message.startswith(f"load_parameters: in {path}"), (what, message)
            assert_unchanged(target, before, what)
            refused += 1
            continue
        # The damage missed every check. A cut file never does; in an .npz
        # file, a CRC-32 guards every value, so they must all be right. JSON
        # has no checksum: a changed digit is a different number, one at most.
        assert what.startswith("byte"), what
        wrong = sum(int((target[name].value != value).sum()) for name, value in source.items())
        assert wrong == 0 if suffix == ".npz" else wrong <= 1, what
        for name, value in before.items():
            target[name].value[...] = value
    assert refused >= 20  # at least every cut copy


def other_kinds(tmp_path, suffix):
    """Files named ``*{suffix}`` that are not parameter files of that format."""
    npz = save_parameters(model(), tmp_path / "real.npz").read_bytes()
    as_json = save_parameters(model(), tmp_path / "real.json").read_bytes()
    return {
        "empty": b"",
        "the other format": as_json if suffix == ".npz" else npz,
        "a PNG image": png_bytes(),
        "a gzip file": gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07"),
        "an .npy array": b"\x93NUMPY\x01\x00" + b"v" * 118,
        "JSON of another kind": json.dumps({"weights": [1.0]}).encode(),
        "a JSON list of strings": json.dumps(["a", "b"]).encode(),
        "an entry without a shape": json.dumps({"format": "autodiff-parameters", "parameters": {
            "weight": {"dtype": "float32", "value": [1.0]}}}).encode(),
        "a shape that is not a list": json.dumps({"format": "autodiff-parameters", "parameters": {
            "weight": {"dtype": "float32", "shape": 3, "value": [1.0]}}}).encode(),
        "parameters that are a list": json.dumps(
            {"format": "autodiff-parameters", "parameters": [1, 2]}).encode(),
    }


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_files_of_another_kind_and_folders_are_refused_with_the_file_named(tmp_path, suffix):
    target = model(seed=1)
    before = values(target)
    cases = other_kinds(tmp_path, suffix)
    for what, body in cases.items():
        path = tmp_path / f"model{suffix}"
        path.write_bytes(body)
        with pytest.raises(ValueError) as caught:
            load_parameters(target, path)
        assert str(path) in str(caught.value) and "load_parameters" in str(caught.value), what
        assert_unchanged(target, before, what)
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    with pytest.raises(ValueError, match=f"load_parameters: {folder} is a folder"):
        load_parameters(target, folder)
    with pytest.raises(FileNotFoundError, match=f"load_parameters: no file {tmp_path / 'gone'}"):
        load_parameters(target, tmp_path / f"gone{suffix}")
    assert_unchanged(target, before)


def test_the_messages_say_what_was_wrong(tmp_path):
    path = tmp_path / "model.json"
    cases = other_kinds(tmp_path, ".json")
    expected = {
        "empty": "is not valid JSON",
        "the other format": "is not valid JSON",
        "an entry without a shape": "'weight' is damaged: it needs a dtype, a shape and a value, "
                                    "but holds ['dtype', 'value']",
        "a shape that is not a list": "the shape of 'weight' is damaged: 3 is not a list",
        "a JSON list of strings": "the value of 'weight' is damaged",
        "parameters that are a list": "is not a parameter file written by save_parameters",
    }
    for what, text in expected.items():
        path.write_bytes(cases[what])
        with pytest.raises(ValueError, match=re.escape(text)):
            load_parameters(model(), path)
    path = tmp_path / "model.npz"
    for what, text in [("empty", "is not an .npz file: it is empty"),
                       ("a PNG image", "does not start as a zip archive does")]:
        path.write_bytes(cases[what])
        with pytest.raises(ValueError, match=re.escape(text)):
            load_parameters(model(), path)
    path.write_bytes(save_parameters(model(), tmp_path / "real.npz").read_bytes()[:-30])
    with pytest.raises(ValueError, match=re.escape(f"{path} is damaged or incomplete (BadZipFile")):
        load_parameters(model(), path)


# -- damaged MNIST files -----------------------------------------------------------

MNIST_NAMES = {
    "train-images-idx3-ubyte": 2051,
    "train-labels-idx1-ubyte": 2049,
    "t10k-images-idx3-ubyte": 2051,
    "t10k-labels-idx1-ubyte": 2049,
}


def idx_bytes(array):
    """An IDX file of unsigned bytes: magic (0, 0, 8, ndim), the dimensions, the data."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def fake_mnist():
    """Four small IDX files as MNIST's: {name without .gz: array}."""
    rng = np.random.default_rng(0)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, size=(30, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, size=30),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, size=(24, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, size=24),
    }


@pytest.mark.parametrize("name", MNIST_NAMES)
def test_damaged_gzip_mnist_files_are_refused_with_the_file_named(tmp_path, rng, name):
    arrays = fake_mnist()
    for other, array in arrays.items():
        (tmp_path / f"{other}.gz").write_bytes(gzip.compress(idx_bytes(array), mtime=0))
    path = tmp_path / f"{name}.gz"
    original = path.read_bytes()
    refused = 0
    for what, body in damaged_copies(original, rng):
        path.write_bytes(body)
        try:
            data = load_mnist(tmp_path, download=False)
        except IDXError as error:
            assert str(path) in str(error), (what, str(error))
            refused += 1
            continue
        # gzip's CRC-32 guards the data: what loads is the original.
        assert what.startswith("byte"), what
        split, kind = name.split("-")[:2]
        loaded = getattr(data, f"{'train' if split == 'train' else 'test'}_{kind}")
        expected = arrays[name] / 256 if kind == "images" else arrays[name]
        np.testing.assert_array_equal(loaded, expected, err_msg=what)
    assert refused >= 20
    for what, body in [("empty", b""), ("a PNG", png_bytes()),
                       ("an npz", save_parameters(model(), tmp_path / "m.npz").read_bytes())]:
        path.write_bytes(body)
        with pytest.raises(IDXError, match=re.escape(str(path))):
            load_mnist(tmp_path, download=False)
    path.unlink()
    path.mkdir()
    with pytest.raises(IDXError, match=re.escape(f"{path}: a folder")):
        load_mnist(tmp_path, download=False)


@pytest.mark.parametrize("name", MNIST_NAMES)
def test_damaged_raw_idx_files_are_refused_or_differ_in_one_byte(tmp_path, rng, name):
    array = fake_mnist()[name]
    path = tmp_path / name
    original = idx_bytes(array)
    refused = 0
    for what, body in damaged_copies(original, rng):
        path.write_bytes(body)
        try:
            loaded = read_idx(path, magic=MNIST_NAMES[name])
        except IDXError as error:
            assert str(path) in str(error), (what, str(error))
            refused += 1
            continue
        # A raw IDX file has no checksum: a changed pixel or label goes unseen.
        assert what.startswith("byte"), what
        assert loaded.shape == array.shape and (loaded != array).sum() == 1, what
    assert refused >= 20
    for body in [b"", png_bytes(), gzip.compress(original)]:
        path.write_bytes(body)
        with pytest.raises(IDXError, match=re.escape(str(path))):
            read_idx(path, magic=MNIST_NAMES[name])


# -- threads -----------------------------------------------------------------------


@pytest.mark.slow
def test_two_threads_save_while_a_third_loads_and_nothing_is_lost(tmp_path):
    saves, size = 100, 5_000
    paths = {"npz": tmp_path / "a.npz", "json": tmp_path / "b.json"}
    seen = {kind: [] for kind in paths}
    failures = []

    def parameters(version):
        return {f"w{i}": Parameter(np.full(size, version, np.float32)) for i in range(2)}

    def save(kind):
        try:
            for version in range(1, saves + 1):
                save_parameters(parameters(version), paths[kind])
        except BaseException as error:  # reported by the main thread
            failures.append(error)

    def load():
        try:
            while any(thread.is_alive() for thread in savers):
                for kind, path in paths.items():
                    target = parameters(-1)
                    load_parameters(target, path)
                    found = np.unique(np.concatenate([p.value for p in target.values()]))
                    assert len(found) == 1, f"{path} mixes versions {found}"
                    seen[kind].append(int(found[0]))
        except BaseException as error:
            failures.append(error)

    for path in paths.values():
        save_parameters(parameters(0), path)
    savers = [threading.Thread(target=save, args=(kind,)) for kind in paths]
    loader = threading.Thread(target=load)
    for thread in [*savers, loader]:
        thread.start()
    for thread in [*savers, loader]:
        thread.join()
    assert failures == []
    for kind, path in paths.items():
        assert seen[kind] == sorted(seen[kind])  # never an older version after a newer one
        target = parameters(-1)
        load_parameters(target, path)
        assert all((p.value == saves).all() for p in target.values())  # the last save
        assert len(set(seen[kind])) > 10  # the loads really ran among the saves
    assert sorted(os.listdir(tmp_path)) == ["a.npz", "b.json"]
