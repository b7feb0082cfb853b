"""The heart of the engine: variables, operations and the backward pass.

A computation is recorded while it runs. Every call of an
:class:`Operation` computes its value with NumPy at once and returns a
:class:`Variable` that remembers the operation that made it; the operation
remembers its inputs. Following those links backwards from a result visits
the whole graph, which is what :func:`backprop` does.
"""

from __future__ import annotations

import gc
import operator
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "ArrayLike",
    "DTypeLike",
    "Variable",
    "Parameter",
    "Input",
    "Operation",
    "unbroadcast",
    "topological_order",
    "get_variables",
    "backprop",
]

#: Anything NumPy can turn into an array: numbers, nested lists, arrays.
ArrayLike = npt.ArrayLike

#: Anything NumPy accepts as a dtype: ``np.float32``, ``"float64"``, ...
DTypeLike = npt.DTypeLike

# dtype kinds a Variable may hold: bool, signed/unsigned int, float, complex.
_NUMERIC_KINDS = frozenset("biufc")

#: ``_value_of(v)`` is ``v.value``, as a C function, without a Python call.
_value_of = operator.attrgetter("value")


def _as_numeric_array(value: Any, what: str) -> np.ndarray:
    """Return ``value`` as an ndarray, refusing strings and Python objects."""
    if isinstance(value, Variable):
        raise TypeError(
            f"{what} got a {type(value).__name__}, not a value. To start a new "
            "leaf from its current value, pass its .value."
        )
    array = np.asarray(value)
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"{what} must be numeric, but got an array of dtype "
            f"{array.dtype} from {type(value).__name__} {_short(value)}. "
            "Pass numbers or a numeric NumPy array (bool, int, float or complex)."
        )
    return array


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _format_array(array: np.ndarray, digits: int | None = None) -> str:
    """Print small arrays in full, large ones as their shape and dtype.

    With ``digits``, floats are rounded to that many significant digits.
    """
    if array.size >= 20:
        return f"array(shape={array.shape}, dtype={array.dtype})"
    if array.ndim == 0:
        value = array.item()
        if digits is None or not isinstance(value, float):
            return str(value)
        if value.is_integer() and abs(value) < 1e6:
            return f"{value:.1f}"
        return f"{value:.{digits}g}"
    return np.array2string(
        array, separator=", ", precision=digits, suppress_small=digits is not None
    )


class Variable:
    """A value in the computation graph, and how it was computed.

    Parameters
    ----------
    value
        The value. It is stored as a NumPy array (``np.asarray``); a
        0-d array stands for a scalar.
    operation
        The :class:`Operation` whose result this is, or ``None`` for a
        leaf of the graph (see :class:`Parameter` and :class:`Input`).

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
        self.value: np.ndarray = _as_numeric_array(value, type(self).__name__)
        self.operation = operation

    # -- NumPy-like attributes -------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of ``value``."""
        return self.value.shape

    @property
    def ndim(self) -> int:
        """The number of dimensions of ``value``."""
        return self.value.ndim

    @property
    def dtype(self) -> np.dtype[Any]:
        """The dtype of ``value``."""
        return self.value.dtype

    @property
    def size(self) -> int:
        """The number of elements of ``value``."""
        return self.value.size

    def backprop(self) -> dict[Variable, np.ndarray]:
        """Gradients of this (scalar) variable; see :func:`backprop`."""
        return backprop(self)

    # -- operators: ``a + b`` means ``Add(a, b)`` -------------------------
    # The operations live in autodiff.ops, which imports this module; it is
    # imported at the end of this file, so the names resolve at call time.
    def __add__(self, other: Any) -> Variable:
        return _operations.Add(self, other)

    def __radd__(self, other: Any) -> Variable:
        return _operations.Add(other, self)

    def __sub__(self, other: Any) -> Variable:
        return _operations.Sub(self, other)

    def __rsub__(self, other: Any) -> Variable:
        return _operations.Sub(other, self)

    def __mul__(self, other: Any) -> Variable:
        return _operations.Mul(self, other)

    def __rmul__(self, other: Any) -> Variable:
        return _operations.Mul(other, self)

    def __truediv__(self, other: Any) -> Variable:
        return _operations.Div(self, other)

    def __rtruediv__(self, other: Any) -> Variable:
        return _operations.Div(other, self)

    def __matmul__(self, other: Any) -> Variable:
        return _operations.MatMul(self, other)

    def __rmatmul__(self, other: Any) -> Variable:
        return _operations.MatMul(other, self)

    def __pow__(self, other: Any) -> Variable:
        return _operations.Pow(self, other)

    def __rpow__(self, other: Any) -> Variable:
        return _operations.Pow(other, self)

    def __neg__(self) -> Variable:
        return _operations.Neg(self)

    def __pos__(self) -> Variable:
        return self

    def __getitem__(self, index: Any) -> Variable:
        if isinstance(index, Variable):  # indices are not differentiated
            index = index.value
        return _operations.GetItem(self, index=index)

    def sum(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Variable:
        """Sum over ``axis``; see :class:`~autodiff.ops.Sum`."""
        return _operations.Sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | tuple[int, ...] | None = None, keepdims: bool = False) -> Variable:
        """Mean over ``axis``; see :class:`~autodiff.ops.Mean`."""
        return _operations.Mean(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape: Any) -> Variable:
        """A view with another shape; see :class:`~autodiff.ops.Reshape`.

        Accepts ``v.reshape(2, 3)`` as well as ``v.reshape((2, 3))``.
        """
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _operations.Reshape(self, shape=shape)

    @property
    def T(self) -> Variable:
        """The transpose (all axes reversed); see :class:`~autodiff.ops.Transpose`."""
        return _operations.Transpose(self)

    def __len__(self) -> int:
        return len(self.value)

    def __repr__(self) -> str:
        text = _format_array(self.value)
        if self.operation is not None:
            text += f", {self.operation!r}"
        return f"{type(self).__qualname__}({text})"

    # Variables are graph nodes and dictionary keys: they compare by identity.
    # ``a == b`` keeps object identity semantics, ``bool(v)`` is ambiguous.
    def __bool__(self) -> bool:
        raise TypeError(
            "The truth value of a Variable is ambiguous. "
            "Compare its .value instead, for example `if v.value > 0:`."
        )

    __hash__ = object.__hash__


class Parameter(Variable):
    """A learnable leaf of the graph: weights, biases, anything we optimise.

    The value is copied, so later updates do not change the caller's array,
    and integers are converted to ``float64`` because a learnable value must
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
        array = _as_numeric_array(value, "Parameter")
        if array.dtype.kind in "biu":
            array = array.astype(np.float64)
        super().__init__(np.array(array), operation=None)


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

    def __init__(self, value: ArrayLike) -> None:
        super().__init__(value, operation=None)




class Operation:
    """Base class of every operation of the graph.

    Calling an operation class runs it: ``Add(x, y)`` computes ``x + y`` at
    once and returns a :class:`Variable`, not an ``Add`` instance. The
    variable's ``operation`` is the ``Add`` instance, which keeps
    its inputs in ``args`` and its backward rule in ``grad``.

    A subclass implements :meth:`apply`. It receives the inputs' values as
    NumPy arrays, returns the output value, and assigns ``self.grad``: a
    closure that takes the gradient of the output and returns one gradient
    per positional input (the vector-Jacobian product).

    Positional arguments are differentiable. Numbers and arrays among them are
    wrapped in :class:`Input`. Keyword arguments are settings, such as an
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

    #: Set to True by operations whose ``grad(gz, needed)`` takes a second
    #: argument: a tuple of booleans saying which inputs need a gradient, so
    #: that costly ones (the matrix products of MatMul) can be skipped.
    #: Gradients for inputs that are not needed may then be ``None``.
    grad_takes_needed: bool = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Variable:  # type: ignore[misc]
        if kwargs:
            _check_settings(cls, kwargs)
        # The positional arguments are the inputs: numbers and arrays become
        # Input leaves, so that every input is a node of the graph.
        inputs = args
        for argument in args:
            if not isinstance(argument, Variable):
                inputs = _wrap_constants(cls, args)
                break
        operation = object.__new__(cls)  # cls(...) would call __new__ again
        operation.args = inputs
        operation.kwargs = kwargs
        global _recorded
        _recorded += 1
        if _recorded == _LARGE_GRAPH:  # see "the cyclic garbage collector" below
            _defer_full_collections()
        try:
            # apply computes the value from the inputs' arrays and sets
            # self.grad. (Most operations have two inputs and no settings;
            # calling apply with their values directly is the fastest.)
            if len(inputs) == 2 and not kwargs:
                value = operation.apply(inputs[0].value, inputs[1].value)
            else:
                value = operation.apply(*map(_value_of, inputs), **kwargs)
        except ValueError as error:
            if "could not be broadcast together" not in str(error):
                raise
            raise _broadcast_error(cls, inputs) from error
        # 0-d results come back as NumPy scalars such as np.float64: make
        # every value an array, and refuse what is not a number.
        array = value if type(value) is np.ndarray else np.asarray(value)
        if array.dtype.kind not in _NUMERIC_KINDS:
            raise _not_numeric_error(cls, value, array)
        # The caller gets a Variable, not the operation: since it is not an
        # instance of cls, Python does not call __init__ on it.
        variable = Variable.__new__(Variable)
        variable.value = array
        variable.operation = operation
        return variable

    def apply(self, *args: Any, **kwargs: Any) -> Any:
        """Compute the output value and define ``self.grad``."""
        raise NotImplementedError(
            f"{type(self).__name__} has no apply method. Implement "
            f"{type(self).__name__}.apply: compute the output with NumPy and "
            "assign the grad closure to self.grad."
        )

    def grad(self, gz: np.ndarray) -> tuple[Any, ...]:
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


def _wrap_constants(operation: type, args: tuple[Any, ...]) -> tuple[Variable, ...]:
    """Wrap the numbers and arrays among ``args`` in :class:`Input` leaves."""
    # A Python number takes the dtype of a floating-point input, so that
    # ``x * 0.5`` keeps a float32 ``x`` in float32, as in NumPy.
    dtype = None
    for argument in args:
        if isinstance(argument, Variable) and argument.value.dtype.kind in "fc":
            dtype = argument.value.dtype
            break
    inputs = []
    for argument in args:
        if isinstance(argument, Variable):
            inputs.append(argument)
        elif type(argument) is float or type(argument) is int:
            inputs.append(_constant(np.asarray(argument, dtype=dtype)))
        elif type(argument) is np.ndarray and argument.dtype.kind in _NUMERIC_KINDS:
            inputs.append(_constant(argument))  # such as a batch of images
        else:
            try:
                inputs.append(Input(argument))
            except TypeError as error:
                raise TypeError(f"{operation.__name__}: {error}") from None
    return tuple(inputs)


def _constant(array: np.ndarray) -> Input:
    """An :class:`Input` leaf for a numeric array, without Input's checks."""
    constant = Input.__new__(Input)
    constant.value = array
    constant.operation = None
    return constant


def _broadcast_error(operation: type, inputs: tuple[Variable, ...]) -> ValueError:
    shapes = " and ".join(str(v.value.shape) for v in inputs)
    return ValueError(
        f"{operation.__name__} cannot combine inputs of shapes {shapes}: they "
        "do not broadcast. Shapes broadcast when, compared from the "
        "last axis, each pair of lengths is equal or one of them is 1. "
        "Reshape an input, or add an axis with x.reshape(...)."
    )


def _not_numeric_error(operation: type, value: Any, array: np.ndarray) -> TypeError:
    return TypeError(
        f"{operation.__name__}.apply returned a value of dtype {array.dtype} "
        f"({type(value).__name__}); an operation must return a numeric "
        "NumPy array. Check that apply returns the computed array and "
        "that its inputs are numeric."
    )


def unbroadcast(gradient: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Bring a gradient back to the shape of its input by undoing broadcasting.

    When an input of shape ``shape`` was broadcast to a larger shape in the
    forward pass, each of its elements was used several times. The gradient
    of each use arrives separately, so the gradient of the input is their
    sum: over the leading axes that broadcasting prepended, and over the axes
    where ``shape`` has length 1. A gradient that is smaller than ``shape``
    (a scalar for a vector, say) is broadcast up to it.

    Parameters
    ----------
    gradient
        The gradient with respect to the broadcast input.
    shape
        The shape of the input before broadcasting.

    Returns
    -------
    numpy.ndarray
        An array of exactly ``shape``.

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
    array: np.ndarray = np.asarray(gradient)
    if array.shape == shape:
        return array
    extra = array.ndim - len(shape)
    if extra > 0:
        # Axes that broadcasting put in front of the input's own axes.
        array = np.asarray(array.sum(axis=tuple(range(extra))))
    offset = len(shape) - array.ndim
    stretched = tuple(
        axis
        for axis, length in enumerate(array.shape)
        if length != 1 and shape[offset + axis] == 1
    )
    if stretched:
        array = np.asarray(array.sum(axis=stretched, keepdims=True))
    if array.shape != shape:
        try:
            array = np.broadcast_to(array, shape)
        except ValueError:
            raise ValueError(
                f"a gradient of shape {array.shape} cannot belong to an "
                f"input of shape {shape}"
            ) from None
    return array


def topological_order(variable: Variable) -> list[Variable]:
    """Every variable that ``variable`` depends on, inputs before outputs.

    The order is a depth-first post-order: the inputs of an operation are
    visited one after the other, each with everything it depends on, and a
    variable is appended once all its inputs are. Each variable appears once,
    however often it is used. The walk keeps its own stack instead of
    recursing, so a graph of a million nested operations is no problem, and
    a set makes the "seen already?" test constant time, so the whole walk is
    linear in the size of the graph.

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
            f"{type(variable).__name__} {_short(variable)}."
        )
    with _CollectorPaused():
        return _depth_first_order(variable)


def _depth_first_order(variable: Variable) -> list[Variable]:
    """The walk of :func:`topological_order`, without its check and pause."""
    order: list[Variable] = []
    seen = {variable}
    # Each stack entry is a variable and an iterator over the inputs that
    # are still to be visited: the loop of the recursive version, paused.
    stack = [(variable, iter(variable.operation.args if variable.operation else ()))]
    while stack:
        node, inputs = stack[-1]
        for parent in inputs:
            if parent not in seen:
                seen.add(parent)
                operation = parent.operation
                stack.append((parent, iter(operation.args if operation else ())))
                break
        else:
            stack.pop()
            order.append(node)
    return order


#: The name the original exercise uses for :func:`topological_order`.
get_variables = topological_order


# -- Python's cyclic garbage collector and the graph -----------------------
#
# CPython frees an object as soon as nothing refers to it any more
# (reference counting). Objects in a reference cycle are never freed that
# way, so a second mechanism, the cyclic garbage collector, looks for them
# by scanning the objects that can hold references. It scans young objects
# often and cheaply; and it scans *all* of them (a "full collection") when
# the number of long-lived objects has grown by a quarter since the last one.
# A large graph being recorded is exactly such a growing set of long-lived
# objects, about six per operation, so full collections scan it again and
# again: a chain of a million operations spends about half of its forward
# pass in those scans.
#
# They find nothing, because the graph has no cycles: a variable refers to
# the operation that made it, an operation to its inputs and its grad
# closure, and nothing refers forward. Reference counting frees a graph as
# soon as the last reference to its output goes. So autodiff does two things:
#
# - Once a graph has grown past _LARGE_GRAPH operations, full collections
#   wait: the collector's third threshold (how many second-generation
#   collections must come before a full one is even considered) is raised to
#   _DEFERRED_THRESHOLD, and backprop puts back the previous value when it
#   returns. Small graphs, such as a training step's, never touch the
#   schedule. Young collections go on, so short-lived cycles of the program
#   are still freed. A program that records large graphs and never calls
#   backprop gets at most one full collection per ~77 million tracked
#   objects allocated (700 * 11 * 10,001 with the default thresholds).
# - During its own walks of the graph (topological_order, backprop), which
#   allocate many short-lived objects, the collector is paused altogether.

_LARGE_GRAPH = 10_000
_DEFERRED_THRESHOLD = 10_000

#: Operations recorded since the last backprop (only compared with _LARGE_GRAPH).
_recorded = 0

#: The collector's third threshold before the deferral began; None when
#: full collections are not deferred.
_saved_threshold: int | None = None

_threshold_lock = threading.Lock()  # threads may record and backprop at once


def _defer_full_collections() -> None:
    """Called once a graph is large: full collections wait."""
    global _saved_threshold
    with _threshold_lock:
        first, second, third = gc.get_threshold()
        if _saved_threshold is not None or third >= _DEFERRED_THRESHOLD:
            return  # deferred already, or the program's own schedule is as lax
        _saved_threshold = third
        gc.set_threshold(first, second, _DEFERRED_THRESHOLD)


def _restore_full_collections() -> None:
    """Called when backprop returns: full collections resume their schedule."""
    global _saved_threshold, _recorded
    _recorded = 0
    if _saved_threshold is None:
        return
    with _threshold_lock:
        saved, _saved_threshold = _saved_threshold, None
        first, second, third = gc.get_threshold()
        if saved is not None and third == _DEFERRED_THRESHOLD:
            gc.set_threshold(first, second, saved)  # unless the program set its own


class _CollectorPaused:
    """``with _CollectorPaused():`` runs its block with the collector off."""

    __slots__ = ("was_enabled",)

    def __enter__(self) -> None:
        self.was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exception: object) -> None:
        if self.was_enabled:
            gc.enable()


def backprop(
    loss: Variable, variables: Iterable[Variable] | None = None
) -> dict[Variable, np.ndarray]:
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
        A scalar variable (shape ``()``).
    variables
        Optional. If given, only the gradients of these variables are
        returned, and every other gradient is dropped as soon as it has been
        passed on. That keeps peak memory close to that of the forward pass,
        and saves the work of gradients nobody asked for, such as those of
        the constants.

    Returns
    -------
    dict
        A new dictionary from each variable to its gradient, an array of the
        variable's shape. It starts with ``loss`` and lists each variable when
        its first gradient contribution arrives, from the loss back to the
        leaves.

    Notes
    -----
    A graph of more than 10,000 operations is recorded with Python's full
    garbage collections deferred (the third threshold of
    ``gc.set_threshold`` raised), because they would rescan the growing
    graph again and again and find nothing in it. ``backprop`` restores the
    previous threshold when it returns, whether it succeeds or fails.

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
    """
    try:
        if not isinstance(loss, Variable):
            raise TypeError(
                f"backprop expects a Variable, but got {type(loss).__name__}."
            )
        if loss.value.shape != ():
            raise ValueError(
                f"backprop needs a scalar loss, but the loss has shape "
                f"{loss.value.shape}. Reduce it first, for example with "
                "loss.sum() or loss.mean()."
            )
        requested = None if variables is None else _check_requested(variables)
        # The seed dJ/dJ = 1, in the loss's dtype if that is a float type.
        dtype = loss.value.dtype
        if dtype.kind not in "fc":
            dtype = np.dtype(np.float64)
        with _CollectorPaused():  # see "the cyclic garbage collector" above
            order = _depth_first_order(loss)  # topological_order, checked already
            gradients = _backward(order, np.array(1, dtype=dtype), requested)
    finally:
        _restore_full_collections()  # the graph is complete
    if requested is None:
        return gradients
    result = {}
    for v in requested:
        gradient = gradients.get(v)
        if gradient is None:  # the loss does not depend on v: gradient zero
            gradient = np.zeros_like(v.value, dtype=dtype)
        result[v] = gradient
    return result


def _backward(
    order: list[Variable], seed: np.ndarray, requested: list[Variable] | None
) -> dict[Variable, np.ndarray]:
    """The backward pass: ``order`` reversed, from the loss to the leaves."""
    gradients = {order[-1]: seed}
    wanted: set[Variable] = set()
    needed: set[Variable] | None = None
    if requested is not None:
        # Only the variables that depend on a requested one carry its
        # gradient; mark them in one pass from the leaves to the loss.
        wanted, needed = set(requested), set()
        for variable in order:
            operation = variable.operation
            if variable in wanted or (
                operation is not None and not needed.isdisjoint(operation.args)
            ):
                needed.add(variable)

    for variable in reversed(order):
        operation = variable.operation
        if operation is None or (needed is not None and variable not in needed):
            continue  # a leaf, or a variable no requested one depends on
        if needed is None or variable in wanted:
            gz = gradients[variable]
        else:
            gz = gradients.pop(variable)  # passed on now, so no longer needed
        inputs = operation.args
        if needed is not None and operation.grad_takes_needed:
            flags = tuple(map(needed.__contains__, inputs))  # a in needed, for each
            input_gradients = operation.grad(gz, flags)  # type: ignore[call-arg]
        else:
            input_gradients = operation.grad(gz)
        if type(input_gradients) is not tuple or len(input_gradients) != len(inputs):
            _raise_bad_count(operation, input_gradients)
        for argument, gradient in zip(inputs, input_gradients):
            if needed is not None and argument not in needed:
                continue
            # Check the gradient, and sum it back to the input's shape if
            # the input was broadcast.
            shape = argument.value.shape
            if type(gradient) is not np.ndarray or gradient.shape != shape:
                gradient = _fit_gradient(operation, argument, gradient)
            previous = gradients.get(argument)
            if previous is not None:
                gradient = previous + gradient
            gradients[argument] = gradient
    return gradients


def _check_requested(variables: Iterable[Any]) -> list[Variable]:
    requested = list(variables)
    for item in requested:
        if not isinstance(item, Variable):
            raise TypeError(
                f"backprop: variables must be Variables, but it contains a "
                f"{type(item).__name__}. Pass a list of Parameters, such as "
                "model.parameters() or optimizer.parameters."
            )
    return requested


def _raise_bad_count(operation: Operation, result: Any) -> None:
    name = type(operation).__name__
    expected = len(operation.args)
    if type(result) is not tuple:
        raise TypeError(
            f"{name}.grad returned an object of type {type(result).__name__}, "
            f"but it must return a tuple with one gradient per input "
            f"({expected}). Did you forget the trailing comma in `return gx,`?"
        )
    raise TypeError(
        f"{name}.grad returned {len(result)} gradients, but {name} has "
        f"{expected} positional input(s); return exactly one gradient per "
        "input, in the order of the arguments."
    )


def _fit_gradient(operation: Operation, argument: Variable, gradient: Any) -> np.ndarray:
    """Check one returned gradient and sum it back to its input's shape."""
    array = np.asarray(gradient)  # NumPy scalars such as np.float64, lists
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(
            f"{type(operation).__name__}.grad returned a gradient of dtype "
            f"{array.dtype} for input {_position(operation, argument)}; gradients "
            "must be numeric arrays."
        )
    shape = argument.value.shape
    if array.shape == shape:
        return array
    try:
        return unbroadcast(array, shape)
    except ValueError:
        raise ValueError(
            f"{type(operation).__name__}.grad returned a gradient of shape "
            f"{array.shape} for input {_position(operation, argument)}, which has "
            f"shape {shape}. A gradient must have its input's shape, or a shape "
            "the input was broadcast to in the forward pass."
        ) from None


def _position(operation: Operation, argument: Variable) -> int:
    return [a is argument for a in operation.args].index(True)


# Imported last: autodiff.ops needs Operation from this module.
from autodiff import ops as _operations  # noqa: E402
