"""The heart of the engine: variables, operations and the backward pass.

A computation is recorded while it runs. Every call of an :class:`Operation`
computes its value with NumPy at once and returns a :class:`Variable` that
remembers the operation that made it; the operation remembers its inputs.
Following those links backwards from a result visits the whole graph
(:func:`topological_order`), and :func:`backprop` walks it in reverse to
compute gradients.

The module reads from top to bottom in the order the book explains it.
The speed machinery (Python's garbage collector on large graphs, and one
fast path) lives in ``autodiff/_speed.py``, which the engine calls at one
named point, ``_speed.apply``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt

from autodiff import _speed
from autodiff._format import format_array, short_repr

__all__ = [
    "ArrayLike",
    "DTypeLike",
    "Variable",
    "Parameter",
    "Input",
    "Operation",
    "ShapeError",
    "IndexingError",
    "no_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "topological_order",
    "backprop",
    "unbroadcast",
]

#: Anything NumPy can turn into an array: numbers, nested lists, arrays.
ArrayLike = npt.ArrayLike

#: Anything NumPy accepts as a dtype: ``np.float32``, ``"float64"``, ...
DTypeLike = npt.DTypeLike

#: The dtype kinds a Variable may hold: bool, signed and unsigned int, float.
#: Complex numbers are refused: see :class:`Variable`.
NUMERIC_KINDS = frozenset("biuf")


# ----------------------------------------------------------------- variables


class Variable:
    """A value in the computation graph, and how it was computed.

    Parameters
    ----------
    value
        The value, stored as a NumPy array; a 0-d array stands for a scalar.
    operation
        The :class:`Operation` whose result this is, or ``None`` for a
        leaf of the graph (see :class:`Parameter` and :class:`Input`).

    Raises
    ------
    TypeError
        If ``value`` is not made of real numbers (bool, int, unsigned or
        float). Complex numbers are refused: the gradient of a real loss
        with respect to a complex variable needs a convention (Wirtinger
        calculus; PyTorch and JAX chose differently) that this book does not
        develop, and some operations, such as :class:`~autodiff.ops.Sigmoid`
        and :class:`~autodiff.ops.ReLU`, would compute nonsense with them.
        Pass the real and imaginary parts as two real variables instead.
    ValueError
        If ``value`` is a nested list whose rows differ in length.

    Examples
    --------
    Operators build the graph for you:

    >>> x = Parameter(3.0)
    >>> y = x * x + 1
    >>> y
    Variable(10.0, <Add>)
    >>> float(y.backprop()[x])
    6.0
    """

    __slots__ = ("value", "operation", "__weakref__")

    # ``ndarray + variable`` would otherwise be evaluated element by element by
    # NumPy. Setting __array_ufunc__ to None tells NumPy to give up, so Python
    # calls Variable.__radd__ and we get a Variable back.
    __array_ufunc__ = None

    def __init__(self, value: ArrayLike, operation: Operation | None = None) -> None:
        if type(value) is not np.ndarray or value.dtype.kind not in NUMERIC_KINDS:
            value = _numeric(value, self, operation)
        self.value: np.ndarray = value
        self.operation = operation

    # -- operators: ``a + b`` means ``Add(a, b)`` -------------------------
    def __add__(self, other: Any) -> Variable:
        return Add(self, other)

    def __radd__(self, other: Any) -> Variable:
        return Add(other, self)

    def __sub__(self, other: Any) -> Variable:
        return Sub(self, other)

    def __rsub__(self, other: Any) -> Variable:
        return Sub(other, self)

    def __mul__(self, other: Any) -> Variable:
        return Mul(self, other)

    def __rmul__(self, other: Any) -> Variable:
        return Mul(other, self)

    def __truediv__(self, other: Any) -> Variable:
        return Div(self, other)

    def __rtruediv__(self, other: Any) -> Variable:
        return Div(other, self)

    def __matmul__(self, other: Any) -> Variable:
        return MatMul(self, other)

    def __rmatmul__(self, other: Any) -> Variable:
        return MatMul(other, self)

    def __pow__(self, other: Any) -> Variable:
        return Pow(self, other)

    def __rpow__(self, other: Any) -> Variable:
        return Pow(other, self)

    def __neg__(self) -> Variable:
        return Neg(self)

    def __pos__(self) -> Variable:
        return self

    def __abs__(self) -> Variable:
        return Abs(self)

    def __getitem__(self, index: Any) -> Variable:
        if isinstance(index, Variable):  # indices are not differentiated
            index = index.value
        return GetItem(self, index=index)

    # Comparisons give plain boolean arrays: a mask has no gradient. ``==``
    # and ``!=`` keep their default meaning (the same object), because
    # variables are dictionary keys.
    def __lt__(self, other: Any) -> np.ndarray:
        return _compare(np.less, "<", self, other)

    def __le__(self, other: Any) -> np.ndarray:
        return _compare(np.less_equal, "<=", self, other)

    def __gt__(self, other: Any) -> np.ndarray:
        return _compare(np.greater, ">", self, other)

    def __ge__(self, other: Any) -> np.ndarray:
        return _compare(np.greater_equal, ">=", self, other)

    __hash__ = object.__hash__

    # -- methods and attributes that NumPy arrays have too -----------------
    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Variable:
        """Sum over ``axis``; see :class:`~autodiff.ops.Sum`."""
        return Sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Variable:
        """Mean over ``axis``; see :class:`~autodiff.ops.Mean`."""
        return Mean(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape: Any) -> Variable:
        """The same values in another shape; see :class:`~autodiff.ops.Reshape`.

        Accepts ``v.reshape(2, 3)`` as well as ``v.reshape((2, 3))``.
        """
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return Reshape(self, shape=shape)

    def transpose(self, *axes: Any) -> Variable:
        """Permute the axes (reverse them by default); see :class:`~autodiff.ops.Transpose`.

        Accepts ``v.transpose(1, 0)``, ``v.transpose((1, 0))`` and, like
        NumPy, ``v.transpose(None)``.
        """
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = () if axes[0] is None else tuple(axes[0])
        return Transpose(self, axes=axes or None)

    def swapaxes(self, first: int, second: int) -> Variable:
        """Exchange two axes, like :meth:`numpy.ndarray.swapaxes`."""
        for axis in (first, second):  # else the list below says 'list index out of range'
            if not isinstance(axis, (int, np.integer)):
                raise TypeError(f"swapaxes: the axes must be integers, but got {axis!r}.")
            if not -self.ndim <= axis < self.ndim:
                raise IndexingError(
                    f"swapaxes: axis {axis} is out of range for a Variable of shape "
                    f"{self.shape}; use {-self.ndim} to {self.ndim - 1}."
                )
        axes = list(range(self.ndim))
        axes[first], axes[second] = axes[second], axes[first]
        return Transpose(self, axes=tuple(axes))

    @property
    def T(self) -> Variable:
        """The transpose (all axes reversed)."""
        return Transpose(self)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``value``."""
        return self.value.shape

    @property
    def ndim(self) -> int:
        """The number of axes of ``value``."""
        return self.value.ndim

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of ``value``."""
        return self.value.dtype

    @property
    def size(self) -> int:
        """The number of elements of ``value``."""
        return self.value.size

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d Variable: a scalar has no length. Use .shape or .size.")
        return len(self.value)

    def __iter__(self) -> Iterator[Variable]:
        # Without it, Python would index 0, 1, ... until an IndexError, and a
        # 0-d variable would iterate as an empty sequence instead of failing.
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d Variable: a scalar has no rows.")
        return (self[i] for i in range(len(self.value)))

    def backprop(self) -> dict[Variable, np.ndarray]:
        """The gradients of this (scalar) variable; see :func:`backprop`."""
        return backprop(self)

    def __repr__(self) -> str:
        text = format_array(self.value)
        if self.operation is not None:
            text += f", {self.operation!r}"
        return f"{type(self).__qualname__}({text})"

    def __bool__(self) -> bool:
        raise TypeError(
            "The truth value of a Variable is ambiguous. "
            "Compare its .value instead, for example `if v.value > 0:`."
        )

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # Without this, NumPy would take a variable for a sequence (it has len
        # and [ ]) and build an array of Python objects, one GetItem each.
        raise TypeError(
            "NumPy cannot use a Variable as an array. Use its .value, an array "
            "through which no gradient flows, or the operations and the functions "
            "of autodiff.ops (ops.where, ops.exp, ...), which take Variables."
        )


def as_numeric_array(value: Any, what: str) -> np.ndarray:
    """``np.asarray(value)``, refusing what is not a real number; ``what`` names the caller."""
    if isinstance(value, Variable):
        raise TypeError(
            f"{what} got a {type(value).__name__} where a value belongs. To start "
            "a new leaf from its current value, pass its .value."
        )
    try:
        array = np.asarray(value)
    except ValueError as error:  # nested lists of unequal lengths, for one
        raise ValueError(
            f"{what} cannot make an array of {type(value).__name__} "
            f"{short_repr(value)}: {error} Nested lists must be rectangular, "
            "with rows of equal length."
        ) from None
    if array.dtype.kind == "c":
        raise TypeError(
            f"{what} got complex numbers ({short_repr(value)}), which autodiff does "
            "not differentiate. Pass the real and imaginary parts as two real "
            "arrays (value.real and value.imag)."
        )
    if array.dtype.kind not in NUMERIC_KINDS:
        raise TypeError(
            f"{what} needs numbers, but got an array of dtype {array.dtype} from "
            f"{type(value).__name__} {short_repr(value)}. Pass numbers or a "
            "numeric NumPy array (bool, int or float)."
        )
    return array


def _numeric(value: Any, variable: Variable, operation: Operation | None) -> np.ndarray:
    """The value of a new variable as a numeric array: a NumPy scalar (the result
    of an operation on 0-d arrays) becomes a 0-d array; errors name the source."""
    if not isinstance(value, Variable):
        try:
            array = np.asarray(value)
        except ValueError:  # a ragged nested list: as_numeric_array says so below
            pass
        else:
            if array.dtype.kind in NUMERIC_KINDS:
                return array
    what = type(variable).__name__ if operation is None else f"{type(operation).__name__}.apply"
    return as_numeric_array(value, what)  # raises, with a message


def _value(x: Any) -> Any:
    return x.value if isinstance(x, Variable) else x


def _compare(comparison: np.ufunc, symbol: str, x: Variable, other: Any) -> np.ndarray:
    """``comparison(x.value, other)``, a boolean array; an error names the comparison."""
    try:
        return np.asarray(comparison(x.value, _value(other)))
    except (TypeError, ValueError) as error:
        kind = TypeError if isinstance(error, TypeError) else ValueError
        raise kind(
            f"Comparing a Variable with {type(other).__name__} ({symbol}): {error}"
        ) from None


class Parameter(Variable):
    """A learnable leaf of the graph: weights, biases, anything we optimise.

    The value is copied, so later updates do not change the caller's array,
    and integers are converted to ``float64``, because a learnable value must
    be able to take a step of any size.

    Examples
    --------
    >>> w = Parameter([1, 2])
    >>> w
    Parameter([1., 2.])
    >>> w.dtype
    dtype('float64')
    """

    def __init__(self, value: ArrayLike) -> None:
        array = as_numeric_array(value, "Parameter")
        if array.dtype.kind in "biu":
            array = array.astype(np.float64)
        super().__init__(np.array(array))


class Input(Variable):
    """A leaf of the graph that is not learned: data, labels, constants.

    Numbers and arrays passed to an operation are wrapped in ``Input``
    automatically.

    Examples
    --------
    >>> x = Input([1.0, 2.0])
    >>> (x * 3).value
    array([3., 6.])
    """


# ---------------------------------------------------------------- operations


class ShapeError(ValueError):
    """An operation cannot combine inputs of these shapes.

    The message names the operation, the shapes it got and what it expected.

    Examples
    --------
    >>> Parameter([1.0, 2.0]) + Parameter([1.0, 2.0, 3.0])
    Traceback (most recent call last):
    ...
    autodiff.core.ShapeError: Add cannot combine inputs of shapes (2,) and (3,): ...
    """


class IndexingError(IndexError, ValueError):
    """An index or axis does not fit the variable it is applied to.

    It is an :class:`IndexError`, as Python and NumPy raise for a bad index,
    so ``except IndexError`` works as it does for arrays; and a
    :class:`ValueError`, like every other mistake in an operation's
    arguments (NumPy's ``AxisError`` is both, too). The message names the
    operation.

    Examples
    --------
    >>> Parameter([1.0, 2.0])[5]
    Traceback (most recent call last):
    ...
    autodiff.core.IndexingError: GetItem: index 5 is out of bounds for axis 0 with size 2
    """


class Operation:
    """Base class of every operation of the graph.

    Calling an operation class runs it: ``Add(x, y)`` computes ``x + y`` at
    once and returns a :class:`Variable`, not an ``Add`` instance. The
    variable's ``operation`` is the ``Add`` instance, which keeps its inputs
    in ``args`` and its backward rule in ``grad``.

    A subclass implements :meth:`apply`. It receives the inputs' values as
    NumPy arrays, returns the output value, and assigns ``self.grad``: a
    closure that takes the gradient of the output and returns one gradient
    per positional input (the vector-Jacobian product). For gradients of
    gradients, ``backprop(..., create_graph=True)`` runs ``apply`` once more
    on the input variables themselves; an ``apply`` written with operators
    and the functions of :mod:`autodiff.ops` works on both.

    Positional arguments are differentiable. Numbers and arrays among them
    are wrapped in :class:`Input`. Keyword arguments are settings, such as an
    axis, and are passed to :meth:`apply` unchanged; they must not be
    variables.

    Examples
    --------
    >>> class Square(Operation):
    ...     def apply(self, x):
    ...         def grad(gz):
    ...             return gz * 2 * x,
    ...         self.grad = grad
    ...         return x * x
    >>> y = Square(Parameter(3.0))
    >>> y
    Variable(9.0, <Square>)
    >>> [float(g) for g in y.operation.grad(np.array(1.0))]
    [6.0]
    """

    args: tuple[Variable, ...]
    kwargs: dict[str, Any]

    #: Operations whose ``grad(gz, needed)`` takes a second argument set this
    #: to True. ``needed`` holds one boolean per input, True where a gradient
    #: is wanted, so that costly gradients nobody asked for can be skipped;
    #: ``grad`` may return ``None`` for those. Skipping the gradient of the
    #: images in the first layer makes an MNIST epoch of bench_mnist.py 31 %
    #: faster (0.66 against 0.96 s, measured in one run taking turns).
    grad_takes_needed: bool = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Variable:  # type: ignore[misc]
        if kwargs:
            _check_settings(cls, kwargs)
        operation = object.__new__(cls)  # cls(...) would call __new__ again
        operation.args = _as_variables(cls, args)  # the inputs, the graph's edges
        operation.kwargs = kwargs
        try:
            # operation.apply(*[x.value for x in operation.args], **kwargs): it
            # computes the value from the inputs' arrays and defines the
            # backward rule, operation.grad.
            value = _speed.apply(operation, operation.args, kwargs)
        except (TypeError, ValueError, IndexError) as error:
            raise _explained(error, operation)
        if not _grad_mode.enabled:  # inside `with no_grad():`
            return Variable(value)
        # The caller gets a Variable, not the operation: since it is not an
        # instance of cls, Python does not call __init__ on it.
        return Variable(value, operation)

    def apply(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the output value and define ``self.grad``."""
        raise NotImplementedError(
            f"{type(self).__name__} has no apply method. Implement "
            f"{type(self).__name__}.apply: compute the output with NumPy and "
            "assign the grad closure to self.grad."
        )

    def grad(self, gz: Any) -> tuple[Any, ...]:
        """Return the gradients of the inputs, given the output's gradient.

        ``apply`` replaces this method with a closure, so this one only runs
        when ``apply`` forgot to do that.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no grad. Inside "
            f"{type(self).__name__}.apply, define `def grad(gz): ...` and "
            "assign it with `self.grad = grad` before returning."
        )

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__}>"


def _check_settings(operation: type, settings: dict[str, Any]) -> None:
    """Refuse variables among keyword arguments: those are not differentiated."""
    for key, value in settings.items():
        if isinstance(value, Variable):
            raise TypeError(
                f"{operation.__name__}: the keyword argument {key}= is a Variable, "
                "but keyword arguments are settings and are not differentiated. "
                "Pass it as a positional argument, or pass its .value if it "
                "really is a constant."
            )


def _as_variables(operation: type, args: tuple[Any, ...]) -> tuple[Variable, ...]:
    """The positional arguments as variables: numbers and arrays become Inputs."""
    for x in args:
        if not isinstance(x, Variable):
            break
    else:
        return args  # the usual case: checked with a loop, which is faster than all()
    # A Python number takes the dtype of a floating-point input, so that
    # ``x * 0.5`` keeps a float32 ``x`` in float32, as NumPy does.
    dtype = None
    for x in args:
        if isinstance(x, Variable) and x.value.dtype.kind == "f":
            dtype = x.value.dtype
            break
    inputs = []
    for x in args:
        if not isinstance(x, Variable):
            if type(x) is float or type(x) is int:
                x = np.asarray(x, dtype=dtype)
            try:
                x = Input(x)
            except (TypeError, ValueError) as error:
                raise type(error)(f"{operation.__name__}: {error}") from None
        inputs.append(x)
    return tuple(inputs)


def _explained(error: Exception, operation: Operation) -> Exception:
    """The error to raise for ``error`` from ``operation.apply``: one that names
    the operation, and says which shapes do not broadcast if that was the cause.

    The operations' own errors name them already. NumPy's do not: its message
    gets the operation's name in front, as a TypeError, a ValueError or, for
    an index or axis out of range, an :class:`IndexingError`.
    """
    name = type(operation).__name__
    if name in str(error):
        return error  # the operation's own message, which says what it checked
    if isinstance(error, ValueError) and not isinstance(error, ShapeError):
        shapes = [x.shape for x in operation.args]
        try:
            np.broadcast_shapes(*shapes)
        except ValueError:
            explained: Exception = ShapeError(
                f"{name} cannot combine inputs of shapes "
                f"{' and '.join(map(str, shapes))}: they do not broadcast. Shapes broadcast "
                "when, compared from the last axis, each pair of lengths is equal or "
                "one of them is 1. Reshape an input, or add an axis with x.reshape(...)."
            )
            explained.__cause__ = error
            return explained
    if isinstance(error, ShapeError):  # the package's own, raised by a helper
        explained = ShapeError(f"{name}: {error}")
    elif isinstance(error, IndexError):  # NumPy's AxisError is one too
        explained = IndexingError(f"{name}: {error}")
    elif isinstance(error, TypeError):
        hint = ""
        if any(x.dtype.kind == "b" for x in operation.args):  # NumPy refuses -mask
            hint = " An input is boolean: convert it to numbers first, for example mask.astype(np.float64)."
        explained = TypeError(f"{name}: {error}{hint}")
    else:
        explained = ValueError(f"{name}: {error}")
    explained.__cause__ = error
    return explained


class _GradMode(threading.local):
    """Whether operations are recorded; each thread has its own setting."""

    enabled = True


_grad_mode = _GradMode()


@contextmanager
def set_grad_enabled(enabled: bool) -> Iterator[None]:
    """Record operations inside the block if ``enabled``, and not otherwise.

    The setting belongs to the thread that enters the block: a thread that
    makes predictions does not stop another one from training. The previous
    setting returns when the block ends, however it ends. PyTorch has the
    same function.

    Examples
    --------
    >>> training = False
    >>> with set_grad_enabled(training):
    ...     y = Parameter(2.0) * 3.0
    >>> y.operation is None
    True
    """
    previous = _grad_mode.enabled
    _grad_mode.enabled = enabled
    try:
        yield
    finally:
        _grad_mode.enabled = previous


def no_grad() -> AbstractContextManager[None]:
    """Compute values without recording a graph: ``set_grad_enabled(False)``.

    Inside the block, an operation returns a :class:`Variable` with no
    operation: no link to its inputs, and no ``grad`` closure keeping arrays
    alive. Use it where no gradient will be taken, such as predictions and
    evaluation; the memory of each batch is freed as soon as the batch is
    done.

    Examples
    --------
    >>> w = Parameter([1.0, 2.0])
    >>> with no_grad():
    ...     y = (w * w).sum()
    >>> y, y.operation
    (Variable(5.0), None)
    """
    return set_grad_enabled(False)


def is_grad_enabled() -> bool:
    """Whether operations are recorded: False inside ``with no_grad():``.

    Examples
    --------
    >>> with no_grad():
    ...     print(is_grad_enabled())
    False
    """
    return _grad_mode.enabled


# ---------------------------------------------------------- the backward pass


def topological_order(variable: Variable) -> list[Variable]:
    """Every variable that ``variable`` depends on, inputs before outputs.

    The order is a depth-first post-order: the inputs of an operation are
    visited one after the other, each with everything it depends on, and a
    variable is appended once all its inputs are. Each variable appears once,
    however often it is used. The walk keeps its own stack instead of
    recursing, so a graph of a million nested operations is no problem, and
    a set makes the "seen already?" test constant time, so the whole walk is
    linear in the size of the graph. (The exercise calls this function
    ``get_variables``.)

    Parameters
    ----------
    variable
        The output of the graph, usually the loss.

    Returns
    -------
    list of Variable
        The variables in execution order; ``variable`` is the last one.

    Examples
    --------
    >>> x = Parameter(2.0)
    >>> y = x * x + x
    >>> [repr(v) for v in topological_order(y)]
    ['Parameter(2.0)', 'Variable(4.0, <Mul>)', 'Variable(6.0, <Add>)']
    """
    if not isinstance(variable, Variable):
        raise TypeError(
            f"topological_order expects a Variable, but got "
            f"{type(variable).__name__} {short_repr(variable)}."
        )
    order = []
    seen = {variable}
    # Each stack entry is a variable and an iterator over the inputs that are
    # still to be visited: the loop of the recursive version, paused.
    stack = [(variable, iter(variable.operation.args if variable.operation else ()))]
    while stack:
        node, inputs = stack[-1]
        for x in inputs:
            if x not in seen:
                seen.add(x)
                stack.append((x, iter(x.operation.args if x.operation else ())))
                break
        else:  # every input of node is in order: node can follow
            stack.pop()
            order.append(node)
    return order


#: The name the original exercise uses for :func:`topological_order`.
get_variables = topological_order


def backprop(
    loss: Variable,
    variables: Iterable[Variable] | None = None,
    *,
    create_graph: bool = False,
    output_gradient: Any = None,
) -> dict[Variable, Any]:
    r"""Reverse-mode differentiation: the gradient of ``loss`` for every variable.

    The variables are visited in reverse topological order, so a variable's
    gradient is complete (every use has contributed) before its operation's
    ``grad`` passes it on to the inputs. A variable used several times
    receives the sum of the gradients of its uses, the multivariable chain
    rule:

    .. math:: \frac{\partial J}{\partial x} = \sum_i
              \frac{\partial J}{\partial z_i} \frac{\partial z_i}{\partial x}.

    Nothing is stored on the variables, so calling ``backprop`` twice gives
    the same result. The gradients are not copied: two entries may share one
    array, and some are read-only broadcast views, so copy a gradient before
    changing it in place (``g = g.copy()``).

    Parameters
    ----------
    loss
        A scalar variable (shape ``()``), or any variable together with
        ``output_gradient``.
    variables
        Optional. If given, only the gradients of these variables are
        returned, and every other gradient is dropped as soon as it has been
        passed on. That keeps peak memory close to that of the forward pass,
        and saves the work of gradients nobody asked for, such as those of
        the input data.
    create_graph
        If True, the gradients are :class:`Variable` objects, computed by
        recorded operations, so that they can be differentiated again
        (gradients of gradients). Each operation's ``apply`` then runs a
        second time, on the input variables instead of their arrays, which
        records the forward computation and the backward rule as a graph.
    output_gradient
        The gradient to start from, an array of ``loss``'s shape; by default
        1. With it, ``backprop`` computes the vector-Jacobian product of a
        non-scalar ``loss`` (PyTorch's ``backward(gradient)``).

    Returns
    -------
    dict
        A new dictionary from each variable to its gradient, an array (or,
        with ``create_graph``, a Variable) of the variable's shape. The
        gradient of a 0-d variable that is used more than once may be a
        NumPy scalar such as ``np.float64``, since NumPy adds two 0-d arrays
        to a scalar; it behaves as a read-only 0-d array.

    Raises
    ------
    ValueError
        If ``loss`` is not a scalar, or an operation's ``grad`` returns a
        gradient whose shape does not fit its input.
    TypeError
        If an operation's ``grad`` returns something other than a tuple with
        one gradient per input.

    Examples
    --------
    >>> x = Parameter(7.0)
    >>> gamma = Parameter(5.0)
    >>> J = x * gamma + x
    >>> gradients = backprop(J)
    >>> float(gradients[x]), float(gradients[gamma])
    (6.0, 7.0)

    The derivative of :math:`x^3` is :math:`3x^2`, and its derivative :math:`6x`:

    >>> x = Parameter(2.0)
    >>> dx = backprop(x ** 3, [x], create_graph=True)[x]
    >>> dx
    Variable(12.0, <Mul>)
    >>> float(backprop(dx, [x])[x])
    12.0
    """
    seed = _seed(loss, output_gradient, create_graph)
    # Gradients of gradients are recorded, even inside no_grad (as in PyTorch).
    with set_grad_enabled(create_graph):
        order = topological_order(loss)
        needed = kept = None  # None: every variable (unless variables= says otherwise)
        if variables is not None:
            variables = _check_variables(variables)
            order = _depending_on(variables, order)
            needed, kept = set(order), set(variables)
        gradients: dict[Variable, Any] = {loss: seed}
        for variable in reversed(order):
            operation = variable.operation
            if operation is None:
                continue  # a leaf: there is nothing to pass its gradient on to
            # Every use of variable has added its share: its gradient is complete.
            if kept is None or variable in kept:
                gz = gradients[variable]
            else:
                gz = gradients.pop(variable)  # passed on below, and not asked for
            if create_graph:
                operation = _rerun_on_variables(operation)
            inputs = operation.args
            if operation.grad_takes_needed:  # then grad may skip what nobody needs
                flags = [needed is None or x in needed for x in inputs]
                input_gradients = operation.grad(gz, flags)  # type: ignore[call-arg]
            else:
                input_gradients = operation.grad(gz)
            if type(input_gradients) is not tuple or len(input_gradients) != len(inputs):
                raise _bad_count(operation, input_gradients)
            for x, gx in zip(inputs, input_gradients):
                if needed is None or x in needed:
                    if type(gx) is not np.ndarray or gx.shape != x.value.shape:
                        gx = _fit(operation, x, gx)  # undo broadcasting; check
                    gradients[x] = gradients[x] + gx if x in gradients else gx
    if variables is None:
        return gradients
    return {v: gradients[v] if v in gradients else _zero(v, seed) for v in variables}


def _seed(loss: Variable, output_gradient: Any, create_graph: bool) -> Any:
    """The gradient of the loss itself: dJ/dJ = 1, or ``output_gradient``."""
    if not isinstance(loss, Variable):
        raise TypeError(f"backprop expects a Variable, but got {type(loss).__name__}.")
    dtype = loss.dtype if loss.dtype.kind == "f" else np.dtype(np.float64)
    if output_gradient is None:
        if loss.shape != ():
            raise ValueError(
                f"backprop needs a scalar loss, but the loss has shape {loss.shape}. "
                "Reduce it first, for example with loss.sum() or loss.mean(), or "
                "pass output_gradient= for a vector-Jacobian product."
            )
        seed = np.ones((), dtype)
    else:
        seed = as_numeric_array(_value(output_gradient), "backprop: output_gradient")
        seed = seed.astype(dtype, copy=False)
        if seed.shape != loss.shape:
            raise ShapeError(
                f"backprop: output_gradient has shape {seed.shape}, but the output "
                f"has shape {loss.shape}; they must be equal."
            )
    return Input(seed) if create_graph else seed


def _zero(variable: Variable, seed: Any) -> Any:
    """The gradient of a variable the loss does not depend on."""
    zero = np.zeros(variable.shape, _value(seed).dtype)
    return Input(zero) if isinstance(seed, Variable) else zero


def _check_variables(variables: Any) -> list[Variable]:
    # A single Variable is iterable too (over its rows): refuse it here.
    if isinstance(variables, Variable) or not isinstance(variables, Iterable):
        raise TypeError(
            f"backprop: variables must be a list of Variables, but got "
            f"{type(variables).__name__} {short_repr(variables)}. For a single "
            "variable x, pass variables=[x]."
        )
    requested = list(variables)
    for item in requested:
        if not isinstance(item, Variable):
            raise TypeError(
                f"backprop: variables must be Variables, but it contains a "
                f"{type(item).__name__}. Pass a list of Parameters, such as "
                "model.parameters() or optimizer.parameters."
            )
    return requested


def _depending_on(variables: list[Variable], order: list[Variable]) -> list[Variable]:
    """The part of ``order`` that depends on one of ``variables``.

    Only these variables carry a gradient that reaches one of ``variables``;
    the others (the input data, constants) need no backward pass at all. One
    pass from the leaves to the loss marks them.
    """
    marked = set(variables)
    for variable in order:
        operation = variable.operation
        if operation is not None and not marked.isdisjoint(operation.args):
            marked.add(variable)
    return [variable for variable in order if variable in marked]


def _rerun_on_variables(operation: Operation) -> Operation:
    """A copy of ``operation`` whose ``grad`` computes with recorded operations."""
    # A second instance of the operation, so that the graph's own keeps its grad.
    rerun = object.__new__(type(operation))
    rerun.args, rerun.kwargs = operation.args, operation.kwargs
    try:
        rerun.apply(*operation.args, **operation.kwargs)
    except (TypeError, AttributeError) as error:
        raise _not_on_variables(operation, "apply", error) from error
    grad = rerun.grad

    def recorded_grad(*arguments: Any) -> Any:
        try:
            return grad(*arguments)
        except (TypeError, AttributeError) as error:
            raise _not_on_variables(operation, "grad", error) from error

    rerun.grad = recorded_grad  # type: ignore[method-assign, assignment]
    return rerun


def _not_on_variables(operation: Operation, method: str, error: Exception) -> TypeError:
    return TypeError(
        f"{type(operation).__name__}.{method} cannot run on Variables ({error}), which "
        "create_graph=True needs. Write apply and grad with operators, Variable methods "
        "and the functions of autodiff.ops (ops.exp instead of np.exp, ops.where "
        "instead of np.where, ...), which take arrays and Variables alike."
    )


def _fit(operation: Operation, x: Variable, gradient: Any) -> Any:
    """Check one gradient returned by ``operation.grad`` and bring it to ``x``'s shape."""
    if not isinstance(gradient, Variable):
        gradient = np.asarray(gradient)  # NumPy scalars such as np.float64, lists
        if gradient.dtype.kind not in NUMERIC_KINDS:
            raise _bad_gradient(operation, x, gradient)
    shape = x.value.shape
    if gradient.shape == shape:
        return gradient
    try:
        return unbroadcast(gradient, shape)
    except ValueError:
        raise _bad_gradient(operation, x, gradient) from None


def _bad_gradient(operation: Operation, x: Variable, gradient: Any) -> Exception:
    name = type(operation).__name__
    position = [a is x for a in operation.args].index(True)
    if gradient.dtype == object and gradient.shape == () and gradient.item() is None:
        return TypeError(
            f"{name}.grad returned None for input {position}, which needs a gradient. "
            "Return an array of the input's shape (zeros if it has no effect)."
        )
    if gradient.dtype.kind not in NUMERIC_KINDS:
        return TypeError(
            f"{name}.grad returned a gradient of dtype {gradient.dtype} for input "
            f"{position}; gradients must be numeric arrays."
        )
    return ShapeError(
        f"{name}.grad returned a gradient of shape {gradient.shape} for input "
        f"{position}, which has shape {x.shape}. A gradient must have its input's "
        "shape, or a shape the input was broadcast to in the forward pass."
    )


def _bad_count(operation: Operation, result: Any) -> TypeError:
    name = type(operation).__name__
    expected = len(operation.args)
    if type(result) is not tuple:
        return TypeError(
            f"{name}.grad returned an object of type {type(result).__name__}, "
            f"but it must return a tuple with one gradient per input "
            f"({expected}). Did you forget the trailing comma in `return gx,`?"
        )
    return TypeError(
        f"{name}.grad returned {len(result)} gradients, but {name} has "
        f"{expected} positional input(s); return exactly one gradient per "
        "input, in the order of the arguments."
    )


def unbroadcast(gradient: Any, shape: tuple[int, ...]) -> Any:
    """Bring a gradient back to the shape of its input by undoing broadcasting.

    When an input of shape ``shape`` was broadcast to a larger shape in the
    forward pass, each of its elements was used several times. The gradient
    of each use arrives separately, so the gradient of the input is their
    sum: over the leading axes that broadcasting prepended, and over the axes
    where ``shape`` has length 1. A gradient that is smaller than ``shape``
    (a scalar for a vector, say) is broadcast up to it. Works on arrays and,
    for gradients of gradients, on Variables.

    Parameters
    ----------
    gradient
        The gradient with respect to the broadcast input.
    shape
        The shape of the input before broadcasting.

    Returns
    -------
    numpy.ndarray or Variable
        Of exactly ``shape``.

    Raises
    ------
    ValueError
        If ``gradient`` cannot have come from broadcasting ``shape``.

    Examples
    --------
    >>> unbroadcast(np.ones((3, 2)), (2,))
    array([3., 3.])
    >>> unbroadcast(np.ones((3, 2)), (3, 1))
    array([[2.],
           [2.],
           [2.]])
    """
    if not isinstance(gradient, Variable):
        gradient = np.asarray(gradient)
    if gradient.shape == shape:
        return gradient
    extra = gradient.ndim - len(shape)
    if extra > 0:  # axes that broadcasting put in front of the input's own
        gradient = gradient.sum(axis=tuple(range(extra)))
    offset = len(shape) - gradient.ndim
    stretched = tuple(
        axis
        for axis, length in enumerate(gradient.shape)
        if length != 1 and shape[offset + axis] == 1
    )
    if stretched:
        gradient = gradient.sum(axis=stretched, keepdims=True)
    if gradient.shape != shape:
        try:
            np.broadcast_shapes(gradient.shape, shape)
        except ValueError:
            raise ValueError(
                f"a gradient of shape {gradient.shape} cannot belong to an "
                f"input of shape {shape}"
            ) from None
        gradient = broadcast_to(gradient, shape)
    # A sum over all axes of an array gives a NumPy scalar: make it an array.
    return gradient if isinstance(gradient, Variable) else np.asarray(gradient)


# Variable's operators create operations, and operations create variables:
# the two modules need each other. autodiff.ops imports this module first,
# and these names are bound once it has defined them.
from autodiff.ops import (  # noqa: E402
    Abs,
    Add,
    Div,
    GetItem,
    MatMul,
    Mean,
    Mul,
    Neg,
    Pow,
    Reshape,
    Sub,
    Sum,
    Transpose,
    broadcast_to,
)
