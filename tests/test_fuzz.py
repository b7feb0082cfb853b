"""Fuzzing the public API with whatever a user might pass (issue 13, item 5).

Every operation in ``autodiff.ops.__all__``, the operators and methods of
``Variable``, the functions of ``autodiff.ops`` on variables, the leaves, and
``backprop`` are called with random shapes (0-d and empty among them), dtypes
(bool, int, unsigned, float16/32/64, complex), values (NaN, inf, huge
integers), Python numbers, nested and ragged lists, ``None``, strings,
variables of other graphs and of ``no_grad``, and random settings.

The contract under test: a call either succeeds, or fails with a
``TypeError`` or ``ValueError`` (``ShapeError`` is one) whose message names
the operation, or ``backprop``. Nothing else may escape from the package: no
``IndexError`` (unless it is a ``ValueError`` too, as NumPy's ``AxisError``
and the package's ``IndexingError`` are, and names the operation),
``AttributeError``, ``AssertionError``, ``KeyError``, ``ZeroDivisionError``,
no NumPy error that does not say which operation failed, and no warning that a value was silently changed (``ComplexWarning``,
or any other warning turned into an error here). NaN and inf in the input
may give NaN and inf in the output, as in NumPy (documented in
``autodiff.ops``), so NumPy's RuntimeWarnings about them are ignored.

A call that succeeds is checked as well: it returns a Variable of a real
dtype, made by the operation, and ``backprop`` through it (plain, with
``variables=``, ``output_gradient=`` or ``create_graph=True``, and then a
second ``backprop`` through the recorded gradients) either fails under the
same contract or gives one real floating-point gradient per variable, of
that variable's shape.

Hypothesis is derandomized (the same examples on every run, no example
database), so a failure in CI is a failure on every machine.
"""

from __future__ import annotations

import functools
import inspect
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays, mutually_broadcastable_shapes

from autodiff import Input, Operation, Parameter, Variable, backprop, no_grad, ops, topological_order

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN and inf, as in NumPy

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

#: Every operation class of the public API. One added later is fuzzed too:
#: its settings are drawn by name (below) or from generic small values.
OPERATIONS = [
    member
    for member in (getattr(ops, name) for name in ops.__all__)
    if isinstance(member, type) and issubclass(member, Operation)
]

DTYPES = [
    np.dtype(name)
    for name in ("float64", "int64", "bool", "float32", "complex128", "uint8", "int8", "float16")
]

Shape = tuple[int, ...]


# ------------------------------------------------------------------ the contract


class Refused(Exception):
    """A call failed as the contract allows; the test goes on with the next one."""


@contextmanager
def strict_warnings() -> Iterator[None]:
    """NumPy's RuntimeWarnings about NaN and inf pass; every other warning is an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=RuntimeWarning)
        warnings.filterwarnings("error", category=np.exceptions.ComplexWarning)
        yield


def call(names: list[str], function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``; raises Refused if it failed as allowed.

    An allowed failure is a TypeError or ValueError whose message contains one
    of ``names``. Any other exception propagates and fails the test.
    """
    with strict_warnings():
        try:
            return function(*args, **kwargs)
        except (TypeError, ValueError) as error:
            message = str(error)
            assert any(name in message for name in names), (
                f"{type(error).__name__} whose message names none of {names}: {message!r}"
            )
            event(f"refused: {type(error).__name__}")
            raise Refused from error


def check_result(z: Any, operation: type | None = None) -> Variable:
    """A successful call gives a Variable of a real dtype, made by ``operation``."""
    assert isinstance(z, Variable), f"got {type(z).__name__}, not a Variable"
    assert type(z.value) is np.ndarray, type(z.value)
    assert z.value.dtype.kind in "biuf", f"a Variable of dtype {z.dtype}"
    if operation is not None:  # recorded: the tests run outside no_grad
        assert type(z.operation) is operation, z.operation
    event("succeeded")
    return z


# ---------------------------------------------------------------- the inputs


# The strategies depend on a shape; each is made once per shape, since making
# one costs hypothesis more than drawing from it.
cached = functools.lru_cache(maxsize=None)


#: Floats that trouble arithmetic, drawn more often than hypothesis would.
special_floats = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 1e308, -1e308, 5e-324])


@cached
def arrays_of(dtype: np.dtype[Any] | None, shape: Shape) -> st.SearchStrategy[np.ndarray]:
    """Arrays of ``dtype``, or float64 arrays full of special values for None."""
    if dtype is None:
        return arrays(np.float64, shape, elements=st.one_of(special_floats, st.floats(-3, 3)))
    return arrays(dtype, shape)


@cached
def value_arrays(shape: Shape) -> st.SearchStrategy[np.ndarray]:
    """Arrays of every dtype, with NaN, inf and extreme integers among the values.

    The dtype is drawn uniformly (hypothesis's one_of would favour the first),
    float64 twice as often as the others, as in real use.
    """
    dtypes = st.sampled_from([DTYPES[0], None, *DTYPES])
    return dtypes.flatmap(lambda dtype: arrays_of(dtype, shape))


ragged_lists = st.lists(
    st.lists(st.floats(-3, 3), max_size=3), min_size=2, max_size=3
).filter(lambda rows: len({len(row) for row in rows}) > 1)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.complex_numbers(),
)

junk = st.sampled_from(["x", "", b"1", {}, {"a": 1}, object(), np.datetime64("2024-01-01"), 1.5 + 0j])


@cached
def raw_values(shape: Shape) -> st.SearchStrategy[Any]:
    """What a user might pass where a value belongs, other than a Variable."""
    array = value_arrays(shape)
    return st.one_of(
        array,
        array,
        array.map(lambda a: a.tolist()),  # nested lists, or a Python number for 0-d
        scalars,
        ragged_lists,
        junk,
    )


@cached
def float_arrays(shape: Shape) -> st.SearchStrategy[np.ndarray]:
    return arrays(st.sampled_from([np.float32, np.float64]), shape, elements=st.floats(-3, 3, width=32))


def _leaf(kind: type, value: Any) -> Any:
    """``kind(value)``, or ``value`` itself where the leaf refuses it (see test_leaves)."""
    try:
        with strict_warnings():
            return kind(value)
    except (TypeError, ValueError):
        return value


def _from_another_graph(value: np.ndarray) -> Variable:
    return Parameter(value) * 1.5


def _made_under_no_grad(value: np.ndarray) -> Variable:
    with no_grad():
        return Parameter(value) + 1.0


@cached
def arguments(shape: Shape) -> st.SearchStrategy[Any]:
    """A positional argument of an operation: a raw value, a leaf, or a variable
    that another graph made (with or without recording)."""
    raw = raw_values(shape)
    return st.one_of(
        st.builds(_leaf, st.just(Parameter), raw),
        raw,
        st.builds(_leaf, st.just(Input), raw),
        float_arrays(shape).map(_from_another_graph),
        float_arrays(shape).map(_made_under_no_grad),
    )


@cached
def variables(shape: Shape) -> st.SearchStrategy[Variable]:
    """A Variable of any real dtype: the ``self`` of a method."""
    leaves = st.builds(_leaf, st.sampled_from([Parameter, Input]), value_arrays(shape))
    return st.one_of(
        leaves.filter(lambda v: isinstance(v, Variable)),
        float_arrays(shape).map(_from_another_graph),
        float_arrays(shape).map(_made_under_no_grad),
    )


#: Shapes of up to 3 axes of up to 3 elements; empty ones less often than others.
shapes = st.one_of(
    array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3),
    array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=3),
)


@st.composite
def chain_shapes(draw: st.DrawFn, count: int) -> tuple[Shape, ...]:
    """Shapes that fit MatMul and Affine: (a, b), (b, c), then (c,) or (c, d)."""
    sides = draw(st.lists(st.integers(0, 3), min_size=count + 1, max_size=count + 1))
    result: list[Shape] = [(sides[i], sides[i + 1]) for i in range(count - 1)]
    result.append(draw(st.sampled_from([(sides[count - 1],), (sides[count - 1], sides[count])])))
    if draw(st.booleans()):  # a batch axis, or a vector, in front
        result[0] = draw(st.sampled_from([(2, *result[0]), result[0][1:]]))
    return tuple(result)


@cached
def shapes_of(count: int) -> st.SearchStrategy[tuple[Shape, ...]]:
    """``count`` shapes: mostly ones that broadcast or multiply, sometimes any."""
    if count == 0:
        return st.just(())
    if count == 1:
        return shapes.map(lambda s: (s,))
    return st.one_of(
        *[
            mutually_broadcastable_shapes(num_shapes=count, max_dims=3, min_side=side, max_side=3).map(
                lambda r: tuple(r.input_shapes)
            )
            for side in (1, 0)
        ],
        chain_shapes(count),
        chain_shapes(count),  # twice: MatMul and Affine need them to do anything
        st.tuples(*[shapes] * count),
    )


# ------------------------------------------------------------------ settings


@cached
def axes_of(ndim: int) -> st.SearchStrategy[Any]:
    axis = st.integers(-ndim - 1, ndim)
    return st.one_of(
        st.none(),
        axis,
        st.lists(axis, max_size=3).map(tuple),
        st.sampled_from([1.5, "0", [0], np.array(0)]),
    )


@cached
def permutations_of(ndim: int) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.permutations(range(ndim)).map(tuple),
        st.permutations(range(-ndim, 0)).map(tuple),
        st.lists(st.integers(-ndim - 1, ndim), max_size=4).map(tuple),
        st.sampled_from([1.5, "ab", [0]]),
    )


@cached
def target_shapes(shape: Shape) -> st.SearchStrategy[Any]:
    """Settings called ``shape``: for Reshape, BroadcastTo and ScatterAdd."""
    size = math.prod(shape)
    return st.one_of(
        st.sampled_from([shape, (-1,), (size,), (1, *shape), (2, *shape), tuple(reversed(shape)), ()]),
        st.lists(st.integers(-2, 4), max_size=4).map(tuple),
        st.sampled_from([None, 3, -1, "ab", (1.5,), [2, 2]]),
    )


@cached
def indices(shape: Shape) -> st.SearchStrategy[Any]:
    """Indices for ``x[index]``: mostly fitting ``shape``, sometimes not."""
    side = shape[0] if shape else 1
    part = st.one_of(st.integers(-side - 1, side), st.slices(max(side, 1)), st.none(), st.just(Ellipsis))
    return st.one_of(
        part,
        st.lists(part, max_size=4).map(tuple),
        arrays(np.int64, array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3), elements=st.integers(-side, side - 1) if side else st.just(0)),
        arrays(np.bool_, shape),
        arrays(np.bool_, (side,)),
        st.lists(st.integers(-side - 1, side), max_size=3),
        st.sampled_from([1.5, "a", [[0, 1], [0]], np.array([0.5]), Input(np.array([0, 0])), Parameter([0.0])]),
    )


@cached
def class_labels(shape: Shape) -> st.SearchStrategy[Any]:
    """Labels for SoftmaxCrossEntropy with logits of ``shape``."""
    rows = shape[0] if shape else 0
    classes = shape[1] if len(shape) > 1 else 0
    fitting = arrays(
        st.sampled_from([np.int64, np.int8, np.uint8]), (rows,),
        elements=st.integers(0, classes - 1) if classes else st.just(0),
    )
    return st.one_of(
        fitting,
        fitting,
        arrays(np.int64, (rows,), elements=st.integers(-3, classes + 2)),
        arrays(st.sampled_from([np.float64, np.bool_]), (rows,)),
        st.lists(st.integers(-1, 3), max_size=3),
        st.sampled_from([None, 0, [[0], [0, 1]], "0", Input(np.array([0]))]),
    )


@cached
def conditions(shape: Shape) -> st.SearchStrategy[Any]:
    return st.one_of(
        arrays(np.bool_, shape),
        arrays(np.bool_, st.sampled_from([shape, shape[1:], (), (1,), (4,)])),
        arrays(np.float64, shape),
        st.sampled_from([None, True, [[True], [True, False]], "yes", Input(np.array(True))]),
    )


#: Settings strategies by the name of ``apply``'s keyword parameter; each gets
#: the shape of the first positional input.
NAMED_SETTINGS: dict[str, Callable[[Shape], st.SearchStrategy[Any]]] = {
    "axis": lambda shape: axes_of(len(shape)),
    "keepdims": lambda shape: st.one_of(st.booleans(), st.sampled_from([None, 1, "no"])),
    "axes": lambda shape: permutations_of(len(shape)),
    "shape": target_shapes,
    "index": indices,
    "labels": class_labels,
    "condition": conditions,
}

#: For a setting the table does not know, in an operation added later.
generic_settings = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 4),
    st.lists(st.integers(-2, 4), max_size=3).map(tuple),
    st.sampled_from(["same", 1.5]),
)


def signature(operation: type) -> tuple[int, list[str]]:
    """The number of positional inputs of ``operation.apply``, and its settings."""
    parameters = list(inspect.signature(operation.apply).parameters.values())[1:]  # no self
    inputs = [p for p in parameters if p.default is inspect.Parameter.empty]
    settings_names = [p.name for p in parameters if p.default is not inspect.Parameter.empty]
    return len(inputs), settings_names


@st.composite
def scatter_settings(draw: st.DrawFn, shape: Shape) -> tuple[dict[str, Any], Shape]:
    """``index`` and ``shape`` for ScatterAdd such that ``x`` of the returned shape fits."""
    target = draw(shapes)
    index = draw(indices(target))
    try:
        fitting = np.zeros(target)[index].shape
    except (IndexError, ValueError, TypeError):
        fitting = shape
    return {"index": index, "shape": target}, fitting


@st.composite
def calls(draw: st.DrawFn, operation: type) -> tuple[list[Any], dict[str, Any]]:
    """Positional arguments and settings for one call of ``operation``."""
    count, names = signature(operation)
    input_shapes = list(draw(shapes_of(count)))
    settings_: dict[str, Any] = {}
    if operation is ops.ScatterAdd and draw(st.booleans()):
        settings_, input_shapes[0] = draw(scatter_settings(input_shapes[0]))
    else:
        first = input_shapes[0] if input_shapes else ()
        for name in names:
            if draw(st.booleans()):  # else the default
                strategy = NAMED_SETTINGS.get(name)
                settings_[name] = draw(strategy(first) if strategy else generic_settings)
    args = [draw(arguments(shape)) for shape in input_shapes]
    return args, settings_


# ------------------------------------------------------------------ backprop


def graph_names(z: Variable) -> list[str]:
    """What a backprop error may name: backprop, or an operation of the graph."""
    return ["backprop", *{type(v.operation).__name__ for v in topological_order(z) if v.operation}]


def _value_of(y: Any) -> Any:
    return y.value if isinstance(y, Variable) else y


def check_gradients_of(gradients: Any, create_graph: bool) -> None:
    assert type(gradients) is dict
    for variable, gradient in gradients.items():
        assert isinstance(variable, Variable)
        if create_graph:
            assert isinstance(gradient, Variable), type(gradient)
            gradient = gradient.value
        # A NumPy scalar only for a 0-d variable (see backprop's Returns).
        assert type(gradient) is np.ndarray or (isinstance(gradient, np.generic) and variable.ndim == 0), type(gradient)
        assert gradient.shape == variable.shape, (gradient.shape, variable.shape)
        assert gradient.dtype.kind == "f", f"a gradient of dtype {gradient.dtype} for a {variable.dtype} variable"


@st.composite
def backprop_arguments(draw: st.DrawFn, z: Variable, leaves: list[Variable]) -> tuple[Any, dict[str, Any]]:
    """A loss made from ``z`` and the keyword arguments of one backprop call."""
    loss: Any = z
    kind = draw(st.sampled_from(["z", "z", "sum", "junk"]))
    if kind == "sum":
        loss = z.sum()
    elif kind == "junk":
        loss = draw(st.one_of(scalars, junk, st.just(z.value)))
    kwargs: dict[str, Any] = {}
    if draw(st.booleans()):
        others = [Parameter(1.0), _from_another_graph(np.ones(2))]
        pool = leaves + ([loss] if isinstance(loss, Variable) else []) + others
        kwargs["variables"] = draw(
            st.one_of(
                st.lists(st.sampled_from(pool), max_size=4),
                st.lists(st.sampled_from(pool), min_size=1, max_size=2).map(iter),
                st.sampled_from(pool),  # a Variable where a list belongs
                st.lists(st.one_of(st.sampled_from(pool), scalars), min_size=1, max_size=3),
                scalars,
                junk,
            )
        )
    if draw(st.booleans()):
        shape = z.shape
        kwargs["output_gradient"] = draw(
            st.one_of(
                value_arrays(shape),
                value_arrays(shape).map(lambda a: a.tolist()),
                float_arrays(shape).map(Input),
                raw_values(draw(shapes)),
                scalars,
            )
        )
    if draw(st.booleans()):
        kwargs["create_graph"] = True
    return loss, kwargs


def exercise_backprop(data: st.DataObject, z: Variable, args: list[Any]) -> None:
    """backprop through ``z`` as a user might call it, and again through the gradients."""
    leaves = [a for a in args if isinstance(a, Variable)]
    loss, kwargs = data.draw(backprop_arguments(z, leaves), label="backprop")
    names = graph_names(z)
    try:
        gradients = call(names, backprop, loss, **kwargs)
    except Refused:
        return
    create_graph = kwargs.get("create_graph", False)
    check_gradients_of(gradients, create_graph)
    requested = kwargs.get("variables")
    if isinstance(requested, list):
        assert list(gradients) == list(dict.fromkeys(requested))
    elif isinstance(requested, Variable):  # if ever accepted, it must mean [requested]
        assert list(gradients) == [requested]
    elif requested is None:  # the loss's own gradient is the seed
        seed = gradients[loss].value if create_graph else gradients[loss]
        start = _value_of(kwargs.get("output_gradient"))
        start = 1.0 if start is None else start  # None: the default, dJ/dJ = 1
        np.testing.assert_array_equal(seed, np.asarray(start).astype(seed.dtype))
    if not create_graph:
        return
    # Second order: differentiate the sum of the recorded gradients.
    total: Any = sum(g.sum() for g in gradients.values())
    if isinstance(total, Variable):
        try:
            second = call(names + graph_names(total), backprop, total, leaves)
        except Refused:
            return
        check_gradients_of(second, create_graph=False)


def describe(values: list[Any]) -> None:
    """Count the kinds of input in hypothesis's statistics (--hypothesis-show-statistics)."""
    for value in values:
        array = value.value if isinstance(value, Variable) else value
        if isinstance(array, np.ndarray):
            event(f"input dtype {array.dtype.kind}")
            if array.ndim == 0:
                event("input 0-d")
            if array.size == 0:
                event("input empty")
            if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
                event("input NaN or inf")
        else:
            event(f"input {type(value).__name__}")


# ------------------------------------------------------------------ the tests


def fuzz_operation(operation: type, data: st.DataObject) -> None:
    args, kwargs = data.draw(calls(operation), label="call")
    describe(args)
    try:
        z = call([operation.__name__], operation, *args, **kwargs)
    except Refused:
        return
    check_result(z, operation)
    exercise_backprop(data, z, args)


def _swapaxes(x: Variable, first: Any, second: Any) -> Variable:
    return x.swapaxes(first, second)


#: The Variable API beyond the operation classes: (what an error must name,
#: how many other values the call takes, the call, settings by name).
METHODS: dict[str, tuple[list[str], int, Callable[..., Any], dict[str, str]]] = {
    "x + y": (["Add"], 1, lambda x, y: x + y, {}),
    "y + x": (["Add"], 1, lambda x, y: y + x, {}),
    "x - y": (["Sub"], 1, lambda x, y: x - y, {}),
    "y - x": (["Sub"], 1, lambda x, y: y - x, {}),
    "x * y": (["Mul"], 1, lambda x, y: x * y, {}),
    "y * x": (["Mul"], 1, lambda x, y: y * x, {}),
    "x / y": (["Div"], 1, lambda x, y: x / y, {}),
    "y / x": (["Div"], 1, lambda x, y: y / x, {}),
    "x @ y": (["MatMul"], 1, lambda x, y: x @ y, {}),
    "y @ x": (["MatMul"], 1, lambda x, y: y @ x, {}),
    "x ** y": (["Pow"], 1, lambda x, y: x**y, {}),
    "y ** x": (["Pow"], 1, lambda x, y: y**x, {}),
    "-x": (["Neg"], 0, lambda x: -x, {}),
    "+x": ([], 0, lambda x: +x, {}),
    "abs(x)": (["Abs"], 0, abs, {}),
    "x < y": (["Comparing"], 1, lambda x, y: x < y, {}),
    "x <= y": (["Comparing"], 1, lambda x, y: x <= y, {}),
    "x > y": (["Comparing"], 1, lambda x, y: x > y, {}),
    "x >= y": (["Comparing"], 1, lambda x, y: x >= y, {}),
    "y < x": (["Comparing"], 1, lambda x, y: y < x, {}),
    "x[index]": (["GetItem"], 0, lambda x, index: x[index], {"index": "index"}),
    "x.sum()": (["Sum"], 0, lambda x, **k: x.sum(**k), {"axis": "axis", "keepdims": "keepdims"}),
    "x.mean()": (["Mean"], 0, lambda x, **k: x.mean(**k), {"axis": "axis", "keepdims": "keepdims"}),
    "x.reshape(shape)": (["Reshape"], 0, lambda x, shape: x.reshape(shape), {"shape": "shape"}),
    "x.reshape(*shape)": (
        ["Reshape"], 0,
        lambda x, shape: x.reshape(*shape) if isinstance(shape, tuple) else x.reshape(shape),
        {"shape": "shape"},
    ),
    "x.transpose(axes)": (["Transpose"], 0, lambda x, axes: x.transpose(axes), {"axes": "axes"}),
    "x.transpose(*axes)": (
        ["Transpose"], 0,
        lambda x, axes: x.transpose(*axes) if isinstance(axes, tuple) else x.transpose(axes),
        {"axes": "axes"},
    ),
    "x.swapaxes(a, b)": (["swapaxes"], 0, _swapaxes, {"first": "axis", "second": "axis"}),
    "x.T": (["Transpose"], 0, lambda x: x.T, {}),
    "len(x)": (["len()"], 0, len, {}),
    "list(x)": (["iteration", "GetItem"], 0, list, {}),
    "bool(x)": (["truth value"], 0, bool, {}),
    "repr(x)": ([], 0, repr, {}),
    "x.backprop()": (["backprop"], 0, lambda x: x.backprop(), {}),
    "exp(x)": (["Exp"], 0, ops.exp, {}),
    "log(x)": (["Log"], 0, ops.log, {}),
    "tanh(x)": (["Tanh"], 0, ops.tanh, {}),
    "maximum(x, y)": (["Maximum"], 1, ops.maximum, {}),
    "maximum(y, x)": (["Maximum"], 1, lambda x, y: ops.maximum(y, x), {}),
    "where(condition, x, y)": (["Where"], 1, lambda x, y, condition: ops.where(condition, x, y), {"condition": "condition"}),
    "where(condition, y, x)": (["Where"], 1, lambda x, y, condition: ops.where(condition, y, x), {"condition": "condition"}),
    "broadcast_to(x, shape)": (["BroadcastTo"], 0, lambda x, shape: ops.broadcast_to(x, shape), {"shape": "shape"}),
    "scatter_add(x, index, shape)": (
        ["ScatterAdd"], 0,
        lambda x, index, shape: ops.scatter_add(x, index, shape),
        {"index": "index", "shape": "shape"},
    ),
    "detach(x)": ([], 0, ops.detach, {}),
    "check_class_labels(labels, x.shape)": (
        ["fuzzing"], 0,
        lambda x, labels: ops.check_class_labels(labels, x.shape, "fuzzing"),
        {"labels": "labels"},
    ),
}


#: What a successful call of some of METHODS must give, beyond a Variable.
POSTCONDITIONS: dict[str, Callable[..., bool]] = {
    "+x": lambda result, x: result is x,
    "x < y": lambda result, x, y: np.array_equal(result, x.value < _value_of(y)),
    "x <= y": lambda result, x, y: np.array_equal(result, x.value <= _value_of(y)),
    "x > y": lambda result, x, y: np.array_equal(result, x.value > _value_of(y)),
    "x >= y": lambda result, x, y: np.array_equal(result, x.value >= _value_of(y)),
    "y < x": lambda result, x, y: np.array_equal(result, x.value > _value_of(y)),
    "x.T": lambda result, x: result.shape == x.shape[::-1],
    "len(x)": lambda result, x: result == x.shape[0],
    "list(x)": lambda result, x: len(result) == x.shape[0] and all(row.shape == x.shape[1:] for row in result),
    "repr(x)": lambda result, x: result.startswith(type(x).__name__ + "("),
    "detach(x)": lambda result, x: result is x.value,
}


def fuzz_method(method: str, data: st.DataObject) -> None:
    names, count, function, setting_kinds = METHODS[method]
    own_shapes = data.draw(shapes_of(count + 1), label="shapes")
    x = data.draw(variables(own_shapes[0]), label="x")
    others = [data.draw(arguments(shape), label="y") for shape in own_shapes[1:]]
    kwargs = {name: data.draw(NAMED_SETTINGS[kind](x.shape), label=name) for name, kind in setting_kinds.items()}
    describe([x, *others])
    try:
        result = call(names, function, x, *others, **kwargs)
    except Refused:
        return
    if method in POSTCONDITIONS:
        with strict_warnings():
            assert POSTCONDITIONS[method](result, x, *others), result
    if isinstance(result, Variable):
        check_result(result)
        exercise_backprop(data, result, [x, *others])


LEAVES = [Variable, Parameter, Input]


def fuzz_leaf(leaf: type, data: st.DataObject) -> None:
    value = data.draw(st.one_of(raw_values(data.draw(shapes)), variables(data.draw(shapes))))
    describe([value])
    try:
        v = call([leaf.__name__], leaf, value)
    except Refused:
        return
    check_result(v)
    source = np.asarray(value)
    assert v.shape == source.shape
    if leaf is Parameter:  # learnable: floating point, and a copy
        assert v.dtype.kind == "f"
        assert not np.shares_memory(v.value, source)
    else:
        assert v.dtype == source.dtype


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.__name__)
@SETTINGS
@given(data=st.data())
def test_operation(operation: type, data: st.DataObject) -> None:
    fuzz_operation(operation, data)


@pytest.mark.parametrize("method", METHODS, ids=str)
@SETTINGS
@given(data=st.data())
def test_variable_api(method: str, data: st.DataObject) -> None:
    fuzz_method(method, data)


@pytest.mark.parametrize("leaf", LEAVES, ids=lambda leaf: leaf.__name__)
@SETTINGS
@given(data=st.data())
def test_leaves(leaf: type, data: st.DataObject) -> None:
    fuzz_leaf(leaf, data)


TARGETS = (
    [(fuzz_operation, operation) for operation in OPERATIONS]
    + [(fuzz_method, method) for method in METHODS]
    + [(fuzz_leaf, leaf) for leaf in LEAVES]
)


@pytest.mark.slow
@settings(SETTINGS, max_examples=2_000)
@given(data=st.data())
def test_everything_at_length(data: st.DataObject) -> None:
    """The three tests above, 2,000 more examples in all, spread over every target."""
    fuzz, target = data.draw(st.sampled_from(TARGETS), label="target")
    fuzz(target, data)


# ------------------------------------------------- what the fuzzing found, one by one
#
# Each case below failed the contract before it was fixed; they are kept as
# plain tests so that each fix stays explained by an example.


@pytest.mark.parametrize(
    ("make", "error", "pattern"),
    [
        (lambda: Parameter([[1.0, 2.0], [3.0]]), ValueError, r"^Parameter cannot make an array of list .*rectangular"),
        (lambda: Input([[1.0], []]), ValueError, r"^Input cannot make an array"),
        (lambda: Parameter([1.0]) + [[1.0, 2.0], [3.0]], ValueError, r"^Add: Input cannot make an array"),
        (lambda: Parameter(1j), TypeError, r"^Parameter got complex numbers"),
        (lambda: Input(np.ones(2, np.complex64)), TypeError, r"^Input got complex numbers"),
        (lambda: Parameter([1.0]) * 1j, TypeError, r"^Mul: Input got complex numbers"),
        (lambda: -Input(np.array([True])), TypeError, r"^Neg: .*boolean.*mask\.astype"),
        (lambda: ops.Sigmoid(Input(np.array([True]))), TypeError, r"^Sigmoid: .*An input is boolean"),
        (lambda: Input(2) ** Input(-1), ValueError, r"^Pow: Integers to negative integer powers"),
        (lambda: Parameter([1.0, 2.0])[5], IndexError, r"^GetItem: index 5 is out of bounds"),
        (lambda: Parameter([1.0, 2.0])[1.5], IndexError, r"^GetItem: only integers"),
        (lambda: ops.ScatterAdd(Parameter([1.0]), index=[3], shape=(2,)), IndexError, r"^ScatterAdd: index 3"),
        (lambda: Parameter([1.0, 2.0]).sum(axis=1), IndexError, r"^Sum: axis 1 is out of bounds"),
        (lambda: Parameter([1.0, 2.0]).mean(axis="0"), TypeError, r"^Mean: "),
        (lambda: Parameter([1.0, 2.0]).transpose(0, 0), ValueError, r"^Transpose: "),
        (lambda: Parameter([1.0, 2.0]).reshape(3), ValueError, r"^Reshape: cannot reshape"),
        (lambda: ops.BroadcastTo(Parameter([1.0, 2.0]), shape=(3,)), ValueError, r"^BroadcastTo: "),
        (lambda: Parameter([1.0, 2.0]).swapaxes(0, 1), IndexError, r"^swapaxes: axis 1 is out of range .* use -1 to 0"),
        (lambda: Parameter([[1.0, 2.0]]).swapaxes(0, slice(None)), TypeError, r"^swapaxes: the axes must be integers"),
        (lambda: len(Parameter(1.0)), TypeError, r"^len\(\) of a 0-d Variable"),
        (lambda: list(Parameter(1.0)), TypeError, r"^iteration over a 0-d Variable"),
        (lambda: Parameter([1.0, 2.0]) < [1.0, 2.0, 3.0], ValueError, r"^Comparing a Variable with list \(<\)"),
        (lambda: Parameter(1.0) >= "a", TypeError, r"^Comparing a Variable with str \(>=\)"),
        (lambda: ops.Where(Parameter([1.0]), Parameter([2.0])), TypeError, r"^Where needs the condition"),
        (lambda: ops.SoftmaxCrossEntropy(Parameter(np.zeros((2, 2))), labels=[[0], [0, 1]]), ValueError, r"^SoftmaxCrossEntropy cannot make"),
        (lambda: backprop(Parameter(1.0) * 2, Parameter(1.0)), TypeError, r"^backprop: variables must be a list.*variables=\[x\]"),
        (lambda: backprop(Parameter(1.0) * 2, 5), TypeError, r"^backprop: variables must be a list"),
        (lambda: backprop(Parameter([1.0]) * 2, output_gradient=[1j]), TypeError, r"^backprop: output_gradient got complex"),
        (lambda: backprop(Parameter([1.0]) * 2, output_gradient="a"), TypeError, r"^backprop: output_gradient needs numbers"),
        (lambda: backprop(Parameter([1.0, 2.0]) * 2, output_gradient=[[1.0], []]), ValueError, r"^backprop: output_gradient cannot make"),
    ],
)
def test_a_mistake_gets_an_error_that_names_the_operation(make: Callable[[], Any], error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        make()


def test_an_index_error_is_a_value_error_too() -> None:
    """Out-of-range indices and axes: IndexError as in NumPy, and ValueError as in the contract."""
    for make in (lambda: Parameter([1.0])[3], lambda: Parameter([1.0]).sum(axis=2)):
        with pytest.raises(IndexError) as info:
            make()
        assert isinstance(info.value, ValueError)


def test_iterating_a_variable_gives_its_rows() -> None:
    x = Parameter([[1.0, 2.0], [3.0, 4.0]])
    rows = list(x)
    assert [row.value.tolist() for row in rows] == [[1.0, 2.0], [3.0, 4.0]]
    np.testing.assert_array_equal(backprop(rows[1].sum(), [x])[x], [[0.0, 0.0], [1.0, 1.0]])


def test_the_gradient_of_a_0d_variable_used_twice_is_a_0d_value() -> None:
    """NumPy adds two 0-d arrays to a NumPy scalar, as backprop's docstring says."""
    x = Parameter(3.0)
    gradient = backprop(x * x)[x]
    assert isinstance(gradient, (np.ndarray, np.generic)) and gradient.shape == ()
    assert gradient.dtype == np.float64 and float(gradient) == 6.0


def test_pow_of_integer_inputs_has_a_gradient() -> None:
    """``x ** (y - 1)`` with integers x and y = 0 asked NumPy for 2 ** -1."""
    x, y = Input(2), Input(np.array([0, 1, 3]))
    gradients = backprop((x**y).sum())
    np.testing.assert_allclose(gradients[x], 0 * 2.0**-1 + 1 * 2.0**0 + 3 * 2.0**2)
    np.testing.assert_allclose(gradients[y], 2.0 ** np.array([0, 1, 3]) * np.log(2.0))


def test_affine_of_integer_input_with_a_float_bias() -> None:
    """The bias was added in place, which NumPy refuses for a float into an int product."""
    x, w, b = Input([[1, 2]]), Input([[1], [1]]), Parameter([0.5])
    z = ops.Affine(x, w, b)
    np.testing.assert_array_equal(z.value, [[3.5]])
    np.testing.assert_array_equal(backprop(z.sum(), [b])[b], [1.0])


@pytest.mark.parametrize("axis", [0, -1, np.int64(0), np.array(0)])
@pytest.mark.parametrize(("operation", "shape"), [(ops.Sum, ()), (ops.Sum, (2,)), (ops.Mean, (2,))])
def test_sum_and_mean_over_an_axis_numpy_accepts(axis: Any, operation: type, shape: Shape) -> None:
    """NumPy's sum accepts axis 0 of a 0-d array, and NumPy integers as axes;
    the shape of the gradient was computed with a division by the number of
    axes, 0, and by iterating over the axis."""
    x = Parameter(np.ones(shape))
    gradient = backprop(operation(x, axis=axis).sum(), [x])[x]
    np.testing.assert_array_equal(gradient, np.ones(shape) / (2 if operation is ops.Mean else 1))
