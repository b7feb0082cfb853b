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

from autodiff.core import Parameter, Variable, backprop, no_grad

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
    numeric_label: str = "numeric (central differences)",
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
        f"  {'analytic (from grad):':33}{a!r}\n"
        f"  {numeric_label + ':':33}{n!r}\n"
        f"  difference {abs(a - n):.3g} exceeds atol + rtol * |numeric| = "
        f"{atol:g} + {rtol:g} * {abs(n):.3g}\n"
        f"  {int(np.size(close) - np.count_nonzero(close))} of {np.size(close)} "
        f"elements differ; step eps = {eps:g}.\n"
        f"{_USUAL_CAUSES}"
    )


def _compare_all(
    analytic: dict[int, np.ndarray],
    numeric: dict[int, np.ndarray],
    *,
    what: Callable[[int], str],
    eps: float,
    rtol: float,
    atol: float,
) -> None:
    """Compare the gradients of all inputs; raise for the first that differs."""
    for key in analytic:
        _compare(analytic[key], numeric[key], what=what(key), eps=eps, rtol=rtol, atol=atol)


def numeric_test(
    variable: Variable,
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    seed: int = 0,
    order: int = 1,
) -> None:
    r"""Check the ``grad`` of the operation that produced ``variable``.

    The operation is run again on float64 copies of its floating-point
    inputs. A random output gradient :math:`\bar z` is drawn, and the
    vector-Jacobian product returned by ``grad`` is compared, for every
    element of every floating-point input, with the central difference of
    :math:`\sum \bar z \odot z`. Other inputs (integer labels, boolean masks,
    complex values) are passed unchanged and not checked.

    With ``order=2`` the check goes one level deeper, for gradients of
    gradients: with random :math:`r_i`, one per input, the second-order
    gradient of :math:`\sum_i \langle r_i, \bar x_i \rangle` that
    ``backprop(..., create_graph=True)`` computes is compared with central
    differences of the first-order gradients :math:`\bar x_i`. (The
    first-order gradients recorded for that are checked against ``grad``'s
    arrays too.)

    Parameters
    ----------
    variable
        The output of the operation to check.
    eps
        The finite-difference step.
    rtol, atol
        Tolerances, as in :func:`numpy.isclose`.
    seed
        Seed of the random output gradient (and of the :math:`r_i`).
    order
        1 for the gradient, 2 for the gradient of the gradient.

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
    >>> numeric_test(Parameter([1.0, -2.0]) * Parameter(3.0), order=2)
    """
    if not isinstance(variable, Variable) or variable.operation is None:
        raise TypeError(
            "numeric_test checks the operation that produced a variable, but "
            f"got {variable!r}, which has no operation. Pass the result of an "
            "operation, for example numeric_test(x * y)."
        )
    if order not in (1, 2):
        raise ValueError(f"numeric_test: order must be 1 or 2, got {order!r}.")
    operation = variable.operation
    cls, kwargs = type(operation), operation.kwargs
    # float64 copies of the inputs to check; the others exactly as they were.
    values = [
        np.array(x.value, dtype=np.float64) if x.dtype.kind == "f" else x.value
        for x in operation.args
    ]
    checked = [position for position, x in enumerate(operation.args) if x.dtype.kind == "f"]
    rng = np.random.default_rng(seed)
    gout = rng.normal(size=variable.shape)

    def first_order(inputs: list[np.ndarray]) -> dict[int, np.ndarray]:
        """The gradients that ``grad`` gives at ``inputs``, by position."""
        leaves: list[Any] = [Parameter(v) if p in checked else v for p, v in enumerate(inputs)]
        z = cls(*leaves, **kwargs)
        gradients = backprop(z, [leaves[p] for p in checked], output_gradient=gout)
        return {p: gradients[leaves[p]] for p in checked}

    if order == 1:
        analytic = first_order(values)

        def objective(inputs: list[np.ndarray]) -> float:
            with no_grad():
                return float(np.sum(gout * cls(*inputs, **kwargs).value))
    else:
        directions = {position: rng.normal(size=values[position].shape) for position in checked}
        analytic, recorded = _second_order(cls, kwargs, values, gout, directions)
        expected = first_order(values)
        for position in checked:
            _compare(
                np.asarray(recorded[position], dtype=np.float64),
                np.asarray(expected[position], dtype=np.float64),
                what=f"{cls.__name__}, input {position}: the gradient recorded with "
                "create_graph=True against grad's array",
                eps=eps, rtol=rtol, atol=atol, numeric_label="grad's array",
            )

        def objective(inputs: list[np.ndarray]) -> float:
            gradients = first_order(inputs)
            return float(sum(np.sum(r * gradients[p]) for p, r in directions.items()))

    numeric: dict[int, np.ndarray] = {}
    for position in checked:
        def at(x: np.ndarray, position: int = position) -> float:
            inputs = list(values)
            inputs[position] = x
            return objective(inputs)

        numeric[position] = numeric_gradient(at, values[position].copy(), eps=eps)

    def what(position: int) -> str:
        text = f"{cls.__name__}, input {position} of shape {operation.args[position].shape}"
        return text + (", second order" if order == 2 else "")

    _compare_all(
        {p: np.asarray(analytic[p], dtype=np.float64) for p in checked},
        numeric,
        what=what,
        eps=eps,
        rtol=rtol,
        atol=atol,
    )


def _second_order(
    cls: type,
    kwargs: dict[str, Any],
    values: list[np.ndarray],
    gout: np.ndarray,
    directions: dict[int, np.ndarray],
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """The gradient of sum_i <r_i, grad_i> by create_graph, and the grad_i it recorded."""
    inputs: list[Any] = [Parameter(v) if p in directions else v for p, v in enumerate(values)]
    leaves = [inputs[p] for p in directions]
    z = cls(*inputs, **kwargs)
    first = backprop((z * gout).sum(), leaves, create_graph=True)
    total: Any = sum((first[inputs[p]] * r).sum() for p, r in directions.items())
    second: dict[Variable, Any] = backprop(total, leaves) if isinstance(total, Variable) else {}
    zeros = {p: np.zeros_like(values[p]) for p in directions}
    return (
        {p: second.get(inputs[p], zeros[p]) for p in directions},
        {p: first[inputs[p]].value for p in directions},
    )


def check_gradients(
    function: Callable[[], Variable],
    parameters: Sequence[Variable],
    *,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    order: int = 1,
    seed: int = 0,
) -> None:
    r"""Check :func:`~autodiff.core.backprop` through a whole graph, end to end.

    ``function`` builds the graph from ``parameters`` and returns a scalar
    loss. The gradients that ``backprop`` returns for the parameters are
    compared with central differences of the loss. During the check the
    parameters hold float64 copies of their values; afterwards each gets its
    original array back.

    With ``order=2``, a Hessian-vector product is checked instead: for a
    random direction :math:`r`, the gradient of
    :math:`\langle r, \nabla J \rangle` computed by
    ``backprop(..., create_graph=True)`` and ``backprop`` again is compared
    with central differences of :math:`\langle r, \nabla J \rangle`, whose
    gradient :math:`\nabla J` comes from a first-order ``backprop``.

    Parameters
    ----------
    function
        Called without arguments; returns the scalar loss.
    parameters
        The variables (usually :class:`~autodiff.core.Parameter`) to check.
    eps, rtol, atol
        As in :func:`numeric_test`.
    order
        1 for the gradient, 2 for Hessian-vector products.
    seed
        Seeds the random direction of ``order=2``.

    Raises
    ------
    GradientCheckError
        If a gradient differs; the message names the parameter and element.

    Examples
    --------
    >>> from autodiff import Parameter, Tanh
    >>> w = Parameter([[0.5, -1.0], [2.0, 0.3]])
    >>> x = np.array([1.0, 2.0])
    >>> check_gradients(lambda: Tanh(x @ w).sum() * 3, [w])
    >>> check_gradients(lambda: Tanh(x @ w).sum() * 3, [w], order=2)
    """
    if order not in (1, 2):
        raise ValueError(f"check_gradients: order must be 1 or 2, got {order!r}.")
    parameters = list(parameters)
    originals = [p.value for p in parameters]
    try:
        for p in parameters:
            p.value = np.array(p.value, dtype=np.float64)
        if order == 1:
            analytic = backprop(function(), parameters)

            def objective() -> float:
                return float(function().value)
        else:
            rng = np.random.default_rng(seed)
            directions = [rng.normal(size=p.shape) for p in parameters]
            gradients = backprop(function(), parameters, create_graph=True)
            total = sum((gradients[p] * r).sum() for p, r in zip(parameters, directions))
            analytic = backprop(total, parameters)

            def objective() -> float:
                gradients = backprop(function(), parameters)
                return float(sum(np.sum(gradients[p] * r) for p, r in zip(parameters, directions)))

        numeric: dict[int, np.ndarray] = {}
        for number, p in enumerate(parameters):
            def at(x: np.ndarray, p: Variable = p) -> float:
                p.value = x
                return objective()

            numeric[number] = numeric_gradient(at, p.value.copy(), eps=eps)
            p.value = np.array(originals[number], dtype=np.float64)

        def what(number: int) -> str:
            p = parameters[number]
            return (
                f"parameter {number} ({type(p).__name__} of shape {p.shape}) "
                f"through the whole graph{', second order' if order == 2 else ''}"
            )

        _compare_all(
            {n: np.asarray(analytic[p], dtype=np.float64) for n, p in enumerate(parameters)},
            numeric,
            what=what,
            eps=eps,
            rtol=rtol,
            atol=atol,
        )
    finally:
        for p, original in zip(parameters, originals):
            p.value = original
