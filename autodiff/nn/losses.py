r"""Loss functions and accuracy.

:func:`cross_entropy` turns the raw scores of a classifier (the *logits*)
into one number to minimise. It is the fused operation
:class:`~autodiff.ops.SoftmaxCrossEntropy`, with its forward value and its
gradient side by side, because the composition ``Log(Softmax(...))`` of two
operations overflows for large logits and costs more memory.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autodiff.core import Input, Variable
from autodiff.ops import MSE, SoftmaxCrossEntropy, check_class_labels

__all__ = ["cross_entropy", "mse", "accuracy"]


def cross_entropy(logits: Any, labels: Any) -> Variable:
    """Mean softmax cross-entropy; a short form of :class:`~autodiff.ops.SoftmaxCrossEntropy`.

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
    labels = check_class_labels(labels, values.shape, "accuracy")
    return float(np.mean(values.argmax(axis=1) == labels))
