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

import itertools
import re
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from autodiff.core import Parameter, Variable, backprop, no_grad, unbroadcast

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
    When a check fails, all the gradients are compared with their numeric
    estimates, and a usual mistake that explains them is named first. Here,
    a multiplication whose ``grad`` returns its two gradients in swapped
    places:

    >>> from autodiff import Operation, Parameter
    >>> class Mul(Operation):
    ...     def apply(self, x, y):
    ...         def grad(gz):
    ...             return gz * x, gz * y   # wrong: x's gradient is gz * y
    ...         self.grad = grad
    ...         return x * y
    >>> numeric_test(Mul(Parameter(123.0), Parameter(-100.0)))
    Traceback (most recent call last):
    ...
    autodiff.check.GradientCheckError: Gradient check failed for Mul, input 0 of shape (), element ():
      Likely mistake:
        The gradients of inputs 0 and 1 are swapped: analytic of input 0 = numeric
        of input 1, and the other way round. In Mul.grad, return one gradient per
        input, in the order of the arguments of `apply`.
      analytic (from grad):            15.46...
      numeric (central differences):   -12.57...
      ...
    Usual causes:
    ...

    A square whose ``grad`` forgets the factor 2:

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
      Likely mistake:
        Off by a constant factor for input 0: `analytic = 1/2 * numeric`
        everywhere. ...
    ...
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
    findings: Sequence[str] = (),
) -> None:
    """Raise GradientCheckError with a full explanation if the two differ.

    ``findings`` (from :func:`_diagnose`) come first, right after the line
    that says what failed.
    """
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
        f"{_likely_mistakes(findings)}"
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
    noun: str,
    grad: str,
    uses: dict[int, int] | None = None,
) -> None:
    """Compare the gradients of all inputs; raise for the first that differs,
    with the mistakes that :func:`_diagnose` finds in all of them together."""
    for key in analytic:
        if not np.all(np.isclose(analytic[key], numeric[key], rtol=rtol, atol=atol)):
            findings = _diagnose(
                analytic, numeric, rtol=rtol, atol=atol, noun=noun, grad=grad, uses=uses
            )
            _compare(
                analytic[key], numeric[key], what=what(key), eps=eps, rtol=rtol, atol=atol,
                findings=findings,
            )


def _likely_mistakes(findings: Sequence[str]) -> str:
    """The findings as an indented paragraph (one) or a list (several)."""
    if not findings:
        return ""
    if len(findings) == 1:
        return "  Likely mistake:\n" + _fill(findings[0], "    ", "    ") + "\n"
    items = [_fill(finding, "  - ", "    ") for finding in findings]
    return "  Likely mistakes:\n" + "\n".join(items) + "\n"


def _fill(text: str, first: str, rest: str) -> str:
    """Wrap ``text`` at 79 columns, never inside a `code span`."""
    # textwrap breaks at spaces only, and a no-break space is none.
    glued = re.sub(r"`[^`]*`", lambda span: span.group().replace(" ", "\xa0"), text)
    wrapped = textwrap.fill(glued, 79, initial_indent=first, subsequent_indent=rest)
    return wrapped.replace("\xa0", " ")


# ------------------------------------------------------------------ diagnosis
#
# When a check fails, the analytic gradients of all inputs are compared with
# the numeric ones, looking for the usual slips. A pattern is named only when
# it explains every element of the inputs it names, within the check's own
# tolerances; otherwise the message says nothing beyond the usual causes.

#: What each finding says: {who} names the inputs, {grad} the code to fix.
_FINDINGS = {
    "swapped": (
        "The gradients of {who} are swapped: analytic of {first} = numeric of "
        "{second}, and the other way round{note}. In {grad}, return one gradient "
        "per input, in the order of the arguments of `apply`."
    ),
    "sign": (
        "The sign is flipped for {who}: `analytic = -numeric` everywhere. In {grad}, "
        "a minus sign is missing or too many (for `z = x - y`, the gradient of `y` "
        "is `-gz`)."
    ),
    "broadcast": (
        "Broadcast axes not summed for {who}: broadcasting used each of its elements "
        "{uses} times, so its gradient is the sum of the {uses} uses' gradients, but "
        "`analytic = numeric / {uses}`, their mean. In {grad}, sum over the "
        "broadcast axes instead of averaging, or return the gradient in the "
        "broadcast shape: the engine sums it."
    ),
    "transposed": (
        "The gradient of {who} is transposed: analytic = numeric with its last two "
        "axes exchanged (`numeric.T` for a matrix). In {grad}, transpose it, or "
        "multiply in the other order: for `z = x @ y` the gradient of `y` is "
        "`x.T @ gz`, and `gz.T @ x` is its transpose."
    ),
    "summed everywhere": (
        "Summed where one value per element was due, for {who}: every element of "
        "analytic is the same number, the sum of all of numeric. In {grad}, the "
        "gradient is summed too much: a `.sum()` too many, or a gradient of a shape "
        "the engine had to broadcast to the input's, such as `.sum(axis=1)` without "
        "`keepdims=True`. Sum only over the axes along which the input was "
        "broadcast."
    ),
    "summed": (
        "Summed where one value per element was due, for {who}: analytic = numeric "
        "summed over {axes} and repeated along it. In {grad}, the gradient is summed "
        "over {axes}, along which the input was not broadcast: sum only over the axes "
        "along which it was."
    ),
    "factor": (
        "Off by a constant factor for {who}: `analytic = {factor} * numeric` "
        "everywhere. In {grad}, a factor is missing or too many, such as the 2 of "
        "`x ** 2`, or the `1/n` of a mean over `n` elements (`n` is often the batch "
        "size), missing, or taken where a sum was due."
    ),
    "factor 2 at a kink": (
        " Or every element sits on a kink, such as ReLU at 0, where the numeric "
        "slope is the mean of the two sides."
    ),
}


def _diagnose(
    analytic: dict[int, np.ndarray],
    numeric: dict[int, np.ndarray],
    *,
    rtol: float,
    atol: float,
    noun: str = "input",
    grad: str = "grad",
    uses: dict[int, int] | None = None,
) -> list[str]:
    r"""Name the usual mistakes that explain the analytic gradients that fail.

    ``analytic[k]`` and ``numeric[k]`` are the two gradients of input (or
    parameter) ``k``. The inputs whose two gradients differ (the failing
    ones) are examined together. A pattern is named only if, for every
    element of the inputs it names, the analytic value is
    :func:`numpy.isclose` (with the check's ``rtol`` and ``atol``) to the
    value the pattern predicts from the numeric gradients:

    swapped
        For two failing inputs :math:`i \ne j`, ``analytic[i]`` matches
        ``numeric[j]`` and ``analytic[j]`` matches ``numeric[i]``. Arrays
        of different shapes (inputs that broadcast against each other) match
        when they agree after each is summed down to the largest shape both
        reduce to, as :func:`~autodiff.core.unbroadcast` would: a gradient
        given to the wrong input went through that input's unbroadcast.
    sign flipped
        ``analytic = -numeric``.
    broadcast axes not summed
        ``analytic = numeric / uses[k]``, where ``uses[k] > 1`` is how many
        times broadcasting used each element of the input: the mean of the
        uses' gradients instead of their sum.
    transposed
        ``analytic`` is ``numeric`` with its last two axes exchanged, which
        have the same length, at least 2.
    summed where one value per element was due
        ``analytic`` is ``numeric`` summed over some axes (keeping them) and
        repeated along them, although ``numeric`` varies along them (if it
        did not, the sum would be a constant factor) and ``analytic`` is not
        zero.
    off by a constant factor
        ``analytic = c * numeric`` with one number :math:`c`, fitted by
        least squares: first one :math:`c` for all the failing inputs that
        the patterns above leave unexplained, else one for each. One element
        fits any :math:`c`, so at least two must pin it down, each with a
        tolerance under 1 % of :math:`c` times its numeric value; and
        :math:`c` must not be within 0.1 % of :math:`\pm 1`.

    Parameters
    ----------
    analytic, numeric
        The gradients, by input number.
    rtol, atol
        The check's tolerances.
    noun
        What the numbers count: ``"input"`` or ``"parameter"``.
    grad
        Where the mistake is, for the advice: ``"Mul.grad"``, say.
    uses
        For each input, how many times broadcasting used each of its
        elements in the forward pass, when known.

    Returns
    -------
    list of str
        One finding per pattern that fits, in the order above; empty if none
        does. An input may fit two patterns (swapped gradients of x - y are
        also both signs flipped); then both are named.

    Examples
    --------
    >>> x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    >>> _diagnose({0: y, 1: x}, {0: x, 1: y}, rtol=1e-5, atol=1e-8, grad="Mul.grad")
    ... # doctest: +NORMALIZE_WHITESPACE
    ['The gradients of inputs 0 and 1 are swapped: analytic of input 0 =
      numeric of input 1, and the other way round. In Mul.grad, return one
      gradient per input, in the order of the arguments of `apply`.']
    >>> _diagnose({0: 2 * x}, {0: x}, rtol=1e-5, atol=1e-8)[0][:62]
    'Off by a constant factor for input 0: `analytic = 2 * numeric`'
    """

    def close(a: np.ndarray, b: np.ndarray) -> bool:
        return a.shape == b.shape and bool(np.all(np.isclose(a, b, rtol=rtol, atol=atol)))

    def say(pattern: str, keys: Sequence[int], **details: Any) -> None:
        findings.append(_FINDINGS[pattern].format(who=_names(noun, keys), grad=grad, **details))
        explained.update(keys)

    failing = [k for k in analytic if not close(analytic[k], numeric[k])]
    findings: list[str] = []
    explained: set[int] = set()
    with np.errstate(all="ignore"):  # nan and inf simply fit no pattern
        for i, j in itertools.combinations(failing, 2):
            if _matches(analytic[i], numeric[j], close) and _matches(analytic[j], numeric[i], close):
                note = ""
                if analytic[i].shape != analytic[j].shape:
                    note = " (compared after summing over the axes where one was broadcast)"
                say("swapped", [i, j], first=f"{noun} {i}", second=f"{noun} {j}", note=note)
        for k in failing:
            a, n = analytic[k], numeric[k]
            count = (uses or {}).get(k, 1)
            if close(a, -n):
                say("sign", [k])
            elif count > 1 and close(a, n / count):
                say("broadcast", [k], uses=count)
            if _transposed(a, n, close):
                say("transposed", [k])
            axes = _summed_axes(a, n, close)
            if axes == tuple(axis for axis, length in enumerate(a.shape) if length > 1):
                say("summed everywhere", [k])
            elif axes is not None:
                say("summed", [k], axes=f"axis {axes[0]}" if len(axes) == 1 else f"axes {axes}")
        rest = [k for k in failing if k not in explained]
        groups = [rest]  # one factor for all the inputs left, else one for each
        if len(rest) > 1 and _factor([(analytic[k], numeric[k]) for k in rest], rtol, atol) is None:
            groups = [[k] for k in rest]
        for keys in groups:
            factor = _factor([(analytic[k], numeric[k]) for k in keys], rtol, atol)
            if factor is not None:
                text = _readable_factor(factor, rtol)
                say("factor", keys, factor=text)
                if text == "2":
                    findings[-1] += _FINDINGS["factor 2 at a kink"]
    return findings


def _matches(analytic: np.ndarray, numeric: np.ndarray, close: Callable[..., bool]) -> bool:
    """Whether the two agree once both are summed down to the largest shape that
    both reduce to by undoing broadcasting; False if there is no such shape."""
    ndim = min(analytic.ndim, numeric.ndim)
    common = []
    for p, q in zip(analytic.shape[analytic.ndim - ndim :], numeric.shape[numeric.ndim - ndim :]):
        if p != q and 1 not in (p, q):
            return False  # no gradient could have been summed down to both
        common.append(p if p == q else 1)
    shape = tuple(common)
    return close(unbroadcast(analytic, shape), unbroadcast(numeric, shape))


def _transposed(analytic: np.ndarray, numeric: np.ndarray, close: Callable[..., bool]) -> bool:
    """Whether analytic is numeric with its last two (equally long) axes exchanged."""
    if numeric.ndim < 2 or numeric.shape[-1] != numeric.shape[-2] or numeric.shape[-1] < 2:
        return False
    return close(analytic, numeric.swapaxes(-1, -2))


def _summed_axes(
    analytic: np.ndarray, numeric: np.ndarray, close: Callable[..., bool]
) -> tuple[int, ...] | None:
    """The fewest axes over which numeric, summed and repeated, gives analytic.

    None if there are none, if analytic is zero (a zero sum explains nothing),
    or if numeric is constant along them (then the sum is a constant factor).
    """
    if close(analytic, np.zeros_like(analytic)):
        return None
    long_axes = [axis for axis, length in enumerate(numeric.shape) if length > 1]
    # Every set of axes for up to 6 long axes (63 sets), else only all of them.
    sizes = range(1, len(long_axes) + 1) if len(long_axes) <= 6 else [len(long_axes)]
    for size in sizes:
        for axes in itertools.combinations(long_axes, size):
            total = np.broadcast_to(numeric.sum(axis=axes, keepdims=True), numeric.shape)
            mean = np.broadcast_to(numeric.mean(axis=axes, keepdims=True), numeric.shape)
            if close(analytic, total) and not close(numeric, mean):
                return axes
    return None


def _factor(pairs: list[tuple[np.ndarray, np.ndarray]], rtol: float, atol: float) -> float | None:
    """The number c with analytic = c * numeric in every pair, if the data pin it down."""
    if not pairs:
        return None
    a = np.concatenate([analytic.ravel() for analytic, _ in pairs])
    n = np.concatenate([numeric.ravel() for _, numeric in pairs])
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(n))) or not np.any(n):
        return None
    c = float(a @ n / (n @ n))  # least squares
    if not np.all(np.isclose(a, c * n, rtol=rtol, atol=atol)):
        return None
    # An element pins c down where the tolerance is small next to c * numeric.
    scaled = np.abs(c * n)
    if np.count_nonzero(atol + rtol * scaled <= 0.01 * scaled) < 2:
        return None
    if np.isclose(abs(c), 1, rtol=1e-3, atol=0):
        return None  # within 0.1 % of 1 or -1: precision (eps, float32), not a factor
    return c


def _readable_factor(factor: float, rtol: float) -> str:
    """The factor as a reader would write it: 2, -3, 1/4, or 0.351712."""
    size, sign = abs(factor), "-" if factor < 0 else ""
    if size >= 1 and np.isclose(size, round(size), rtol=rtol, atol=0):
        return f"{sign}{round(size)}"
    if size < 1 and np.isclose(1 / size, round(1 / size), rtol=rtol, atol=0):
        return f"{sign}1/{round(1 / size)}"
    return f"{factor:.6g}"


def _uses(shape: tuple[int, ...], output_shape: tuple[int, ...]) -> int:
    """How many times broadcasting ``shape`` to ``output_shape`` uses each element
    (1 if ``shape`` does not broadcast to exactly ``output_shape``)."""
    try:
        if np.broadcast_shapes(shape, output_shape) != output_shape:
            return 1
    except ValueError:
        return 1
    return max(int(np.prod(output_shape)) // max(int(np.prod(shape)), 1), 1)


def _names(noun: str, keys: Sequence[int]) -> str:
    """'input 1', 'inputs 0 and 1', 'parameters 0, 1 and 2'."""
    if len(keys) == 1:
        return f"{noun} {keys[0]}"
    return f"{noun}s {', '.join(map(str, keys[:-1]))} and {keys[-1]}"


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
    :math:`\sum \bar z \odot z`. Other inputs (integer labels, boolean
    masks) are passed unchanged and not checked.

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

    # How many times broadcasting to the output used each element of an input.
    uses = {p: _uses(values[p].shape, variable.shape) for p in checked} if order == 1 else None
    _compare_all(
        {p: np.asarray(analytic[p], dtype=np.float64) for p in checked},
        numeric,
        what=what,
        eps=eps,
        rtol=rtol,
        atol=atol,
        noun="input",
        grad=f"{cls.__name__}.grad",
        uses=uses,
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
            noun="parameter",
            grad="the grad of an operation in the graph",
        )
    finally:
        for p, original in zip(parameters, originals):
            p.value = original
