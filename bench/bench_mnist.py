"""Benchmark: one epoch of MNIST-sized training, autodiff against hand-written NumPy.

Run from the repository root:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/bench_mnist.py

What is measured
----------------
Data of MNIST's shape: 60,000 random images of 784 float32 pixels in [0, 1)
and random labels 0..9 (random data is fine for timing). The network is the
MLP 784-256-10 with ReLU and softmax cross-entropy, trained with SGD in
minibatches of 128 drawn by ``autodiff.nn.batches``. Three versions of the
same computation:

- ``autodiff``: the model of ``autodiff.nn``, ``backprop(loss, parameters)``
  and ``SGD.step`` -- the training loop of the MNIST chapter;
- ``numpy``: the forward pass, the backward pass and the update written out
  by hand in NumPy, as a careful student would (no special tricks);
- ``engine calls``, a control: exactly the NumPy calls that autodiff makes,
  in its order, with no engine around them. It splits autodiff's extra time
  into extra NumPy work (this row against the hand-written one) and the
  engine's Python bookkeeping (autodiff against this row).

The versions run in one process on the same minibatches, in turns of 20
minibatches, in an order that rotates from turn to turn, so that they see
the machine in the same state: its speed varies from minute to minute, by
as much as a factor of two. A version's epoch time is the sum of its turns.
Reported per epoch:

- seconds: the best epoch of each version, and the median over the epochs
  of the ratio to the hand-written version;
- minor page faults (``resource.getrusage().ru_minflt`` difference over the
  epoch): how often the process took fresh memory pages from the OS (the
  versions share the process's heap, so one may reuse pages the other
  freed);
- peak memory: the peak of NumPy's allocations during one epoch above what
  was allocated before it (``tracemalloc``, in an extra epoch that is not
  timed, since tracing slows allocation down).

With ``--baseline PATH`` (another checkout of the repository, for example a
``git worktree`` of main), that checkout's autodiff takes its turn too, as
"autodiff (baseline)", so that two versions of the package are compared in
the same run.

If PyTorch is installed, the same network trained with ``torch.optim.SGD``
takes its turn too, for comparison (time only), when ``--blas-threads 1`` is
given: with more threads, PyTorch's thread pool and BLAS's spin against each
other in one process and slow both down.

On a busy machine, multithreaded BLAS makes the timings erratic (its threads
spin while they wait for a core); ``--blas-threads 1`` gives steadier figures.

Finally, if ``load_mnist`` finds the full training set (60,000 images) without
downloading, the chapter's model is trained on it and its test accuracy is
printed; otherwise that part is skipped.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import tracemalloc

from types import SimpleNamespace
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import autodiff  # noqa: E402
import autodiff.nn  # noqa: E402
from autodiff.nn import batches, mlp  # noqa: E402

N_IMAGES, N_PIXELS, N_CLASSES, HIDDEN = 60_000, 784, 10, 256
BATCH_SIZE, LEARNING_RATE = 128, 0.1
CHUNK = 20  # minibatches per turn


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


def engine_calls_step(W1, b1, W2, b2, images, labels, learning_rate):  # type: ignore[no-untyped-def]
    """The NumPy calls that autodiff's step makes, in its order, without the engine.

    A control: it keeps the same arrays alive as long as the graph does and
    computes what autodiff computes beyond the hand-written version (the
    label check, the loss value). Its time minus the hand-written version's
    is the cost of that NumPy work; autodiff's time minus its time is the
    cost of the engine's Python bookkeeping. It repeats lines of
    ``Affine.apply``, ``ReLU.apply``, ``SoftmaxCrossEntropy.apply``, their
    grads and ``SGD.step`` on purpose: change it when they change.
    """
    a1 = images @ W1                                      # Affine
    a1 += b1
    hidden = np.maximum(a1, 0)                            # ReLU
    logits = hidden @ W2                                  # Affine
    logits += b2
    if labels.size == 0 or labels.view(labels.dtype.str.replace("i", "u")).max() >= N_CLASSES:
        raise ValueError("bad labels")                    # SoftmaxCrossEntropy
    n = logits.shape[0]
    rows = np.arange(n)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exponentials = np.exp(shifted)
    sums = exponentials.sum(axis=1, keepdims=True)
    probabilities = exponentials / sums
    loss = (np.log(sums[:, 0]) - shifted[rows, labels]).mean()
    one_hot = np.zeros(logits.shape, dtype=logits.dtype)
    one_hot[rows, labels] = 1
    g_logits = (probabilities - one_hot) * (np.ones((), loss.dtype) / n)  # its grad
    g_hidden = g_logits @ W2.T                            # Affine's grad
    gradients = [None, None, hidden.T @ g_logits, g_logits.sum(axis=0)]
    g_a1 = g_hidden * (a1 >= 0)                           # ReLU's grad
    gradients[:2] = images.T @ g_a1, g_a1.sum(axis=0)     # Affine's grad
    for parameter, gradient in zip((W1, b1, W2, b2), gradients):
        parameter -= learning_rate * gradient             # SGD.step


def make_step(version: str, package: Any = None):  # type: ignore[no-untyped-def]
    """One training step ``step(images, labels)`` of ``version``, on its own fresh model.

    ``package`` holds the ``ad`` and ``nn`` modules that the autodiff
    versions use: this checkout's by default, or a baseline's.
    """
    package = package or SimpleNamespace(ad=autodiff, nn=autodiff.nn)
    model = package.nn.mlp(N_PIXELS, HIDDEN, N_CLASSES, seed=0)
    if version == "numpy":
        arrays = [p.value for p in model.parameters()]

        def step(x: np.ndarray, y: np.ndarray) -> None:
            numpy_step(*arrays, x, y, LEARNING_RATE)
    elif version == "engine calls":
        arrays = [p.value for p in model.parameters()]

        def step(x: np.ndarray, y: np.ndarray) -> None:
            engine_calls_step(*arrays, x, y, LEARNING_RATE)
    else:
        optimizer = package.nn.SGD(model.parameters(), learning_rate=LEARNING_RATE)
        cross_entropy, backprop = package.nn.cross_entropy, package.ad.backprop

        def step(x: np.ndarray, y: np.ndarray) -> None:
            loss = cross_entropy(model(x), y)
            optimizer.step(backprop(loss, optimizer.parameters))
    return step


def make_torch_step():  # type: ignore[no-untyped-def]
    """The same training step in PyTorch, or None if it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(N_PIXELS, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, N_CLASSES)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss_function = torch.nn.CrossEntropyLoss()

    def step(x: np.ndarray, y: np.ndarray) -> None:
        optimizer.zero_grad()
        loss_function(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
        optimizer.step()
    return step


def measure(steps: dict, images: np.ndarray, labels: np.ndarray, rounds: int) -> dict:  # type: ignore[type-arg]
    """Epoch times, page faults and peak memory of each version.

    Each epoch is cut into chunks of CHUNK minibatches. Every chunk runs
    once per version, one version after the other, in an order that rotates
    from chunk to chunk; a version's epoch time is the sum of its chunks. A
    chunk takes some tens of milliseconds, so the versions compared see the
    machine in the same state, while each chunk is long enough to keep the
    caches as warm as in a plain epoch.
    """
    names = list(steps)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    faults: dict[str, list[int]] = {name: [] for name in names}
    rng = np.random.default_rng(1)
    for epoch in range(rounds + 1):  # the first epoch warms up and is not counted
        order = rng.permutation(len(images))
        starts = range(0, len(images), BATCH_SIZE)
        total = dict.fromkeys(names, 0.0)
        paged = dict.fromkeys(names, 0)
        for chunk, first in enumerate(range(0, len(starts), CHUNK)):
            rotated = names[chunk % len(names):] + names[: chunk % len(names)]
            for name in rotated:
                step = steps[name]
                before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
                start = time.perf_counter()
                for batch_start in starts[first : first + CHUNK]:
                    index = order[batch_start : batch_start + BATCH_SIZE]
                    step(images[index], labels[index])
                total[name] += time.perf_counter() - start
                paged[name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        if epoch:
            for name in names:
                seconds[name].append(total[name])
                faults[name].append(paged[name])
    peaks = {}
    for name in [n for n in ("numpy", "autodiff", "autodiff (baseline)") if n in steps]:
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        for x, y in batches(images, labels, BATCH_SIZE, seed=2):
            steps[name](x, y)
        peaks[name] = (tracemalloc.get_traced_memory()[1] - baseline) / 2**20
        tracemalloc.stop()
    return {"seconds": seconds, "faults": faults, "peaks": peaks}


def full_mnist_accuracy() -> None:
    """Train the MNIST chapter's model with its recipe on the full set, if it is there."""
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
    # The chapter's recipe: momentum SGD, batches of 64, five epochs at 0.1 and one at 0.01.
    model = mlp(N_PIXELS, HIDDEN, N_CLASSES, seed=0)
    optimizer = Momentum(model.parameters(), learning_rate=0.1, momentum=0.9)
    start = time.perf_counter()
    for epochs, learning_rate in ((5, 0.1), (1, 0.01)):
        optimizer.learning_rate = learning_rate
        fit(model, optimizer, data.train_images, data.train_labels, epochs=epochs, batch_size=64,
            seed=epochs, progress=False)
    _, test_accuracy = evaluate(model, data.test_images, data.test_labels)
    print(f"full MNIST: the chapter's model and recipe (784-256-10, momentum SGD, 6 epochs, "
          f"{time.perf_counter() - start:.0f} s) reaches test accuracy {test_accuracy:.4f} "
          f"(target 0.98)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="epochs per version, in turns")
    parser.add_argument("--baseline", help="another checkout of the repository, whose autodiff "
                        "takes its turn too")
    parser.add_argument("--skip-accuracy", action="store_true",
                        help="do not train on full MNIST even if it is available")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="set OPENBLAS_NUM_THREADS (default: inherit). On a busy machine, "
                        "1 gives steadier figures: idle BLAS threads spin while they wait "
                        "for a core.")
    arguments = parser.parse_args()
    threads = arguments.blas_threads
    if threads is not None and os.environ.get("OPENBLAS_NUM_THREADS") != str(threads):
        # BLAS reads the variable when NumPy is imported: start again with it set.
        environment = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        os.execve(sys.executable, [sys.executable, *sys.argv], environment)

    print(f"MNIST-shaped data {N_IMAGES:,} x {N_PIXELS} float32, MLP {N_PIXELS}-{HIDDEN}-"
          f"{N_CLASSES} ReLU, softmax cross-entropy, batch {BATCH_SIZE}, SGD; "
          f"{arguments.rounds} epochs per version, in turns of {CHUNK} minibatches, in one process")
    print(f"BLAS threads: {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}; "
          f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at the start")
    images, labels = make_data()
    steps = {name: make_step(name) for name in ("numpy", "engine calls", "autodiff")}
    if arguments.baseline:
        from _checkouts import load

        baseline = load(arguments.baseline)
        steps["autodiff (baseline)"] = make_step("autodiff", baseline)
        print(f"baseline: the autodiff of {baseline.path}")
    # PyTorch brings its own thread pool; two pools of spinning threads in one
    # process slow each other down, so PyTorch joins only with one BLAS thread.
    torch_step = make_torch_step() if threads == 1 else None
    if torch_step is None:
        print("PyTorch: not compared (it is, when installed, with --blas-threads 1)")
    else:
        import torch

        torch.set_num_threads(1)
        steps["PyTorch"] = torch_step
    result = measure(steps, images, labels, arguments.rounds)
    seconds, faults, peaks = result["seconds"], result["faults"], result["peaks"]
    hand = seconds["numpy"]
    print(f"{'':30}{'best s/epoch':>13}{'ratio':>7}{'median ratio':>14}{'page faults':>13}"
          f"{'peak MB':>9}{'ratio':>7}")
    for name, times in seconds.items():
        paired = sorted(t / h for t, h in zip(times, hand))
        median = paired[len(paired) // 2]  # of the epochs' ratios
        peak = (f"{peaks[name]:>9.2f}{peaks[name] / peaks['numpy']:>7.2f}" if name in peaks
                else f"{'-':>9}{'':>7}")
        label = {"numpy": "NumPy by hand", "engine calls": "NumPy, autodiff's calls",
                 "autodiff": "autodiff"}.get(name, name)
        print(f"{label:30}{min(times):>13.3f}{min(times) / min(hand):>7.2f}{median:>14.2f}"
              f"{min(faults[name]):>13,}{peak}")
    if "autodiff (baseline)" in seconds:
        this, other = seconds["autodiff"], seconds["autodiff (baseline)"]
        paired = sorted(t / o for t, o in zip(this, other))
        print(f"this checkout against the baseline: best epoch {min(this) / min(other):.3f}, "
              f"median of the epochs' ratios {paired[len(paired) // 2]:.3f}")
    print("targets: autodiff's time ratio <= 1.10, its peak memory ratio <= 1.2")
    print(f"('ratio': best epoch against best epoch; 'median ratio': over the {arguments.rounds} epochs, "
          f"each run in turns of {CHUNK} minibatches)")
    if not arguments.skip_accuracy:
        full_mnist_accuracy()


if __name__ == "__main__":
    main()
