r"""Loss functions and accuracy.

:class:`SoftmaxCrossEntropy` turns the raw scores of a classifier (the
*logits*) into one number to minimise. It is a single operation, with its
forward value and its gradient side by side, because the composition
``Log(Softmax(...))`` of two operations overflows for large logits and
costs more memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from autodiff.core import Input, Operation, Variable
from autodiff.ops import MSE

__all__ = ["SoftmaxCrossEntropy", "cross_entropy", "mse", "accuracy"]


def _check_labels(labels: Any, logits_shape: tuple[int, ...], where: str) -> np.ndarray:
    array: np.ndarray = labels if type(labels) is np.ndarray else np.asarray(labels)
    if array.dtype.kind not in "iu":
        raise TypeError(
            f"{where}: labels must be integers (class indices), but got dtype "
            f"{array.dtype}. Convert them with labels.astype(np.int64)."
        )
    if len(logits_shape) != 2 or array.shape != logits_shape[:1]:
        raise ValueError(
            f"{where}: expected logits of shape (batch, classes) and labels of "
            f"shape (batch,), but got logits {logits_shape} and labels "
            f"{array.shape}. Reshape the logits to two axes, one row per example."
        )
    # One pass over the labels checks both ends: read as unsigned integers of
    # the same size and byte order, negative labels are huge, so the maximum
    # tells all.
    unsigned = array.view(array.dtype.str.replace("i", "u"))
    if array.size and unsigned.max() >= logits_shape[1]:
        raise ValueError(
            f"{where}: labels must lie in 0..{logits_shape[1] - 1} (one per class "
            f"of the logits), but range from {array.min()} to {array.max()}."
        )
    return array


class SoftmaxCrossEntropy(Operation):
    r"""Mean cross-entropy of the softmax of ``logits`` against integer labels.

    For a batch of :math:`n` rows of logits :math:`x_i \in \mathbb{R}^K` and
    labels :math:`y_i \in \{0, \dots, K-1\}`,

    .. math::
        J = -\frac{1}{n} \sum_{i=1}^{n} \log p_{i y_i}, \qquad
        p_{ik} = \frac{e^{x_{ik}}}{\sum_j e^{x_{ij}}} .

    The log-softmax is computed as
    :math:`\log p_{ik} = s_{ik} - \log \sum_j e^{s_{ij}}` with
    :math:`s_{ik} = x_{ik} - \max_j x_{ij}`: every exponent is at most 0,
    so nothing overflows, and the largest term of the sum is exactly 1, so
    the logarithm never sees 0. Logits of :math:`\pm 10^4` give a finite loss.

    The gradient is the softmax minus the one-hot labels:

    .. math:: \bar x_{ik} = \frac{\bar J}{n} \left(p_{ik} - [k = y_i]\right).

    Parameters
    ----------
    logits
        A Variable or array of shape ``(n, K)``.
    labels
        Integer class indices of shape ``(n,)``. A keyword argument: labels
        are data, not differentiated.

    Raises
    ------
    TypeError
        If the labels are not integers.
    ValueError
        If the shapes do not match or a label is not a valid class.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> logits = Parameter([[2.0, 0.0], [0.0, 0.0]])
    >>> J = SoftmaxCrossEntropy(logits, labels=np.array([0, 1]))
    >>> round(float(J.value), 4)
    0.41
    >>> J.operation.grad(np.array(1.0))[0].round(4)
    array([[-0.0596,  0.0596],
           [ 0.25  , -0.25  ]])
    """

    grad: Callable[..., tuple[np.ndarray]]

    def apply(self, logits: np.ndarray, labels: Any = None) -> np.ndarray:
        if labels is None:
            raise TypeError(
                "SoftmaxCrossEntropy needs the labels as a keyword argument: "
                "SoftmaxCrossEntropy(logits, labels=labels)."
            )
        labels = _check_labels(labels, logits.shape, "SoftmaxCrossEntropy")
        n = logits.shape[0]
        rows = np.arange(n)
        shifted = logits - logits.max(axis=1, keepdims=True)
        probabilities = np.exp(shifted)
        sums = probabilities.sum(axis=1, keepdims=True)
        probabilities /= sums
        # J = mean of log(sum_j e^s_ij) - s_iy, computed in place in sums.
        losses = np.log(sums, out=sums)[:, 0]
        losses -= shifted[rows, labels]
        z: np.ndarray = losses.sum() / n

        def grad(gz: np.ndarray) -> tuple[np.ndarray]:
            scale = gz / n
            gx = probabilities * scale
            gx[rows, labels] -= scale
            return gx,
        self.grad = grad

        return z


def cross_entropy(logits: Any, labels: Any) -> Variable:
    """Mean softmax cross-entropy; a short form of :class:`SoftmaxCrossEntropy`.

    ``labels`` may be an array or an :class:`~autodiff.core.Input`.

    Raises
    ------
    ValueError
        If the batch is empty: the mean over no examples is undefined.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> J = cross_entropy(Parameter([[0.0, 0.0]]), np.array([1]))
    >>> round(float(J.value), 4)  # log 2
    0.6931
    """
    if isinstance(labels, Variable):
        if not isinstance(labels, Input):
            raise TypeError(
                "cross_entropy: the labels are not differentiable; pass an array "
                "or an Input, not a computed Variable or a Parameter."
            )
        labels = labels.value
    if np.size(labels) == 0:
        raise ValueError(
            f"cross_entropy: got an empty batch (labels of shape {np.shape(labels)}); "
            "the mean loss over no examples is undefined. Check how the batch was cut."
        )
    return SoftmaxCrossEntropy(logits, labels=labels)


def mse(prediction: Any, target: Any) -> Variable:
    """Mean squared error; the fused :class:`~autodiff.ops.MSE` operation.

    Raises
    ------
    ValueError
        If the prediction or the target is empty: the mean over no values is
        undefined.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> float(mse(Parameter([1.0, 3.0]), np.array([0.0, 0.0])).value)
    5.0
    """
    shapes = [x.shape if isinstance(x, Variable) else np.shape(x) for x in (prediction, target)]
    if 0 in shapes[0] + shapes[1]:
        raise ValueError(
            f"mse: got an empty batch (prediction of shape {shapes[0]}, target of "
            f"shape {shapes[1]}); the mean over no values is undefined. Check how "
            "the batch was cut."
        )
    return MSE(prediction, target)


def accuracy(scores: Any, labels: Any) -> float:
    """The fraction of rows whose largest score is at the true label.

    Parameters
    ----------
    scores
        Logits or probabilities, shape ``(n, K)``; a Variable or an array.
        Softmax does not change the order, so both give the same answer.
    labels
        Integer labels of shape ``(n,)``.

    Examples
    --------
    >>> accuracy(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), np.array([0, 1, 1]))
    0.6666666666666666
    """
    values = scores.value if isinstance(scores, Variable) else np.asarray(scores)
    if isinstance(labels, Variable):
        labels = labels.value
    labels = _check_labels(labels, values.shape, "accuracy")
    if labels.size == 0:
        raise ValueError("accuracy: got an empty batch; there is nothing to count.")
    return float(np.mean(values.argmax(axis=1) == labels))
