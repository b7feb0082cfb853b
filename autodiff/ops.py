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
"""

from __future__ import annotations

from typing import Any

import numpy as np

from autodiff.core import Operation

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
    "ReLU",
    "Sigmoid",
    "Tanh",
    "Sum",
    "Mean",
    "MatMul",
    "GetItem",
    "Reshape",
    "Transpose",
    "MSE",
]

Axis = int | tuple[int, ...] | None


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
            gx = gz * y * x ** (y - 1)
            if not needed[1]:
                return gx, None
            positive = x > 0
            log_x = np.log(np.where(positive, x, 1))
            gy = gz * z * log_x
            # 0 where x = 0, nan where x < 0, in gy's dtype (float32 stays float32).
            fill = np.where(x == 0, 0, np.nan).astype(gy.dtype)
            gy = np.where(positive, gy, fill)
            return gx, gy
        self.grad = grad

        return z


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
        z = np.exp(x)

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
        z = np.log(x)

        def grad(gz):
            return gz / x,
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
        z = np.maximum(x, 0)

        def grad(gz):
            return gz * (x >= 0),
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
        e = np.exp(-np.abs(x))
        z = np.where(x >= 0, 1, e) / (1 + e)

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
        z = np.tanh(x)

        def grad(gz):
            return gz * (1 - z * z),
        self.grad = grad

        return z


class Sum(Operation):
    r"""Sum over ``axis`` (all axes by default), like :func:`numpy.sum`.

    Every summed element contributes to its sum with slope 1, so each element
    of the input receives the gradient of the sum it went into:
    :math:`\bar x_{ij} = \bar z_i` for :math:`z_i = \sum_j x_{ij}`. In code:
    put back the summed axes (unless ``keepdims`` kept them) and broadcast.

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
        z = np.sum(x, axis=axis, keepdims=keepdims)
        shape = x.shape

        def grad(gz):
            if axis is not None and not keepdims:
                gz = np.expand_dims(gz, axis)
            return np.broadcast_to(gz, shape),
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
        z = np.mean(x, axis=axis, keepdims=keepdims)
        shape = x.shape
        count = x.size // max(np.size(z), 1)

        def grad(gz):
            if axis is not None and not keepdims:
                gz = np.expand_dims(gz, axis)
            return np.broadcast_to(gz / count, shape),
        self.grad = grad

        return z


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
    ValueError
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
                gz = np.expand_dims(gz, -1)
            if x.ndim == 1:
                gz = np.expand_dims(gz, -2)
            gx = gy = None
            if needed[0]:
                gx = gz @ np.swapaxes(y2, -1, -2)
                if x.ndim == 1:
                    gx = gx[..., 0, :]
            if needed[1]:
                gy = np.swapaxes(x2, -1, -2) @ gz
                if y.ndim == 1:
                    gy = gy[..., 0]
            return gx, gy
        self.grad = grad

        return z


def _check_matmul_shapes(x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> None:
    if len(x_shape) == 0 or len(y_shape) == 0:
        raise ValueError(
            f"MatMul needs operands with at least one axis, but got shapes "
            f"{x_shape} and {y_shape}. Use Mul (the * operator) to multiply by "
            "a scalar."
        )
    inner_y = y_shape[-2] if len(y_shape) > 1 else y_shape[0]
    if x_shape[-1] != inner_y:
        which = "second-to-last" if len(y_shape) > 1 else "only"
        raise ValueError(
            f"MatMul cannot multiply shapes {x_shape} and {y_shape}: the last "
            f"axis of x has length {x_shape[-1]}, but the {which} axis of y has "
            f"length {inner_y}. These must be equal; transpose or reshape one "
            "operand."
        )
    try:
        np.broadcast_shapes(x_shape[:-2], y_shape[:-2])
    except ValueError:
        raise ValueError(
            f"MatMul cannot multiply shapes {x_shape} and {y_shape}: the batch "
            f"axes {x_shape[:-2]} and {y_shape[:-2]} do not broadcast."
        ) from None


def _is_basic_index(index: Any) -> bool:
    """True if ``index`` holds only ints, slices, ``None`` and ``...``.

    Such an index selects every element at most once, so the gradient can be
    written with plain assignment.
    """
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        isinstance(part, (int, np.integer, slice)) or part is None or part is Ellipsis
        for part in parts
    )


class GetItem(Operation):
    r"""Indexing, ``z = x[index]``: slices, integer arrays and boolean masks.

    Every selected element passes its gradient back to the place it came
    from; elements that were not selected get 0. An integer array may select
    the same element several times; then its gradients add up, which is why
    the general case uses :func:`numpy.add.at` instead of assignment (an
    assignment would keep only the last one).

    The index is a keyword argument: it is not differentiable. Writing
    ``x[index]`` calls ``GetItem(x, index=index)``.

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
        shape, dtype = x.shape, x.dtype
        basic = _is_basic_index(index)

        def grad(gz):
            gx = np.zeros(shape, dtype=np.result_type(dtype, gz))
            if basic:
                gx[index] = gz
            else:
                np.add.at(gx, index, gz)
            return gx,
        self.grad = grad

        return z


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
        z = np.reshape(x, shape)
        x_shape = x.shape

        def grad(gz):
            return np.reshape(gz, x_shape),
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
        z = np.transpose(x, axes)
        # Negative axes count from the end; argsort needs them as positions.
        inverse = None if axes is None else tuple(np.argsort(np.asarray(axes) % x.ndim))

        def grad(gz):
            return np.transpose(gz, inverse),
        self.grad = grad

        return z


class MSE(Operation):
    r"""Mean squared error as one fused operation.

    .. math:: J = \frac{1}{n} \sum_{i=1}^{n} (x_i - y_i)^2

    where :math:`n` is the number of elements (after broadcasting ``x``
    against ``y``). Its partial derivatives are

    .. math::
        \frac{\partial J}{\partial x_i} = \frac{2}{n} (x_i - y_i), \qquad
        \frac{\partial J}{\partial y_i} = -\frac{2}{n} (x_i - y_i).

    One node instead of the four of ``((x - y) ** 2).mean()``: fewer arrays
    kept alive and fewer steps in the backward pass.

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
        z = np.mean(difference * difference)

        def grad(gz):
            gx = gz * (2 / difference.size) * difference
            return gx, -gx
        self.grad = grad

        return z
