r"""Numeric gradient checks: compare each ``grad`` with finite differences.

The derivative is the limit of a difference quotient. With a small step
:math:`\varepsilon`, the central difference

.. math:: \frac{\partial f}{\partial x_i} \approx
          \frac{f(x + \varepsilon e_i) - f(x - \varepsilon e_i)}{2 \varepsilon}

has an error of order :math:`\varepsilon^2` (the forward difference
:math:`(f(x + \varepsilon e_i) - f(x)) / \varepsilon` only :math:`\varepsilon`).
It costs two evaluations of :math:`f` per input element, far too many to
train with, but plenty to test a hand-written gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from autodiff.core import Operation, Variable, _fit_gradient, _raise_bad_count, backprop

__all__ = ["GradientCheckError", "numeric_gradient", "numeric_test", "check_gradients"]

_USUAL_CAUSES = """\
Usual causes:
  - A missing sum over broadcast axes: if an input was broadcast in the
    forward pass, its gradient is the sum over the broadcast axes.
  - A kink: at a point where the function is not differentiable (ReLU or abs
    at exactly 0) the two sides disagree; test at a point away from it.
  - The step eps: too large and the difference quotient is not the slope
    (truncation error), too small and rounding dominates. 1e-6 suits
    float64 values of order 1; scale it with the values.
  - float32: finite differences need float64. The checks here compute in
    float64; an operation that converts to float32 inside loses the precision.
  - A wrong formula: derive it again, one input at a time, on a scalar example."""


class GradientCheckError(AssertionError):
    """An analytic gradient disagrees with its finite-difference estimate.

    Raised by :func:`numeric_test` and :func:`check_gradients`. It is an
    :class:`AssertionError`, so a test framework reports it as a failed check.

    Examples
    --------
    A square whose ``grad`` forgets the factor 2:

    >>> from autodiff import Operation, Parameter
    >>> class Square(Operation):
    ...     def apply(self, x):
    ...         def grad(gz):
    ...             return gz * x,   # wrong: the derivative of x * x is 2 * x
    ...         self.grad = grad
    ...         return x * x
    >>> numeric_test(Square(Parameter([1.0, 2.0])))
    Traceback (most recent call last):
    ...
    autodiff.check.GradientCheckError: Gradient check failed for Square, input 0 of shape (2,), element (...):
      analytic (from grad): ...
      numeric (central differences): ...
    """


def numeric_gradient(
    function: Callable[[np.ndarray], Any], x: np.ndarray, *, eps: float = 1e-6
) -> np.ndarray:
    r"""Estimate the gradient of a scalar ``function`` at ``x`` by central differences.

    ``x`` is changed in place, one element at a time, and restored afterwards.

    Parameters
    ----------
    function
        Maps the array ``x`` to a scalar.
    x
        A float64 array.
    eps
        The step :math:`\varepsilon`.

    Returns
    -------
    numpy.ndarray
        An array of ``x``'s shape.

    Examples
    --------
    >>> x = np.array([1.0, 2.0])
    >>> np.round(numeric_gradient(lambda a: np.sum(a ** 3), x), 6)
    array([ 3., 12.])
    """
    gradient = np.zeros(x.shape, dtype=np.float64)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        above = float(function(x))
        x[index] = original - eps
        below = float(function(x))
        x[index] = original
        gradient[index] = (above - below) / (2 * eps)
    return gradient


def _compare(
    analytic: np.ndarray,
    numeric: np.ndarray,
    *,
    what: str,
    eps: float,
    rtol: float,
    atol: float,
) -> None:
    """Raise GradientCheckError with a full explanation if the two differ."""
    close = np.isclose(analytic, numeric, rtol=rtol, atol=atol)
    if np.all(close):
        return
    excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    excess = np.where(np.isnan(excess), np.inf, excess)
    # Plain ints, so that the message reads (1, 2), not (np.int64(1), np.int64(2)).
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(excess), analytic.shape))
    a, n = float(analytic[worst]), float(numeric[worst])
    raise GradientCheckError(
        f"Gradient check failed for {what}, element {worst}:\n"
        f"  analytic (from grad):            {a!r}\n"
        f"  numeric (central differences):   {n!r}\n"
        f"  difference {abs(a - n):.3g} exceeds atol + rtol * |numeric| = "
        f"{atol:g} + {rtol:g} * {abs(n):.3g}\n"
        f"  {int(np.size(close) - np.count_nonzero(close))} of {np.size(close)} "
        f"elements differ; step eps = {eps:g}.\n"
        f"{_USUAL_CAUSES}"
    )


def numeric_test(
    variable: Variable,
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    seed: int = 0,
) -> None:
    r"""Check the ``grad`` of the operation that produced ``variable``.

    The operation is run again on float64 copies of its inputs. A random
    output gradient :math:`\bar z` is drawn, and the vector-Jacobian product
    returned by ``grad`` is compared, for every element of every floating
    point input, with the central difference of :math:`\sum \bar z \odot z`.
    Integer and boolean inputs (labels, masks) are not differentiable and are
    skipped.

    Parameters
    ----------
    variable
        The output of the operation to check.
    eps
        The finite-difference step.
    rtol, atol
        Tolerances, as in :func:`numpy.isclose`.
    seed
        Seed of the random output gradient.

    Raises
    ------
    GradientCheckError
        If a gradient differs; the message names the operation, the input,
        the element, both values and the usual causes.
    TypeError
        If ``variable`` was not produced by an operation, or ``grad`` returns
        the wrong number of gradients.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> numeric_test(Parameter([1.0, -2.0]) * Parameter(3.0))
    """
    if not isinstance(variable, Variable) or variable.operation is None:
        raise TypeError(
            "numeric_test checks the operation that produced a variable, but "
            f"got {variable!r}, which has no operation. Pass the result of an "
            "operation, for example numeric_test(x * y)."
        )
    operation = variable.operation
    cls = type(operation)
    values = [np.array(arg.value, dtype=np.float64) for arg in operation.args]
    checked = [arg.value.dtype.kind == "f" for arg in operation.args]
    gout = np.random.default_rng(seed).normal(size=variable.shape)

    def run(*inputs: np.ndarray) -> tuple[np.ndarray, Operation]:
        # A fresh instance, so that the variable's own grad stays untouched.
        scratch = object.__new__(cls)
        scratch.args = operation.args
        scratch.kwargs = operation.kwargs
        return np.asarray(scratch.apply(*inputs, **operation.kwargs)), scratch

    _, scratch = run(*values)
    gradients = scratch.grad(gout)
    if type(gradients) is not tuple or len(gradients) != len(values):
        _raise_bad_count(scratch, gradients)

    for position, (arg, gradient) in enumerate(zip(operation.args, gradients)):
        if not checked[position]:
            continue
        analytic = _fit_gradient(scratch, arg, gradient)

        def objective(x: np.ndarray, position: int = position) -> float:
            inputs = list(values)
            inputs[position] = x
            return float(np.sum(gout * run(*inputs)[0]))

        numeric = numeric_gradient(objective, values[position].copy(), eps=eps)
        _compare(
            np.asarray(analytic, dtype=np.float64),
            numeric,
            what=f"{cls.__name__}, input {position} of shape {arg.value.shape}",
            eps=eps,
            rtol=rtol,
            atol=atol,
        )


def check_gradients(
    function: Callable[[], Variable],
    parameters: Sequence[Variable],
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
) -> None:
    r"""Check :func:`~autodiff.core.backprop` through a whole graph, end to end.

    ``function`` builds the graph from ``parameters`` and returns a scalar
    loss. The gradients that ``backprop`` returns for the parameters are
    compared with central differences of the loss. During the check the
    parameters hold float64 copies of their values; afterwards each gets its
    original array back.

    Parameters
    ----------
    function
        Called without arguments; returns the scalar loss.
    parameters
        The variables (usually :class:`~autodiff.core.Parameter`) to check.
    eps, rtol, atol
        As in :func:`numeric_test`.

    Raises
    ------
    GradientCheckError
        If a gradient differs; the message names the parameter and element.

    Examples
    --------
    >>> from autodiff import Parameter, ReLU
    >>> w = Parameter([[0.5, -1.0], [2.0, 0.3]])
    >>> x = np.array([1.0, 2.0])
    >>> check_gradients(lambda: ReLU(x @ w).sum() * 3, [w])
    """
    parameters = list(parameters)
    originals = [p.value for p in parameters]
    try:
        for p in parameters:
            p.value = np.array(p.value, dtype=np.float64)
        gradients = backprop(function(), parameters)
        for number, p in enumerate(parameters):
            def objective(x: np.ndarray) -> float:
                return float(function().value)

            numeric = numeric_gradient(objective, p.value, eps=eps)
            _compare(
                np.asarray(gradients[p], dtype=np.float64),
                numeric,
                what=f"parameter {number} ({type(p).__name__} of shape {p.shape}) "
                "through the whole graph",
                eps=eps,
                rtol=rtol,
                atol=atol,
            )
    finally:
        for p, original in zip(parameters, originals):
            p.value = original
