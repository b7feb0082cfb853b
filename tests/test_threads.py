"""Threads: graphs built and differentiated in several threads at once (issue 13, item 6).

Each thread records its own graphs, but threads share three things in the
engine: the switch of ``no_grad`` (one per thread, :class:`threading.local`),
the counter of recorded operations that decides when full garbage
collections wait for a large graph (``autodiff._speed``), and Python's
garbage collector itself, which ``backprop`` switches off while it runs.
These tests check that sharing: every gradient is right, the collector ends
with the thresholds and the on/off state it started with, and ``no_grad`` in
one thread does not stop another thread from recording.

Python switches threads every few microseconds here (``sys.setswitchinterval``)
instead of every 5 ms, so that the threads interleave inside the engine's
short critical sections far more often than they would by default.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from autodiff import Exp, Parameter, Sigmoid, Tanh, backprop, is_grad_enabled
from autodiff import _speed
from autodiff.nn import Linear, cross_entropy, predict

STEPS = 1_000


@pytest.fixture(autouse=True)
def frequent_switches() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def run_in_threads(*targets: Callable[[], None]) -> list[str]:
    """Start one thread per target at the same moment, wait for all; the errors, as text."""
    errors: list[str] = []  # text only: a traceback would keep a thread's graph alive
    start = threading.Barrier(len(targets))

    def run(target: Callable[[], None]) -> None:
        try:
            start.wait()
            target()
        except BaseException as error:  # reported by the test
            errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=run, args=(target,)) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a thread did not finish in 2 minutes"
    return errors


def train_by_hand(seed: int, steps: int, mismatches: list[str]) -> None:
    """``steps`` small graphs of 12 operations, each checked against its gradient by hand."""
    rng = np.random.default_rng(seed)
    w = Parameter(rng.normal(size=(3, 2)))
    for step in range(steps):
        x, c = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
        h = Tanh(x @ w)
        loss = Sigmoid(h * c).sum() + (w * w).mean() + Exp(-w).sum()
        gradient = backprop(loss, [w])[w]

        # The same by hand: s = sigmoid(u), u = h c, h = tanh(x w).
        h_ = np.tanh(x @ w.value)
        s_ = 1 / (1 + np.exp(-h_ * c))
        expected = x.T @ (s_ * (1 - s_) * c * (1 - h_**2)) + 2 * w.value / w.size - np.exp(-w.value)
        if not np.allclose(gradient, expected, rtol=1e-12, atol=1e-12):
            mismatches.append(f"seed {seed}, step {step}: {gradient.tolist()} != {expected.tolist()}")
        w.value = w.value - 0.01 * gradient  # so that every step differs


@pytest.mark.slow
def test_two_threads_build_and_backprop_their_own_graphs(monkeypatch: pytest.MonkeyPatch) -> None:
    gc.collect()  # frees large graphs of earlier tests, and with them their checkpoints
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    checkpoints: list[int] = []
    take_checkpoint = _speed._checkpoint

    def counted(operation: Any) -> None:
        checkpoints.append(1)
        take_checkpoint(operation)

    monkeypatch.setattr(_speed, "_checkpoint", counted)
    mismatches: list[str] = []
    errors = run_in_threads(
        lambda: train_by_hand(1, STEPS, mismatches),
        lambda: train_by_hand(2, STEPS, mismatches),
    )
    assert errors == []
    assert mismatches == []
    # 2 x 1,000 x 12 operations pass at least two checkpoints (one per
    # LARGE_GRAPH = 10,000 recorded operations, counted over all threads), so
    # full collections were deferred and restored concurrently.
    assert len(checkpoints) >= 2
    assert not _speed.deferring()
    assert gc.get_threshold() == thresholds
    assert gc.isenabled() == enabled


def test_no_grad_in_one_thread_leaves_recording_on_in_another() -> None:
    """predict runs under no_grad in one thread while another thread trains."""
    rng = np.random.default_rng(3)
    images = rng.normal(size=(8, 5))
    labels = rng.integers(0, 3, size=8)
    predicting_model = Linear(5, 3, seed=0, dtype=np.float64)
    training_model = Linear(5, 3, seed=1, dtype=np.float64)
    training_done = threading.Event()
    predictions = [0]
    problems: list[str] = []

    def predicting() -> None:
        expected = images @ predicting_model.weight.value + predicting_model.bias.value
        while not training_done.is_set():
            outputs = predict(predicting_model, images, batch_size=3)  # under no_grad
            if not np.allclose(outputs, expected, rtol=1e-12):
                problems.append("predict gave other outputs")
            predictions[0] += 1

    def training() -> None:
        try:
            w, b = training_model.weight, training_model.bias
            for step in range(200):
                if not is_grad_enabled():
                    problems.append(f"step {step}: no_grad of the other thread reached this one")
                loss = cross_entropy(training_model(images), labels)
                if loss.operation is None:
                    problems.append(f"step {step}: the loss was not recorded")
                    continue
                gradients = backprop(loss, [w, b])
                # By hand: the softmax minus the one-hot labels, averaged over the batch.
                logits = images @ w.value + b.value
                p = np.exp(logits - logits.max(axis=1, keepdims=True))
                p /= p.sum(axis=1, keepdims=True)
                p[np.arange(8), labels] -= 1
                if not (np.allclose(gradients[w], images.T @ p / 8, rtol=1e-10, atol=1e-12)
                        and np.allclose(gradients[b], p.sum(axis=0) / 8, rtol=1e-10, atol=1e-12)):
                    problems.append(f"step {step}: a wrong gradient")
                w.value = w.value - 0.1 * gradients[w]
                b.value = b.value - 0.1 * gradients[b]
        finally:
            training_done.set()

    assert run_in_threads(predicting, training) == []
    assert problems == []
    assert predictions[0] >= 2  # the two threads did overlap
    assert is_grad_enabled()
