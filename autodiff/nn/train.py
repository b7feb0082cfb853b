"""Training: one step, a loop over epochs with a progress bar, and evaluation.

A training step is four lines: the forward pass, the loss, the gradients of
the parameters, the update (:func:`train_step`). :func:`fit` repeats it over
minibatches and epochs and records the loss and accuracy of each epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from autodiff.core import Variable, backprop, no_grad
from autodiff.nn.data import batches
from autodiff.nn.layers import make_rng
from autodiff.nn.losses import accuracy, cross_entropy
from autodiff.nn.optim import Optimizer

__all__ = ["History", "train_step", "predict", "evaluate", "fit"]

Model = Callable[[Any], Variable]
LossFunction = Callable[[Any, Any], Variable]


def train_step(
    model: Model,
    optimizer: Optimizer,
    images: np.ndarray,
    labels: np.ndarray,
    loss_function: LossFunction = cross_entropy,
) -> tuple[float, float]:
    """Train on one minibatch; return its loss and accuracy (before the update).

    The accuracy is ``nan`` when the labels are not class indices (a
    regression target for an MSE loss, say).

    Examples
    --------
    >>> from autodiff.nn import Linear, SGD
    >>> model = Linear(2, 2, seed=0)
    >>> x, y = np.array([[1, 0], [0, 1]], np.float32), np.array([0, 1])
    >>> first, _ = train_step(model, SGD(model, 0.5), x, y)
    >>> for _ in range(20):
    ...     loss, _ = train_step(model, SGD(model, 0.5), x, y)
    >>> loss < first
    True
    """
    logits = model(images)
    loss = loss_function(logits, labels)
    gradients = backprop(loss, optimizer.parameters)
    optimizer.step(gradients)
    return float(loss.value), _accuracy_if_classes(logits, labels)


def _accuracy_if_classes(logits: Variable | np.ndarray, labels: Any) -> float:
    """:func:`accuracy` for integer class labels, ``nan`` for any other target."""
    if np.asarray(labels).dtype.kind in "iu":
        return accuracy(logits, labels)
    return float("nan")


def predict(model: Model, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """The model's outputs (for a classifier: the logits) for all ``images``.

    The images go through the model ``batch_size`` at a time, under
    :func:`~autodiff.core.no_grad`: no graph is recorded, so each batch's
    intermediate arrays are freed as soon as the batch is done.

    Examples
    --------
    >>> from autodiff.nn import Linear
    >>> model = Linear(3, 2, seed=0)
    >>> images = np.ones((5, 3), dtype=np.float32)
    >>> logits = predict(model, images, batch_size=2)   # batches of 2, 2 and 1
    >>> logits.shape
    (5, 2)
    >>> bool(np.allclose(logits, model(images).value))   # the same as one big batch
    True
    """
    with no_grad():
        outputs = [
            model(images[start : start + batch_size]).value
            for start in range(0, len(images), batch_size)
        ]
    return np.concatenate(outputs)


def evaluate(
    model: Model,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int = 1000,
    loss_function: LossFunction = cross_entropy,
) -> tuple[float, float]:
    """The mean loss and the accuracy of ``model`` on a data set.

    Examples
    --------
    >>> from autodiff.nn import Linear
    >>> model = Linear(2, 2, seed=0)
    >>> loss, acc = evaluate(model, np.eye(2, dtype=np.float32), np.array([0, 1]))
    >>> 0 <= acc <= 1
    True
    """
    logits = predict(model, images, batch_size)
    with no_grad():
        loss = float(loss_function(logits, labels).value)
    return loss, _accuracy_if_classes(logits, labels)


@dataclass
class History:
    """What :func:`fit` measured, one entry per epoch.

    ``loss`` and ``accuracy`` are averages over the epoch's minibatches, each
    measured before that batch's update. ``test_loss`` and ``test_accuracy``
    are measured after each epoch on the data passed as ``test_data``, and
    stay empty without it.

    Examples
    --------
    >>> from autodiff.nn import Linear, SGD
    >>> x, y = np.eye(2, dtype=np.float32), np.array([0, 1])
    >>> model = Linear(2, 2, seed=0)
    >>> history = fit(model, SGD(model, 0.5), x, y, epochs=3, progress=False)
    >>> len(history.loss), len(history.accuracy), history.test_accuracy
    (3, 3, [])
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)


def fit(
    model: Model,
    optimizer: Optimizer,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    epochs: int = 1,
    batch_size: int = 128,
    seed: int | np.random.Generator | None = 0,
    test_data: tuple[np.ndarray, np.ndarray] | None = None,
    loss_function: LossFunction = cross_entropy,
    progress: bool = True,
    file: IO[str] | None = None,
    stop_on_nonfinite: bool = True,
) -> History:
    """Train ``model`` for some epochs of shuffled minibatches.

    Parameters
    ----------
    model
        A callable from a batch of images to a Variable of logits.
    optimizer
        Built with the model's parameters.
    images, labels
        The training data.
    epochs, batch_size
        How many passes over the data, in minibatches of which size.
    seed
        Seeds the shuffling; the same seed gives the same order of batches.
    test_data
        Optional ``(images, labels)`` evaluated after every epoch.
    loss_function
        ``loss_function(logits, labels)``, by default :func:`cross_entropy`.
    progress
        Show a tqdm progress bar per epoch with the running loss.
    file
        By default a live progress bar goes to standard error. Given a text
        stream, such as ``sys.stdout``, ``fit`` writes one finished bar per
        epoch to it instead: plain lines that read well in a log or in a
        notebook rendered to HTML.
    stop_on_nonfinite
        Stop at the first batch whose loss is NaN or infinite, as Keras's
        ``TerminateOnNaN`` does. With ``False``, training goes on, and the
        history records the NaN.

    Returns
    -------
    History
        The loss and accuracy of every epoch.

    Raises
    ------
    FloatingPointError
        If a loss is NaN or infinite (unless ``stop_on_nonfinite`` is false).
        The message names the epoch and the batch. The parameters then hold
        the update of that batch.

    Examples
    --------
    Two points to tell apart, in minibatches of 4 of the 16 copies:

    >>> import sys
    >>> from autodiff.nn import Linear, SGD
    >>> images = np.tile(np.eye(2, dtype=np.float32), (8, 1))
    >>> labels = np.tile([0, 1], 8)
    >>> model = Linear(2, 2, seed=0)
    >>> history = fit(model, SGD(model, 0.5), images, labels, epochs=3, batch_size=4,
    ...               test_data=(images, labels), file=sys.stdout)
    epoch 1/3: 4/4 batches [..., loss 0.617, accuracy 0.750, test accuracy 1.000]
    epoch 2/3: 4/4 batches [..., loss 0.337, accuracy 1.000, test accuracy 1.000]
    epoch 3/3: 4/4 batches [..., loss 0.206, accuracy 1.000, test accuracy 1.000]
    >>> history.accuracy
    [0.75, 1.0, 1.0]
    """
    from tqdm import tqdm

    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"fit: {name} must be a positive int, got {value!r}.")
    if len(images) == 0 or len(images) != len(labels):
        raise ValueError(
            f"fit: got {len(images)} images and {len(labels)} labels; "
            "they must be as many, and at least one."
        )
    rng = make_rng(seed)
    history = History()
    steps = -(-len(images) // batch_size)
    for epoch in range(1, epochs + 1):
        description = f"epoch {epoch}/{epochs}"
        start = time.perf_counter()
        total_loss = total_correct = 0.0
        # A live bar on standard error; with a file, one finished bar per epoch.
        with tqdm(total=steps, desc=description, disable=not progress or file is not None,
                  leave=True) as bar:
            minibatches = batches(images, labels, batch_size, seed=rng)
            for step, (batch_images, batch_labels) in enumerate(minibatches, start=1):
                loss, acc = train_step(model, optimizer, batch_images, batch_labels,
                                       loss_function)
                if stop_on_nonfinite and not math.isfinite(loss):
                    raise FloatingPointError(
                        f"fit: the loss is {loss} at epoch {epoch}, batch {step} of "
                        f"{steps}: training diverged. Try a smaller learning rate (this "
                        f"one is {optimizer.learning_rate}), and check the data for NaN "
                        "or inf. Pass stop_on_nonfinite=False to go on anyway."
                    )
                total_loss += loss * len(batch_labels)
                total_correct += acc * len(batch_labels)
                bar.update()
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)
            history.loss.append(total_loss / len(images))
            history.accuracy.append(total_correct / len(images))
            postfix = f"loss {history.loss[-1]:.3f}, accuracy {history.accuracy[-1]:.3f}"
            if test_data is not None:
                test_loss, test_acc = evaluate(model, *test_data, loss_function=loss_function)
                history.test_loss.append(test_loss)
                history.test_accuracy.append(test_acc)
                postfix += f", test accuracy {test_acc:.3f}"
            bar.set_postfix_str(postfix)
        if progress and file is not None:
            line = tqdm.format_meter(
                steps, steps, time.perf_counter() - start, prefix=description,
                postfix=postfix, ascii=True,
                bar_format="{desc}: {n_fmt}/{total_fmt} batches [{elapsed}{postfix}]",
            )
            print(line, file=file, flush=True)
    return history
