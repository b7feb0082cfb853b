"""Benchmark: one epoch of MNIST-sized training, autodiff against hand-written NumPy.

Run from the repository root:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/bench_mnist.py

What is measured
----------------
Data of MNIST's shape: 60,000 random images of 784 float32 pixels in [0, 1)
and random labels 0..9 (random data is fine for timing). The network is the
MLP 784-256-10 with ReLU and softmax cross-entropy, trained with SGD in
minibatches of 128 drawn by ``autodiff.nn.batches``. Two versions of the same
computation:

- ``autodiff``: the model of ``autodiff.nn``, ``backprop(loss, parameters)``
  and ``SGD.step`` -- the training loop of the MNIST chapter;
- ``numpy``: the forward pass, the backward pass and the update written out
  by hand in NumPy, as a careful student would (no special tricks).

Each version runs in its own subprocess (so that one's memory does not count
for the other), twice, alternating, and reports per epoch:

- seconds (the best epoch counts: slower ones measure the other programs on
  the machine);
- minor page faults (``resource.getrusage().ru_minflt`` difference over the
  epoch): how often the process took fresh memory pages from the OS;
- peak memory: ``ru_maxrss`` of the whole process (which includes the 188 MB
  of data and the interpreter), and the peak of NumPy's allocations during
  one epoch above what was allocated before it (``tracemalloc``, in an extra
  epoch that is not timed, since tracing slows allocation down).

A page fault here is the kernel handing the process a fresh page of memory,
typically because a large temporary array was freed back to the OS and a new
one was allocated. The optimisers of ``autodiff.nn`` update in place through
preallocated buffers for that reason.

On a busy machine, multithreaded BLAS makes the timings erratic (its threads
spin while they wait for a core); ``--blas-threads 1`` gives steadier figures.

Finally, if ``load_mnist`` finds the full training set (60,000 images) without
downloading, the chapter's model is trained on it and its test accuracy is
printed; otherwise that part is skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from autodiff import backprop
from autodiff.nn import SGD, batches, cross_entropy, mlp

N_IMAGES, N_PIXELS, N_CLASSES, HIDDEN = 60_000, 784, 10, 256
BATCH_SIZE, LEARNING_RATE = 128, 0.1


def make_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.random((N_IMAGES, N_PIXELS), dtype=np.float32)
    labels = rng.integers(0, N_CLASSES, size=N_IMAGES)
    return images, labels


def numpy_step(W1, b1, W2, b2, images, labels, learning_rate):  # type: ignore[no-untyped-def]
    """Forward, backward and SGD update of the MLP, written by hand."""
    n = len(images)
    hidden = np.maximum(images @ W1 + b1, 0)
    logits = hidden @ W2 + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    g_logits = probabilities
    g_logits[np.arange(n), labels] -= 1
    g_logits /= n
    g_hidden = (g_logits @ W2.T) * (hidden > 0)
    W2 -= learning_rate * (hidden.T @ g_logits)
    b2 -= learning_rate * g_logits.sum(axis=0)
    W1 -= learning_rate * (images.T @ g_hidden)
    b1 -= learning_rate * g_hidden.sum(axis=0)


def make_epoch(version: str, images: np.ndarray, labels: np.ndarray):  # type: ignore[no-untyped-def]
    model = mlp(N_PIXELS, HIDDEN, N_CLASSES, seed=0)
    rng = np.random.default_rng(1)
    if version == "numpy":
        arrays = [p.value for p in model.parameters()]

        def epoch() -> None:
            for x, y in batches(images, labels, BATCH_SIZE, seed=rng):
                numpy_step(*arrays, x, y, LEARNING_RATE)
    else:
        optimizer = SGD(model.parameters(), learning_rate=LEARNING_RATE)

        def epoch() -> None:
            for x, y in batches(images, labels, BATCH_SIZE, seed=rng):
                loss = cross_entropy(model(x), y)
                optimizer.step(backprop(loss, optimizer.parameters))
    return epoch


def worker(version: str, epochs: int) -> None:
    """Run in a subprocess: time ``epochs`` epochs and print the figures as JSON."""
    images, labels = make_data()
    epoch = make_epoch(version, images, labels)
    epoch()  # warm-up: first-touch of the parameters, caches, BLAS threads
    seconds, faults = [], []
    for _ in range(epochs):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        epoch()
        seconds.append(time.perf_counter() - start)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    tracemalloc.start()
    baseline = tracemalloc.get_traced_memory()[0]
    epoch()
    peak = tracemalloc.get_traced_memory()[1] - baseline
    tracemalloc.stop()
    print(json.dumps({"seconds": seconds, "faults": faults, "maxrss_mb": maxrss_mb,
                      "epoch_peak_mb": peak / 2**20}))


def run_worker(version: str, epochs: int, threads: int | None) -> dict:  # type: ignore[type-arg]
    environment = dict(os.environ)
    if threads is not None:
        environment["OPENBLAS_NUM_THREADS"] = environment["OMP_NUM_THREADS"] = str(threads)
    result = subprocess.run(
        [sys.executable, __file__, "--worker", version, "--epochs", str(epochs)],
        capture_output=True, text=True, check=True, env=environment,
    )
    return json.loads(result.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def full_mnist_accuracy() -> None:
    from autodiff.nn import Momentum, evaluate, fit, load_mnist

    try:
        data = load_mnist(download=False, flatten=True)
    except (OSError, ValueError) as error:
        print(f"full MNIST: skipped, no data found without downloading ({error})")
        return
    if len(data.train_images) != 60_000:
        print(f"full MNIST: skipped, the training set found has {len(data.train_images):,} "
              "images, not 60,000 (a subset?)")
        return
    model = mlp(N_PIXELS, HIDDEN, N_CLASSES, seed=0)
    optimizer = Momentum(model.parameters(), learning_rate=0.1, momentum=0.9)
    start = time.perf_counter()
    fit(model, optimizer, data.train_images, data.train_labels, epochs=10, batch_size=64,
        seed=0, progress=False)
    _, test_accuracy = evaluate(model, data.test_images, data.test_labels)
    print(f"full MNIST: the chapter's model (784-256-10, momentum SGD, 10 epochs, "
          f"{time.perf_counter() - start:.0f} s) reaches test accuracy {test_accuracy:.4f} "
          f"(target 0.98)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=["numpy", "autodiff"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-accuracy", action="store_true",
                        help="do not train on full MNIST even if it is available")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="set OPENBLAS_NUM_THREADS for the timed runs (default: inherit). "
                        "On a busy machine, 1 gives steadier figures: idle BLAS threads "
                        "spin while they wait for a core.")
    arguments = parser.parse_args()
    if arguments.worker:
        worker(arguments.worker, arguments.epochs)
        return

    print(f"MNIST-shaped data {N_IMAGES:,} x {N_PIXELS} float32, MLP {N_PIXELS}-{HIDDEN}-"
          f"{N_CLASSES} ReLU, softmax cross-entropy, batch {BATCH_SIZE}, SGD; best of "
          f"{arguments.rounds} x {arguments.epochs} epochs per version, in subprocesses")
    threads = arguments.blas_threads or os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"BLAS threads: {threads}; {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.1f} at the start")
    results: dict[str, list[dict]] = {"numpy": [], "autodiff": []}  # type: ignore[type-arg]
    for _ in range(arguments.rounds):
        for version in results:
            results[version].append(run_worker(version, arguments.epochs,
                                               arguments.blas_threads))
    summary = {}
    for version, runs in results.items():
        summary[version] = {
            "seconds": min(s for run in runs for s in run["seconds"]),
            "faults": min(f for run in runs for f in run["faults"]),
            "maxrss_mb": max(run["maxrss_mb"] for run in runs),
            "epoch_peak_mb": max(run["epoch_peak_mb"] for run in runs),
        }
    print(f"{'':28}{'numpy by hand':>15}{'autodiff':>12}{'ratio':>8}")
    rows = [("seconds per epoch (best)", "seconds", "{:.3f}"),
            ("page faults per epoch (min)", "faults", "{:,}"),
            ("peak RSS of process, MB", "maxrss_mb", "{:.1f}"),
            ("peak allocs in epoch, MB", "epoch_peak_mb", "{:.2f}")]
    for label, key, form in rows:
        a, b = summary["numpy"][key], summary["autodiff"][key]
        ratio = f"{b / a:.2f}" if a else "-"
        print(f"{label:28}{form.format(a):>15}{form.format(b):>12}{ratio:>8}")
    print("targets: time ratio <= 1.10, peak memory ratio <= 1.2")
    if not arguments.skip_accuracy:
        full_mnist_accuracy()


if __name__ == "__main__":
    main()
