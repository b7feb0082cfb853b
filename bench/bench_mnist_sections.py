"""Where the time of a training step goes: autodiff against NumPy by hand, part by part.

Run from the repository root:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/bench_mnist_sections.py

The step of ``bench_mnist.py`` (MLP 784-256-10, softmax cross-entropy, SGD,
minibatches of 128 from MNIST-shaped random data) is cut into four parts,
timed inside real epochs: the forward pass to the logits, the loss, the
backward pass and the update. The hand-written version computes no loss
value, so its "loss" part is the softmax only. The versions take turns every
20 minibatches, as in ``bench_mnist.py``. Prints seconds per epoch for each
part and the difference per step.

Measured in isolation, with the same arrays over and over, both versions do
the same NumPy work to within a few percent. Inside an epoch the engine's
Python work costs more than in isolation: the large matrix products evict
the interpreter's code and objects from the caches between two operations.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from autodiff import backprop
from autodiff.nn import SGD, cross_entropy, mlp

N_IMAGES, N_PIXELS, N_CLASSES, HIDDEN = 60_000, 784, 10, 256
BATCH_SIZE, LEARNING_RATE, CHUNK = 128, 0.1, 20
PARTS = ("forward", "loss", "backward", "update")


def make_versions():  # type: ignore[no-untyped-def]
    """The two training steps, each adding its parts' times into its own dict."""
    model = mlp(N_PIXELS, HIDDEN, N_CLASSES, seed=0)
    optimizer = SGD(model.parameters(), learning_rate=LEARNING_RATE)
    w1, b1, w2, b2 = (p.value.copy() for p in model.parameters())
    timed = {"autodiff": dict.fromkeys(PARTS, 0.0), "numpy": dict.fromkeys(PARTS, 0.0)}
    clock = time.perf_counter

    def autodiff_step(x: np.ndarray, y: np.ndarray) -> None:
        t0 = clock()
        logits = model(x)
        t1 = clock()
        loss = cross_entropy(logits, y)
        t2 = clock()
        gradients = backprop(loss, optimizer.parameters)
        t3 = clock()
        optimizer.step(gradients)
        t4 = clock()
        for part, seconds in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            timed["autodiff"][part] += seconds

    def numpy_step(x: np.ndarray, y: np.ndarray) -> None:
        n = len(x)
        t0 = clock()
        hidden = np.maximum(x @ w1 + b1, 0)
        logits = hidden @ w2 + b2
        t1 = clock()
        shifted = logits - logits.max(axis=1, keepdims=True)
        probabilities = np.exp(shifted)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        t2 = clock()
        g_logits = probabilities
        g_logits[np.arange(n), y] -= 1
        g_logits /= n
        g_hidden = (g_logits @ w2.T) * (hidden > 0)
        g_w2, g_b2 = hidden.T @ g_logits, g_logits.sum(axis=0)
        g_w1, g_b1 = x.T @ g_hidden, g_hidden.sum(axis=0)
        t3 = clock()
        for parameter, gradient in ((w2, g_w2), (b2, g_b2), (w1, g_w1), (b1, g_b1)):
            parameter -= LEARNING_RATE * gradient
        t4 = clock()
        for part, seconds in zip(PARTS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            timed["numpy"][part] += seconds

    return {"autodiff": autodiff_step, "numpy": numpy_step}, timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs (after one warm-up)")
    arguments = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.random((N_IMAGES, N_PIXELS), dtype=np.float32)
    labels = rng.integers(0, N_CLASSES, size=N_IMAGES)
    steps, timed = make_versions()
    names = list(steps)
    starts = range(0, N_IMAGES, BATCH_SIZE)
    for epoch in range(arguments.epochs + 1):
        if epoch == 1:  # the first epoch was the warm-up
            for parts in timed.values():
                parts.update(dict.fromkeys(PARTS, 0.0))
        order = rng.permutation(N_IMAGES)
        for chunk, first in enumerate(range(0, len(starts), CHUNK)):
            for name in names[chunk % 2 :] + names[: chunk % 2]:
                for start in starts[first : first + CHUNK]:
                    index = order[start : start + BATCH_SIZE]
                    steps[name](images[index], labels[index])
    print(f"MNIST-shaped training step, batch {BATCH_SIZE}, {len(starts)} steps per epoch, "
          f"mean of {arguments.epochs} epochs, versions in turns of {CHUNK} minibatches")
    print(f"{'part':10}{'autodiff s':>12}{'NumPy s':>10}{'difference per step':>22}")
    for part in PARTS:
        a = timed["autodiff"][part] / arguments.epochs
        h = timed["numpy"][part] / arguments.epochs
        print(f"{part:10}{a:>12.3f}{h:>10.3f}{(a - h) / len(starts) * 1e6:>19.0f} µs")
    a = sum(timed["autodiff"].values()) / arguments.epochs
    h = sum(timed["numpy"].values()) / arguments.epochs
    print(f"{'total':10}{a:>12.3f}{h:>10.3f}{(a - h) / len(starts) * 1e6:>19.0f} µs   ratio {a / h:.2f}")
    print("(the NumPy version computes no loss value: its 'loss' part is the softmax only)")


if __name__ == "__main__":
    main()
