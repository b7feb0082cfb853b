r"""The operations: each one computes its value and defines its gradient.

Every operation follows one pattern. ``apply`` receives NumPy arrays,
computes the output ``z``, and defines the closure ``grad(gz)``: given
:math:`\bar z = \partial J / \partial z`, the gradient of some scalar
:math:`J` with respect to the output, it returns one gradient per input,
:math:`\bar x = \bar z \, \partial z / \partial x` (a vector-Jacobian
product). The closure sees the arrays of the forward pass, so it keeps
exactly what the derivative needs and nothing else.

Binary operations broadcast like NumPy. Their ``grad`` may return gradients
of the broadcast shape: :func:`~autodiff.core.backprop` sums them back to
each input's shape with :func:`~autodiff.core.unbroadcast`.

**Arrays and Variables alike.** Every ``apply`` and ``grad`` here is written
with operators (``+``, ``*``, ``@``, ``x[index]``, comparisons), methods
that arrays and variables share (``sum``, ``mean``, ``reshape``, ``T``,
``swapaxes``) and the few functions at the end of this module (:func:`exp`,
:func:`log`, :func:`tanh`, :func:`maximum`, :func:`where`,
:func:`broadcast_to`, :func:`detach`), which are NumPy's for arrays and the
matching operation for variables. Called with arrays, as
:class:`~autodiff.core.Operation` calls it, ``apply`` is plain NumPy. Run on
the input *variables* instead, as ``backprop(..., create_graph=True)`` does,
the same code records the forward computation and the backward rule as
operations, and the gradients it returns can be differentiated again.

**Dtypes.** The operations compute in NumPy's dtypes, with its rules for
mixing them: ``Input([1, 2]) / 2`` is float64, ``Exp`` of an int8 array is
float16, a boolean mask times a float array is a float array. Where NumPy
refuses (negating or subtracting booleans, an integer to a negative integer
power), the operation raises a ``TypeError`` or ``ValueError`` that names
it. Gradients are floating point whatever the inputs' dtypes: an integer or
boolean :class:`~autodiff.core.Input` is data, a constant, and gets a
gradient like any input, which nobody needs to use. A
:class:`~autodiff.core.Parameter` made from integers holds float64, so that
it can take any step. Complex numbers are refused when a variable is made
(see :class:`~autodiff.core.Variable`).

**NaN and inf** propagate as in NumPy: a NaN or infinite input, or an input
outside a function's domain (``Log`` of a negative number, ``Div`` by 0, an
overflowing ``Exp``), gives NaN or inf in the output and in the gradients,
with NumPy's ``RuntimeWarning`` and no exception. Nothing checks for them
on the way, which would cost time on every operation; a training loop
checks its loss instead (:func:`~autodiff.nn.train.fit` stops at the first
non-finite loss).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from autodiff.core import Operation, ShapeError, Variable, as_numeric_array, unbroadcast

__all__ = [
    "Identity",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Neg",
    "Pow",
    "Exp",
    "Log",
    "Abs",
    "ReLU",
    "Maximum",
    "Sigmoid",
    "Tanh",
    "Sum",
    "Mean",
    "MatMul",
    "GetItem",
    "ScatterAdd",
    "Reshape",
    "Transpose",
    "BroadcastTo",
    "Where",
    "MSE",
    "Affine",
    "SoftmaxCrossEntropy",
    "Unfold",
    "Fold",
    "Conv2d",
    "MaxPool2d",
    "exp",
    "log",
    "tanh",
    "maximum",
    "where",
    "broadcast_to",
    "scatter_add",
    "detach",
    "check_class_labels",
    "unfold",
    "fold",
    "check_pair",
]

Axis = int | tuple[int, ...] | None


# ------------------------------------------------------- elementwise arithmetic


class Identity(Operation):
    r"""Return the input unchanged: :math:`z = x`, so :math:`\bar x = \bar z`.

    The simplest operation, and the template for all others.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> z = Identity(Parameter(5.0))
    >>> z
    Variable(5.0, <Identity>)
    >>> z.operation.grad(np.array(1.0))
    (array(1.),)
    """

    def apply(self, x):
        z = x

        def grad(gz):
            gx = gz
            return gx,
        self.grad = grad

        return z


class Add(Operation):
    r"""Elementwise sum: :math:`z = x + y`.

    Both partial derivatives are 1, so the output gradient passes through
    unchanged: :math:`\bar x = \bar z`, :math:`\bar y = \bar z`.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> z = Parameter(123.0) + Parameter(-100.0)
    >>> float(z.value)
    23.0
    """

    def apply(self, x, y):
        z = x + y

        def grad(gz):
            return gz, gz
        self.grad = grad

        return z


class Sub(Operation):
    r"""Elementwise difference: :math:`z = x - y`.

    :math:`\bar x = \bar z`, :math:`\bar y = -\bar z`.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> z = Parameter(123.0) - Parameter(-100.0)
    >>> float(z.value)
    223.0
    """

    def apply(self, x, y):
        z = x - y

        def grad(gz):
            return gz, -gz
        self.grad = grad

        return z


class Mul(Operation):
    r"""Elementwise product: :math:`z = x y`.

    Each factor's gradient is the output gradient times the other factor:
    :math:`\bar x = \bar z \, y`, :math:`\bar y = \bar z \, x`.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> x, y = Parameter(123.0), Parameter(-100.0)
    >>> z = x * y
    >>> float(z.value)
    -12300.0
    >>> [float(g) for g in z.operation.grad(np.array(1.0))]
    [-100.0, 123.0]
    """

    def apply(self, x, y):
        z = x * y

        def grad(gz):
            return gz * y, gz * x
        self.grad = grad

        return z


class Div(Operation):
    r"""Elementwise quotient: :math:`z = x / y`.

    :math:`\bar x = \bar z / y` and
    :math:`\bar y = -\bar z \, x / y^2 = -\bar z \, z / y`.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> x, y = Parameter(3.0), Parameter(4.0)
    >>> z = x / y
    >>> [float(g) for g in z.operation.grad(np.array(1.0))]
    [0.25, -0.1875]
    """

    def apply(self, x, y):
        z = x / y

        def grad(gz):
            gx = gz / y
            return gx, -gx * z
        self.grad = grad

        return z


class Neg(Operation):
    r"""Elementwise negation: :math:`z = -x`, so :math:`\bar x = -\bar z`.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> (-Parameter([1.0, -2.0])).value
    array([-1.,  2.])
    """

    def apply(self, x):
        z = -x

        def grad(gz):
            return -gz,
        self.grad = grad

        return z


class Pow(Operation):
    r"""Elementwise power: :math:`z = x^y`.

    .. math::
        \bar x = \bar z \, y \, x^{y - 1}, \qquad
        \bar y = \bar z \, z \ln x .

    The gradient for the exponent needs :math:`\ln x`, which exists only for
    :math:`x > 0`. Where :math:`x = 0` it is taken as 0 (the limit of
    :math:`x^y \ln x` as :math:`x \to 0^+` for :math:`y > 0`), and where
    :math:`x < 0` it is ``nan``: there :math:`x^y` is real only for integer
    :math:`y`, and no small step of :math:`y` keeps it real. The gradient for
    the base is exact everywhere :math:`x^{y-1}` is finite. When the exponent
    is a constant, as in ``x ** 2``, nobody needs its gradient, and ``grad``
    skips it when :func:`~autodiff.core.backprop` says so (``needed``).

    Examples
    --------
    >>> from autodiff import Parameter
    >>> x, y = Parameter(2.0), Parameter(3.0)
    >>> z = x ** y
    >>> [round(float(g), 4) for g in z.operation.grad(np.array(1.0))]
    [12.0, 5.5452]
    """

    grad_takes_needed = True

    def apply(self, x, y):
        z = x ** y

        def grad(gz, needed=(True, True)):
            # y - 1.0, not y - 1: NumPy refuses an integer to a negative integer power.
            gx = gz * y * x ** (y - 1.0) if needed[0] else None
            gy = None
            if needed[1]:
                positive = x > 0  # a boolean array, also when x is a Variable
                gy = gz * z * log(where(positive, x, 1))
                # 0 where x = 0, nan where x < 0, in gy's dtype.
                fill = np.where(x >= 0, 0, np.nan).astype(gy.dtype)
                gy = where(positive, gy, fill)
            return gx, gy
        self.grad = grad

        return z


# ------------------------------------------------------- elementwise functions


class Exp(Operation):
    r"""Elementwise exponential: :math:`z = e^x`, so :math:`\bar x = \bar z \, z`.

    The derivative is the function itself, so ``grad`` reuses the output.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> float(Exp(Parameter(0.0)).value)
    1.0
    """

    def apply(self, x):
        z = exp(x)

        def grad(gz):
            return gz * z,
        self.grad = grad

        return z


class Log(Operation):
    r"""Elementwise natural logarithm: :math:`z = \ln x`, so :math:`\bar x = \bar z / x`.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> z = Log(Parameter(2.0))
    >>> float(z.operation.grad(np.array(1.0))[0])
    0.5
    """

    def apply(self, x):
        z = log(x)

        def grad(gz):
            return gz / x,
        self.grad = grad

        return z


class Abs(Operation):
    r"""Elementwise absolute value: :math:`z = |x|`, so :math:`\bar x = \bar z \operatorname{sign} x`.

    At the kink :math:`x = 0` the gradient is 0, as in NumPy's ``sign`` and
    in PyTorch. ``abs(v)`` on a variable calls this operation.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> z = abs(Parameter([-2.0, 0.0, 3.0]))
    >>> z.value
    array([2., 0., 3.])
    >>> z.operation.grad(np.ones(3))
    (array([-1.,  0.,  1.]),)
    """

    def apply(self, x):
        z = abs(x)
        sign = np.sign(detach(x))  # a constant: the slope of |x| on each side

        def grad(gz):
            return gz * sign,
        self.grad = grad

        return z


class ReLU(Operation):
    r"""Rectified linear unit: :math:`z = \max(x, 0)`, elementwise.

    Its derivative is 1 for :math:`x > 0` and 0 for :math:`x < 0`. At the kink
    :math:`x = 0` there is no derivative; any slope between 0 and 1 is a
    subgradient (a line through the kink that stays below the function). We
    follow the exercise and use 1:

    .. math:: \bar x = \bar z \cdot [x \ge 0].

    Examples
    --------
    >>> from autodiff import Parameter
    >>> z = ReLU(Parameter([-2.0, 0.0, 3.0]))
    >>> z.value
    array([0., 0., 3.])
    >>> z.operation.grad(np.ones(3))
    (array([0., 1., 1.]),)
    """

    def apply(self, x):
        z = maximum(x, 0)

        def grad(gz):
            return gz * (x >= 0),
        self.grad = grad

        return z


class Maximum(Operation):
    r"""Elementwise maximum of two inputs, like :func:`numpy.maximum`.

    Each element's gradient goes to the input that was larger; on a tie it
    goes to ``x``, the first input (so ``maximum(x, 0)`` has the slope of
    :class:`ReLU` at 0):

    .. math:: \bar x = \bar z \cdot [x \ge y], \qquad \bar y = \bar z \cdot [x < y].

    Examples
    --------
    >>> from autodiff import Parameter
    >>> z = Maximum(Parameter([1.0, 5.0]), Parameter([3.0, 2.0]))
    >>> z.value
    array([3., 5.])
    >>> z.operation.grad(np.ones(2))
    (array([0., 1.]), array([1., 0.]))
    """

    def apply(self, x, y):
        z = maximum(x, y)
        first = x >= y  # a boolean array, also when x and y are Variables

        def grad(gz):
            return gz * first, gz * ~first
        self.grad = grad

        return z


class Sigmoid(Operation):
    r"""Logistic sigmoid: :math:`z = 1 / (1 + e^{-x})`, elementwise.

    Its derivative is :math:`z (1 - z)`, so :math:`\bar x = \bar z \, z (1 - z)`.
    The forward pass computes :math:`e = e^{-|x|} \le 1`, which never
    overflows, and then :math:`1 / (1 + e)` for :math:`x \ge 0` and
    :math:`e / (1 + e)` for :math:`x < 0`: the same function, written so
    that tiny outputs keep their full relative precision.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> z = Sigmoid(Parameter(0.0))
    >>> float(z.value), float(z.operation.grad(np.array(1.0))[0])
    (0.5, 0.25)
    """

    def apply(self, x):
        e = exp(-abs(x))
        z = where(x >= 0, 1, e) / (1 + e)

        def grad(gz):
            return gz * z * (1 - z),
        self.grad = grad

        return z


class Tanh(Operation):
    r"""Hyperbolic tangent: :math:`z = \tanh x`, so :math:`\bar x = \bar z (1 - z^2)`.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> z = Tanh(Parameter(0.0))
    >>> float(z.operation.grad(np.array(1.0))[0])
    1.0
    """

    def apply(self, x):
        z = tanh(x)

        def grad(gz):
            return gz * (1 - z * z),
        self.grad = grad

        return z


# ------------------------------------------------------------------ reductions


def _kept_shape(shape: tuple[int, ...], axis: Axis) -> tuple[int, ...]:
    """The shape of a reduction over ``axis`` with ``keepdims=True``.

    NumPy has checked ``axis`` in the forward pass: an int, a NumPy integer or
    a tuple of them, in range (for a 0-d array, 0 and -1 are accepted).
    """
    if axis is None or not shape:
        return (1,) * len(shape)
    axes = {a % len(shape) for a in np.ravel(axis).tolist()}
    return tuple(1 if i in axes else length for i, length in enumerate(shape))


class Sum(Operation):
    r"""Sum over ``axis`` (all axes by default), like :func:`numpy.sum`.

    Every summed element contributes to its sum with slope 1, so each element
    of the input receives the gradient of the sum it went into:
    :math:`\bar x_{ij} = \bar z_i` for :math:`z_i = \sum_j x_{ij}`. In code:
    give :math:`\bar z` back the summed axes, with length 1, and broadcast it
    to the input's shape.

    Parameters
    ----------
    axis
        ``None`` (all axes), an int (negative counts from the end) or a tuple.
    keepdims
        Keep the summed axes with length 1, as NumPy does.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> x = Parameter(np.ones((3, 4)))
    >>> Sum(x, axis=1).value
    array([4., 4., 4.])
    >>> Sum(x, axis=1).operation.grad(np.array([1.0, 2.0, 3.0]))[0]
    array([[1., 1., 1., 1.],
           [2., 2., 2., 2.],
           [3., 3., 3., 3.]])
    """

    def apply(self, x, axis: Axis = None, keepdims: bool = False):
        z = x.sum(axis=axis, keepdims=keepdims)
        shape = x.shape
        kept = _kept_shape(shape, axis)

        def grad(gz):
            return broadcast_to(gz.reshape(kept), shape),
        self.grad = grad

        return z


class Mean(Operation):
    r"""Mean over ``axis`` (all axes by default), like :func:`numpy.mean`.

    The mean is a sum divided by the number :math:`n` of summed elements, so
    its gradient is that of :class:`Sum` divided by :math:`n`.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> x = Parameter([[1.0, 2.0], [3.0, 4.0]])
    >>> Mean(x, axis=0).value
    array([2., 3.])
    >>> Mean(x).operation.grad(np.array(1.0))[0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """

    def apply(self, x, axis: Axis = None, keepdims: bool = False):
        z = x.mean(axis=axis, keepdims=keepdims)
        shape = x.shape
        kept = _kept_shape(shape, axis)
        count = x.size // max(np.size(z), 1)

        def grad(gz):
            return broadcast_to(gz.reshape(kept) / count, shape),
        self.grad = grad

        return z


# ---------------------------------------------------------- shapes and indexing


class MatMul(Operation):
    r"""Matrix product :math:`Z = X Y`, with NumPy's rules for ``@``.

    For matrices, :math:`Z_{ik} = \sum_j X_{ij} Y_{jk}`, and

    .. math:: \bar X = \bar Z \, Y^\top, \qquad \bar Y = X^\top \bar Z .

    NumPy's other cases reduce to this one. A 1-D ``x`` is treated as a
    matrix with one row, a 1-D ``y`` as a matrix with one column; the added
    axis is removed from the result, so it is put back into :math:`\bar Z`
    and removed again from the gradients. Leading (batch) axes broadcast like
    any elementwise operation, and the engine sums the gradients back over
    them.

    ``grad`` takes a second argument, ``needed``, and skips the products whose
    gradient nobody asked for, such as the gradient of the input images in
    the first layer of a network (see :func:`~autodiff.core.backprop`).

    Raises
    ------
    ShapeError
        If an operand is 0-d, or the inner dimensions differ.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> x = Parameter([[1.0, 2.0]])          # shape (1, 2)
    >>> y = Parameter([[3.0], [4.0]])        # shape (2, 1)
    >>> z = x @ y
    >>> z.value
    array([[11.]])
    >>> gx, gy = z.operation.grad(np.ones((1, 1)))
    >>> gx, gy
    (array([[3., 4.]]), array([[1.],
           [2.]]))
    """

    grad_takes_needed = True

    def apply(self, x, y):
        _check_matmul_shapes(x.shape, y.shape)
        z = x @ y

        def grad(gz, needed=(True, True)):
            # Give 1-D operands their missing matrix axis, in gz too.
            x2 = x[np.newaxis, :] if x.ndim == 1 else x
            y2 = y[:, np.newaxis] if y.ndim == 1 else y
            if y.ndim == 1:
                gz = gz[..., np.newaxis]
            if x.ndim == 1:
                gz = gz[..., np.newaxis, :]
            gx = gy = None
            if needed[0]:
                gx = gz @ y2.swapaxes(-1, -2)
                if x.ndim == 1:
                    gx = gx[..., 0, :]
            if needed[1]:
                gy = x2.swapaxes(-1, -2) @ gz
                if y.ndim == 1:
                    gy = gy[..., 0]
            return gx, gy
        self.grad = grad

        return z


def _check_matmul_shapes(x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> None:
    if len(x_shape) == 0 or len(y_shape) == 0:
        raise ShapeError(
            f"MatMul needs operands with at least one axis, but got shapes "
            f"{x_shape} and {y_shape}. Use Mul (the * operator) to multiply by "
            "a scalar."
        )
    inner_y = y_shape[-2] if len(y_shape) > 1 else y_shape[0]
    if x_shape[-1] != inner_y:
        which = "second-to-last" if len(y_shape) > 1 else "only"
        raise ShapeError(
            f"MatMul cannot multiply shapes {x_shape} and {y_shape}: the last "
            f"axis of x has length {x_shape[-1]}, but the {which} axis of y has "
            f"length {inner_y}. These must be equal; transpose or reshape one "
            "operand."
        )
    try:
        np.broadcast_shapes(x_shape[:-2], y_shape[:-2])
    except ValueError:
        raise ShapeError(
            f"MatMul cannot multiply shapes {x_shape} and {y_shape}: the batch "
            f"axes {x_shape[:-2]} and {y_shape[:-2]} do not broadcast."
        ) from None


class GetItem(Operation):
    r"""Indexing, ``z = x[index]``: slices, integer arrays and boolean masks.

    Every selected element passes its gradient back to the place it came
    from; elements that were not selected get 0 (see :class:`ScatterAdd`).
    An integer array may select the same element several times; then its
    gradients add up.

    The index is a keyword argument: it is not differentiable. Writing
    ``x[index]`` calls ``GetItem(x, index=index)``.

    Raises
    ------
    IndexError
        If the index does not fit ``x`` (out of bounds, too many indices, a
        mask of the wrong shape): an :class:`~autodiff.core.IndexingError`,
        which is a ``ValueError`` too.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> x = Parameter([10.0, 20.0, 30.0])
    >>> z = x[np.array([0, 0, 2])]
    >>> z.value
    array([10., 10., 30.])
    >>> z.operation.grad(np.ones(3))
    (array([2., 0., 1.]),)
    """

    def apply(self, x, index: Any = None):
        z = x[index]
        shape = x.shape

        def grad(gz):
            return scatter_add(gz, index, shape),
        self.grad = grad

        return z


class ScatterAdd(Operation):
    r"""Put ``x`` into an array of zeros of ``shape`` at ``index``: the reverse of indexing.

    Where ``index`` selects an element several times, the values add up.
    This is the gradient of :class:`GetItem`, and its own gradient is
    indexing again: :math:`\bar x = \bar z[\text{index}]`.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> ScatterAdd(Parameter([1.0, 2.0, 3.0]), index=np.array([0, 0, 2]), shape=(4,)).value
    array([3., 0., 3., 0.])
    """

    def apply(self, x, index: Any = None, shape: tuple[int, ...] = ()):
        z = scatter_add(x, index, shape)

        def grad(gz):
            return gz[index],
        self.grad = grad

        return z


def _is_basic_index(index: Any) -> bool:
    """True if ``index`` holds only ints, slices, ``None`` and ``...``.

    Such an index selects every element at most once, so scattering can be
    plain assignment instead of the slower :func:`numpy.add.at`.
    """
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        isinstance(part, (int, np.integer, slice)) or part is None or part is Ellipsis
        for part in parts
    )


class Reshape(Operation):
    r"""Give the input another shape, like :func:`numpy.reshape`.

    Reshaping moves no element, so the gradient is the output gradient put
    back into the input's shape.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> Reshape(Parameter(np.arange(6.0)), shape=(2, 3)).shape
    (2, 3)
    """

    def apply(self, x, shape: Any = None):
        z = x.reshape(shape)
        x_shape = x.shape

        def grad(gz):
            return gz.reshape(x_shape),
        self.grad = grad

        return z


class Transpose(Operation):
    r"""Permute the axes, like :func:`numpy.transpose` (reverse them by default).

    The gradient is the output gradient with the inverse permutation applied.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> x = Parameter(np.zeros((2, 3, 4)))
    >>> Transpose(x, axes=(1, 2, 0)).shape
    (3, 4, 2)
    >>> x.T.shape
    (4, 3, 2)
    """

    def apply(self, x, axes: tuple[int, ...] | None = None):
        z = x.transpose(axes)
        # Negative axes count from the end; argsort needs them as positions.
        inverse = None if axes is None else tuple(np.argsort(np.asarray(axes) % x.ndim))

        def grad(gz):
            return gz.transpose(inverse),
        self.grad = grad

        return z


class BroadcastTo(Operation):
    r"""Broadcast the input to ``shape``, like :func:`numpy.broadcast_to`.

    Each element of the input is used once for every copy, so its gradient
    is the sum of the copies' gradients: :func:`~autodiff.core.unbroadcast`.
    This is the gradient of :class:`Sum`, and the two are each other's
    backward rules.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> z = BroadcastTo(Parameter([1.0, 2.0]), shape=(3, 2))
    >>> z.operation.grad(np.ones((3, 2)))
    (array([3., 3.]),)
    """

    def apply(self, x, shape: tuple[int, ...] = ()):
        z = broadcast_to(x, shape)
        x_shape = x.shape

        def grad(gz):
            return unbroadcast(gz, x_shape),
        self.grad = grad

        return z


class Where(Operation):
    r"""Choose elementwise: ``x`` where ``condition`` holds, else ``y``.

    The condition is a keyword argument, a boolean array: it is not
    differentiated. Each element's gradient goes to the input it came from.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> z = Where(Parameter([1.0, 2.0]), Parameter([10.0, 20.0]),
    ...           condition=np.array([True, False]))
    >>> z.value
    array([ 1., 20.])
    >>> z.operation.grad(np.ones(2))
    (array([1., 0.]), array([0., 1.]))
    """

    def apply(self, x, y, condition: Any = None):
        if condition is None:
            raise TypeError(
                "Where needs the condition as a keyword argument: "
                "Where(x, y, condition=mask), or where(mask, x, y)."
            )
        z = where(condition, x, y)

        def grad(gz):
            return where(condition, gz, 0), where(condition, 0, gz)
        self.grad = grad

        return z


# ------------------------------------------------------------ fused operations
#
# One node for a computation that could be written with several: fewer
# arrays kept alive, less bookkeeping per step, and a backward rule that is
# simpler than the composition of the parts.


class MSE(Operation):
    r"""Mean squared error as one fused operation.

    .. math:: J = \frac{1}{n} \sum_{i=1}^{n} (x_i - y_i)^2

    where :math:`n` is the number of elements (after broadcasting ``x``
    against ``y``). Its partial derivatives are

    .. math::
        \frac{\partial J}{\partial x_i} = \frac{2}{n} (x_i - y_i), \qquad
        \frac{\partial J}{\partial y_i} = -\frac{2}{n} (x_i - y_i).

    One node instead of the three operations of ``((x - y) ** 2).mean()``:
    fewer arrays kept alive and fewer steps in the backward pass.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> z = MSE(Parameter(1.0), Parameter(-1.0))
    >>> float(z.value)
    4.0
    >>> [float(g) for g in z.operation.grad(np.array(1.0))]
    [4.0, -4.0]
    """

    def apply(self, x, y):
        difference = x - y
        if difference.size == 0:
            raise ValueError(
                f"MSE: got an empty batch (shapes {x.shape} and {y.shape}); the mean "
                "over no values is undefined. Check how the batch was cut."
            )
        z = (difference * difference).mean()

        def grad(gz):
            gx = gz * (2 / difference.size) * difference
            return gx, -gx
        self.grad = grad

        return z


class Affine(Operation):
    r"""The affine map :math:`Z = X W + b` as one operation.

    With :math:`X` of shape ``(n, in)`` (one input per row), :math:`W` of
    shape ``(in, out)`` and :math:`b` of shape ``(out,)``:

    .. math::
        \bar X = \bar Z W^\top, \qquad
        \bar W = X^\top \bar Z, \qquad
        \bar b_k = \sum_i \bar Z_{ik} .

    ``x @ w + b`` computes the same with two operations, MatMul and Add.
    One node instead of two means one intermediate array less, no
    broadcasting to undo for the bias, and less bookkeeping per training
    step. Like :class:`MatMul`, it skips :math:`\bar X` when nobody needs
    it, which is the case for the input images.

    ``x`` may also be a single vector, or have more leading axes; they are
    treated as rows.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> x = Parameter([[1.0, 2.0]])
    >>> w = Parameter([[1.0, 0.0, -1.0], [0.0, 1.0, 1.0]])
    >>> b = Parameter([0.5, 0.5, 0.5])
    >>> z = Affine(x, w, b)
    >>> z.value
    array([[1.5, 2.5, 1.5]])
    >>> gx, gw, gb = z.operation.grad(np.ones((1, 3)))
    >>> gx, gb
    (array([[0., 2.]]), array([1., 1., 1.]))
    """

    grad_takes_needed = True

    def apply(self, x, w, b):
        if w.ndim != 2 or b.shape != w.shape[1:] or x.ndim == 0 or x.shape[-1] != w.shape[0]:
            raise ShapeError(
                f"Affine: expected x of shape (..., in), w of shape (in, out) and b of "
                f"shape (out,), but got {x.shape}, {w.shape} and {b.shape}."
            )
        z = x @ w
        if np.can_cast(b.dtype, z.dtype, "same_kind"):
            z += b  # in place: one array less
        else:  # such as a float bias on an integer product
            z = z + b

        def grad(gz, needed=(True, True, True)):
            gx = gz @ w.T if needed[0] else None
            x_rows, gz_rows = x, gz
            if x.ndim != 2:  # every leading axis is a row: flatten them
                x_rows = x.reshape(-1, x.shape[-1])
                gz_rows = gz.reshape(-1, gz.shape[-1])
            gw = x_rows.T @ gz_rows if needed[1] else None
            gb = gz_rows.sum(axis=0) if needed[2] else None
            return gx, gw, gb
        self.grad = grad

        return z


def check_class_labels(labels: Any, logits_shape: tuple[int, ...], where: str) -> np.ndarray:
    """Check integer class labels against logits of shape ``(n, classes)``.

    Returns the labels as an array. ``where`` names the caller in the errors.

    Examples
    --------
    >>> check_class_labels([0, 2], (2, 3), "example")
    array([0, 2])
    >>> check_class_labels([0, 3], (2, 3), "example")
    Traceback (most recent call last):
    ...
    ValueError: example: labels must lie in 0..2 (one per class of the logits), but range from 0 to 3.
    """
    array = labels if type(labels) is np.ndarray else as_numeric_array(labels, where)
    if array.size == 0:
        raise ValueError(
            f"{where}: got an empty batch (labels of shape {array.shape}); the mean "
            "over no examples is undefined. Check how the batch was cut."
        )
    if array.dtype.kind not in "iu":
        raise TypeError(
            f"{where}: labels must be integers (class indices), but got dtype "
            f"{array.dtype}. Convert them with labels.astype(np.int64)."
        )
    if len(logits_shape) != 2 or array.shape != logits_shape[:1]:
        raise ShapeError(
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
    Subtracting a row's maximum changes no probability, so for the
    derivative it is a constant (:func:`detach`).

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

    def apply(self, logits, labels: Any = None):
        if labels is None:
            raise TypeError(
                "SoftmaxCrossEntropy needs the labels as a keyword argument: "
                "SoftmaxCrossEntropy(logits, labels=labels)."
            )
        labels = check_class_labels(labels, logits.shape, "SoftmaxCrossEntropy")
        n = logits.shape[0]
        rows = np.arange(n)
        shifted = logits - detach(logits).max(axis=1, keepdims=True)
        exponentials = exp(shifted)
        sums = exponentials.sum(axis=1, keepdims=True)
        probabilities = exponentials / sums
        z = (log(sums[:, 0]) - shifted[rows, labels]).mean()
        one_hot = np.zeros(logits.shape, dtype=logits.dtype)
        one_hot[rows, labels] = 1

        def grad(gz):
            return (probabilities - one_hot) * (gz / n),
        self.grad = grad

        return z


# ------------------------------------------- functions for arrays and Variables
#
# NumPy's function for an array, the matching operation for a Variable. The
# operations above are written with these, so that the same apply and grad
# compute numbers (on arrays) or record a graph (on variables).


def exp(x: Any) -> Any:
    """``np.exp(x)`` for an array, the :class:`Exp` operation for a Variable."""
    return Exp(x) if isinstance(x, Variable) else np.exp(x)


def log(x: Any) -> Any:
    """``np.log(x)`` for an array, the :class:`Log` operation for a Variable."""
    return Log(x) if isinstance(x, Variable) else np.log(x)


def tanh(x: Any) -> Any:
    """``np.tanh(x)`` for an array, the :class:`Tanh` operation for a Variable."""
    return Tanh(x) if isinstance(x, Variable) else np.tanh(x)


def maximum(x: Any, y: Any) -> Any:
    """``np.maximum(x, y)`` for arrays, the :class:`Maximum` operation if either is a Variable."""
    if isinstance(x, Variable) or isinstance(y, Variable):
        return Maximum(x, y)
    return np.maximum(x, y)


def where(condition: Any, x: Any, y: Any) -> Any:
    """``np.where(condition, x, y)`` for arrays, the :class:`Where` operation if
    ``x`` or ``y`` is a Variable. The condition is never differentiated."""
    if isinstance(x, Variable) or isinstance(y, Variable):
        return Where(x, y, condition=detach(condition))
    return np.where(condition, x, y)


def broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    """``np.broadcast_to(x, shape)`` for an array, :class:`BroadcastTo` for a Variable."""
    if isinstance(x, Variable):
        return BroadcastTo(x, shape=shape)
    return np.broadcast_to(x, shape)


def scatter_add(x: Any, index: Any, shape: tuple[int, ...]) -> Any:
    """Zeros of ``shape`` with ``x`` added at ``index``; :class:`ScatterAdd` for a Variable.

    Examples
    --------
    >>> scatter_add(np.array([1.0, 2.0]), np.array([1, 1]), (3,))
    array([0., 3., 0.])
    """
    if isinstance(x, Variable):
        return ScatterAdd(x, index=index, shape=shape)
    z = np.zeros(shape, dtype=np.result_type(x))
    if _is_basic_index(index):
        z[index] = x
    else:
        np.add.at(z, index, x)  # adds once per occurrence of a repeated index
    return z


def detach(x: Any) -> Any:
    """The value of ``x`` as a plain array: a constant, through which no gradient flows.

    An array is returned as it is. PyTorch calls this ``Tensor.detach()``,
    JAX ``stop_gradient``.
    """
    return x.value if isinstance(x, Variable) else x


# ---------------------------------------------------- convolution and pooling
#
# Images come in PyTorch's layout: (batch, channels, height, width). The one
# new idea is Unfold ("im2col"): it copies every window that a kernel visits
# into a column, so that a convolution becomes one matrix product. Fold is its
# adjoint: it adds columns back onto the image, each window to where it came
# from. Unfold and Fold are each other's backward rule, as GetItem and
# ScatterAdd are; Conv2d and MaxPool2d write their backward rules with Fold,
# matrix products and reshapes, so that gradients of any order exist.

Pair = tuple[int, int]


def check_pair(value: Any, name: str, where: str, smallest: int = 1) -> Pair:
    """``value``, an int or a pair of ints, as a pair, each at least ``smallest``.

    For the sizes, strides and paddings of :class:`Conv2d` and
    :class:`MaxPool2d`; ``where`` names the caller in the errors.

    Examples
    --------
    >>> check_pair(3, "stride", "example")
    (3, 3)
    >>> check_pair((1, -1), "padding", "example", smallest=0)
    Traceback (most recent call last):
    ...
    ValueError: example: padding must be at least 0 (an int, or a pair for height and width), but got (1, -1).
    """
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)
    if len(pair) != 2 or not ints:
        raise TypeError(
            f"{where}: {name} must be an int or a pair of ints (height, width), "
            f"but got {value!r}."
        )
    if min(pair) < smallest:
        expected = "positive" if smallest == 1 else "at least 0"
        raise ValueError(
            f"{where}: {name} must be {expected} (an int, or a pair for height and "
            f"width), but got {value!r}."
        )
    return int(pair[0]), int(pair[1])


def _windows_shape(
    where: str, x_shape: tuple[int, ...], kernel: Pair, stride: Pair, padding: Pair,
    w_shape: tuple[int, ...] | None = None,
) -> Pair:
    """The number of window positions (down, across); checks that x is 4-D and fits the kernel."""
    if len(x_shape) != 4:
        raise ShapeError(
            f"{where} expects x of shape (batch, channels, height, width), but got "
            f"shape {x_shape}, which has {len(x_shape)} axes. Add the missing axes "
            "with reshape: a batch of flat 28x28 images becomes x.reshape(-1, 1, 28, 28)."
        )
    padded = (x_shape[2] + 2 * padding[0], x_shape[3] + 2 * padding[1])
    if kernel[0] > padded[0] or kernel[1] > padded[1]:
        weights = "" if w_shape is None else f" (w has shape {w_shape})"
        raise ShapeError(
            f"{where}: the kernel, of size {kernel}{weights}, is larger than the "
            f"input: x has shape {x_shape}, height and width {padded} with padding "
            f"{padding}. Use a smaller kernel, more padding or larger images."
        )
    return (
        (padded[0] - kernel[0]) // stride[0] + 1,
        (padded[1] - kernel[1]) // stride[1] + 1,
    )


def _settings(where: str, kernel_size: Any, stride: Any, padding: Any) -> tuple[Pair, Pair, Pair]:
    return (
        check_pair(kernel_size, "kernel_size", where, 1),
        check_pair(stride, "stride", where, 1),
        check_pair(padding, "padding", where, 0),
    )


class Unfold(Operation):
    r"""Copy every window of the image into a column: "im2col".

    For ``x`` of shape ``(N, C, H, W)``, a kernel of size
    :math:`k_h \times k_w`, stride :math:`s` and zero padding :math:`p`,
    the output has shape ``(N, C * kh * kw, L)``: one column per window
    position, :math:`L = H' W'` positions with
    :math:`H' = \lfloor (H + 2p_h - k_h) / s_h \rfloor + 1` (and likewise
    :math:`W'`). Writing :math:`\tilde x` for the zero-padded input,

    .. math:: z_{n, (c, a, b), (i, j)} = \tilde x_{n, c, s_h i + a, s_w j + b},

    and the rows are ordered by channel, then kernel row :math:`a`, then
    kernel column :math:`b`, as in ``torch.nn.functional.unfold``.
    A convolution is then a matrix product with these columns
    (:class:`Conv2d`).

    Each element of the output is a copy of one element of the input, and
    an input element appears in as many columns as windows contain it. So
    its gradient is the sum of the gradients of its copies: the columns of
    :math:`\bar z` added back onto the image, which is :func:`fold`. Fold and
    Unfold are each other's backward rules.

    The windows come from :func:`numpy.lib.stride_tricks.sliding_window_view`,
    which costs no memory; the one copy is the reshape into columns.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> x = Parameter(np.arange(9.0).reshape(1, 1, 3, 3))
    >>> z = Unfold(x, kernel_size=2)   # four 2x2 windows, one per column
    >>> z.value
    array([[[0., 1., 3., 4.],
            [1., 2., 4., 5.],
            [3., 4., 6., 7.],
            [4., 5., 7., 8.]]])
    >>> z.operation.grad(np.ones((1, 4, 4)))[0]   # how many windows hold each pixel
    array([[[[1., 2., 1.],
             [2., 4., 2.],
             [1., 2., 1.]]]])
    """

    def apply(self, x, kernel_size: Any = None, stride: Any = 1, padding: Any = 0):
        z = unfold(x, kernel_size, stride, padding)
        size = x.shape[2:]

        def grad(gz):
            return fold(gz, size, kernel_size, stride, padding),
        self.grad = grad

        return z


class Fold(Operation):
    r"""Add columns back onto an image: the adjoint of :class:`Unfold` ("col2im").

    ``x`` has shape ``(N, C * kh * kw, L)``, one column per window, laid out
    as :class:`Unfold` makes them; the output has shape
    ``(N, C, *output_size)``. Every element of a column is added to the
    pixel it would have been copied from, so where windows overlap, their
    values add up:

    .. math:: z_{n, c, u, v} = \sum_{a, b, i, j \,:\, s_h i + a = u + p_h,\; s_w j + b = v + p_w}
              x_{n, (c, a, b), (i, j)} .

    The sum runs as :math:`k_h k_w` additions of strided slices, one per
    position :math:`(a, b)` inside the kernel, each adding one row of every
    window at once (no :func:`numpy.add.at`). What falls on the padding is
    dropped.

    The gradient of a sum of copies is the copy of the gradient:
    :math:`\bar x = \operatorname{unfold}(\bar z)`.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> columns = Parameter(np.ones((1, 4, 4)))
    >>> Fold(columns, output_size=(3, 3), kernel_size=2).value   # windows overlapping
    array([[[[1., 2., 1.],
             [2., 4., 2.],
             [1., 2., 1.]]]])
    """

    def apply(self, x, output_size: Any = None, kernel_size: Any = None, stride: Any = 1,
              padding: Any = 0):
        z = fold(x, output_size, kernel_size, stride, padding)

        def grad(gz):
            return unfold(gz, kernel_size, stride, padding),
        self.grad = grad

        return z


class Conv2d(Operation):
    r"""2-D convolution (strictly: cross-correlation), as ``torch.nn.functional.conv2d``.

    ``x`` has shape ``(N, C, H, W)``: a batch of images with ``C``
    channels; ``w`` has shape ``(O, C, kh, kw)``: ``O`` kernels, each
    looking at all ``C`` channels. With the input zero-padded by
    :math:`p` on every side (:math:`\tilde x`) and the kernel moved by the
    stride :math:`s`, each output element is a weighted sum over one window:

    .. math:: z_{n,o,i,j} = \sum_{c,a,b} w_{o,c,a,b}\,\tilde x_{n,c,\,s_h i + a,\,s_w j + b} ,

    of shape ``(N, O, H', W')`` with
    :math:`H' = \lfloor (H + 2 p_h - k_h) / s_h \rfloor + 1`.

    **As a matrix product.** With :math:`X_n` the columns of image
    :math:`n` (:func:`unfold`: one column of :math:`C k_h k_w` numbers per
    window) and :math:`W` the kernels as rows (``w.reshape(O, -1)``), the
    whole sum is :math:`Z_n = W X_n`. So the gradients are those of a matrix
    product (:class:`MatMul`):

    .. math::
        \bar W = \sum_n \bar Z_n X_n^\top, \qquad
        \bar X_n = W^\top \bar Z_n, \qquad
        \bar x = \operatorname{fold}(\bar X) .

    Element by element, the kernel's gradient is a correlation of the
    input with the output's gradient,
    :math:`\bar w_{o,c,a,b} = \sum_{n,i,j} \bar z_{n,o,i,j}\,\tilde x_{n,c,\,s_h i+a,\,s_w j+b}`,
    and the input's gradient (for stride 1)
    :math:`\bar{\tilde x}_{n,c,u,v} = \sum_{o,a,b} \bar z_{n,o,\,u-a,\,v-b}\, w_{o,c,a,b}`
    is a *full* convolution of :math:`\bar z` with the kernel, that is, a
    correlation with the kernel flipped in both directions: a *transposed
    convolution*. :func:`fold` computes it by adding the columns
    :math:`W^\top \bar Z_n` back onto the image.

    **Gradients of gradients.** The backward rule is written with
    operations: ``@``, reshapes, a sum and :func:`fold`, whose own gradient
    is :func:`unfold`, whose gradient is :func:`fold` again. The family is
    closed, so ``backprop(..., create_graph=True)`` can differentiate
    through a convolution's gradient, to any order.

    The columns of the forward pass are kept for :math:`\bar W`: one copy of
    the unfolded input per layer, the memory price of the single matrix
    product. The input's gradient is skipped when nobody needs it (the
    images of the first layer).

    Parameters
    ----------
    x
        The images, ``(N, C, H, W)``.
    w
        The kernels, ``(O, C, kh, kw)``.
    stride, padding
        An int, or a pair (height, width). Keyword arguments: settings, not
        differentiated.

    Raises
    ------
    ShapeError
        If ``x`` or ``w`` does not have 4 axes, their channels differ, or
        the kernel is larger than the padded input.
    ValueError
        If a stride is not positive or a padding is negative.

    Examples
    --------
    A 2x2 kernel that adds each pixel to its right-hand and lower neighbours:

    >>> from autodiff import Parameter
    >>> x = Parameter(np.arange(9.0).reshape(1, 1, 3, 3))
    >>> w = Parameter(np.array([[[[1.0, 1.0], [1.0, 0.0]]]]))
    >>> z = Conv2d(x, w)
    >>> z.value
    array([[[[ 4.,  7.],
             [13., 16.]]]])
    >>> gx, gw = z.operation.grad(np.ones((1, 1, 2, 2)))
    >>> gx          # how many windows weigh each pixel with 1
    array([[[[1., 2., 1.],
             [2., 3., 1.],
             [1., 1., 0.]]]])
    >>> gw          # the sum of the pixels each kernel entry saw
    array([[[[ 8., 12.],
             [20., 24.]]]])
    """

    grad_takes_needed = True

    def apply(self, x, w, stride: Any = 1, padding: Any = 0):
        stride = check_pair(stride, "stride", "Conv2d", 1)
        padding = check_pair(padding, "padding", "Conv2d", 0)
        out_height, out_width = _check_conv2d(x.shape, w.shape, stride, padding)
        n, _, height, width = x.shape
        out_channels, _, kh, kw = w.shape
        columns = unfold(x, (kh, kw), stride, padding)       # (n, C * kh * kw, L)
        kernels = w.reshape(out_channels, -1)                 # (O, C * kh * kw)
        z = (kernels @ columns).reshape(n, out_channels, out_height, out_width)

        def grad(gz, needed=(True, True)):
            gz_rows = gz.reshape(n, out_channels, -1)         # (n, O, L)
            gx = gw = None
            if needed[0]:
                gx = fold(kernels.T @ gz_rows, (height, width), (kh, kw), stride, padding)
            if needed[1]:
                # The sum of X_n gz_n^T, transposed: faster in BLAS than gz_n X_n^T.
                gw = (columns @ gz_rows.swapaxes(1, 2)).sum(axis=0).T.reshape(w.shape)
            return gx, gw
        self.grad = grad

        return z


def _check_conv2d(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Pair, padding: Pair
) -> Pair:
    """Check the shapes of a convolution; return the output's height and width."""
    if len(w_shape) != 4:
        raise ShapeError(
            f"Conv2d expects w of shape (out_channels, in_channels, kh, kw), but got "
            f"shape {w_shape}, which has {len(w_shape)} axes."
        )
    if len(x_shape) == 4 and x_shape[1] != w_shape[1]:
        raise ShapeError(
            f"Conv2d: x of shape {x_shape} has {x_shape[1]} channels, but w of shape "
            f"{w_shape} expects {w_shape[1]}: w's second axis (in_channels) must equal "
            "x's second axis."
        )
    kernel = (w_shape[2], w_shape[3])
    return _windows_shape("Conv2d", x_shape, kernel, stride, padding, w_shape)


class MaxPool2d(Operation):
    r"""The largest value of each window, as ``torch.nn.functional.max_pool2d``.

    ``x`` has shape ``(N, C, H, W)``; each channel is pooled on its own.
    The windows have size ``kernel_size`` and move by ``stride``, which is
    ``kernel_size`` by default, so that the windows tile the image:

    .. math:: z_{n,c,i,j} = \max_{a,b}\; x_{n,c,\,s_h i + a,\,s_w j + b} .

    **The gradient is sparse.** Only the maximum of a window affects the
    output, with slope 1; the other elements may change a little without
    any effect. So each window passes its gradient to one element, its
    maximum, and every other element gets 0:

    .. math:: \bar x = \operatorname{fold}\big(m \odot \bar z\big), \qquad
              m = \text{one-hot mask of each window's maximum} .

    When several elements tie for the maximum, there is no derivative; the
    gradient goes to the *first* of them (in reading order), as in PyTorch,
    so that each window still passes its gradient exactly once. Where windows
    overlap (a stride smaller than the kernel), an element that is the
    maximum of several windows collects all their gradients: that is the sum
    :func:`fold` computes.

    The mask is a constant, so the backward rule is a product with it and
    :func:`fold` (a scatter to the chosen elements), whose own gradient is
    :func:`unfold` followed by the same mask (a gather from them): gradients
    of gradients work too. The forward pass needs no operations of its own:
    the output is the maximum, computed on the values.

    Parameters
    ----------
    x
        ``(N, C, H, W)``.
    kernel_size
        The window's size, an int or a pair.
    stride
        How far the window moves, an int or a pair; by default ``kernel_size``.

    Raises
    ------
    ShapeError
        If ``x`` does not have 4 axes or is smaller than a window.
    ValueError
        If the kernel size or the stride is not positive.

    Examples
    --------
    >>> from autodiff import Parameter
    >>> x = Parameter(np.array([[[[1.0, 5.0, 2.0, 0.0],
    ...                           [3.0, 4.0, 2.0, 2.0]]]]))
    >>> z = MaxPool2d(x, kernel_size=2)
    >>> z.value
    array([[[[5., 2.]]]])
    >>> z.operation.grad(np.array([[[[10.0, 20.0]]]]))[0]   # the tie: the first 2 wins
    array([[[[ 0., 10., 20.,  0.],
             [ 0.,  0.,  0.,  0.]]]])
    """

    def apply(self, x, kernel_size: Any = None, stride: Any = None):
        if stride is None:
            stride = kernel_size
        kernel, stride, _ = _settings("MaxPool2d", kernel_size, stride, 0)
        out_height, out_width = _windows_shape("MaxPool2d", x.shape, kernel, stride, (0, 0))
        n, channels, height, width = x.shape
        size = kernel[0] * kernel[1]
        # The elements of each window along axis 2, (n, C, kh * kw, L), as constants:
        # the gradient is defined by grad below, which is made of operations.
        windows = unfold(detach(x), kernel, stride).reshape(n, channels, size, -1)
        maximum = windows.max(axis=2)
        # The first maximum of each window: equal to the maximum, and no earlier element was.
        chosen = np.zeros(windows.shape, dtype=bool)
        found = np.zeros(maximum.shape, dtype=bool)
        for k in range(size):
            is_max = windows[:, :, k] == maximum
            chosen[:, :, k] = is_max & ~found
            found |= is_max
        z = maximum.reshape(n, channels, out_height, out_width)

        def grad(gz):
            to_windows = gz.reshape(n, channels, 1, -1) * chosen  # gz at each first maximum, else 0
            gx = fold(to_windows.reshape(n, channels * size, -1), (height, width), kernel, stride)
            return gx,
        self.grad = grad

        return z


def unfold(x: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0) -> Any:
    """The windows of ``x`` as columns (im2col); :class:`Unfold` for a Variable.

    ``x`` has shape ``(N, C, H, W)``; the result ``(N, C * kh * kw, L)``,
    the layout of ``torch.nn.functional.unfold``.

    Examples
    --------
    >>> unfold(np.arange(8.0).reshape(1, 2, 2, 2), kernel_size=2)[0, :, 0]
    array([0., 1., 2., 3., 4., 5., 6., 7.])
    """
    if isinstance(x, Variable):
        return Unfold(x, kernel_size=kernel_size, stride=stride, padding=padding)
    kernel, stride, padding = _settings("unfold", kernel_size, stride, padding)
    _windows_shape("unfold", x.shape, kernel, stride, padding)
    if padding != (0, 0):
        x = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    # (N, C, H', W', kh, kw): a view of x, no copy.
    windows = sliding_window_view(x, kernel, axis=(2, 3))[:, :, :: stride[0], :: stride[1]]
    n, channels, out_height, out_width = windows.shape[:4]
    # Kernel offsets before positions, so that the copy runs along image rows.
    by_offset = windows.transpose(0, 1, 4, 5, 2, 3)
    return by_offset.reshape(n, channels * kernel[0] * kernel[1], out_height * out_width)


def fold(x: Any, output_size: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0) -> Any:
    """Add columns back onto an image (col2im); :class:`Fold` for a Variable.

    ``x`` has shape ``(N, C * kh * kw, L)``; the result
    ``(N, C, *output_size)``, as ``torch.nn.functional.fold``.

    Examples
    --------
    >>> fold(np.ones((1, 1, 9)), (3, 3), kernel_size=1)[0, 0]
    array([[1., 1., 1.],
           [1., 1., 1.],
           [1., 1., 1.]])
    """
    if isinstance(x, Variable):
        return Fold(x, output_size=output_size, kernel_size=kernel_size, stride=stride,
                    padding=padding)
    (kh, kw), (sh, sw), (ph, pw) = _settings("fold", kernel_size, stride, padding)
    height, width = check_pair(output_size, "output_size", "fold", 1)
    if x.ndim != 3:
        raise ShapeError(
            f"fold expects columns of shape (N, channels * kh * kw, windows), but got "
            f"shape {x.shape}."
        )
    n, channels = x.shape[0], x.shape[1] // (kh * kw)
    out_height, out_width = _windows_shape(
        "fold", (n, channels, height, width), (kh, kw), (sh, sw), (ph, pw)
    )
    windows = out_height * out_width
    if x.shape[1] % (kh * kw) or x.shape[2] != windows:
        raise ShapeError(
            f"fold: an image of size {(height, width)} with kernel {(kh, kw)}, stride "
            f"{(sh, sw)} and padding {(ph, pw)} has {windows} windows, so x must have "
            f"shape (N, channels * {kh * kw}, {windows}), but it has shape {x.shape}."
        )
    columns = x.reshape(n, channels, kh, kw, out_height, out_width)
    image = np.zeros((n, channels, height + 2 * ph, width + 2 * pw), dtype=x.dtype)
    # Entry (a, b) of window (i, j) lies at (a + sh * i, b + sw * j) in the padded
    # image: one strided slice holds that entry of every window.
    rows, cols = sh * (out_height - 1) + 1, sw * (out_width - 1) + 1
    overlap = kh > sh or kw > sw
    for a in range(kh):
        for b in range(kw):
            pixels = image[:, :, a : a + rows : sh, b : b + cols : sw]
            if overlap:
                pixels += columns[:, :, a, b]
            else:  # each pixel is in one window at most: assigning is quicker than adding
                pixels[...] = columns[:, :, a, b]
    return image[:, :, ph : ph + height, pw : pw + width]
