"""Every operation's gradient against central differences, over many shapes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from autodiff import (
    MSE,
    Abs,
    Add,
    BroadcastTo,
    Div,
    Exp,
    GetItem,
    Identity,
    Input,
    Log,
    MatMul,
    Maximum,
    Mean,
    Mul,
    Neg,
    Parameter,
    Pow,
    ReLU,
    Reshape,
    ScatterAdd,
    Sigmoid,
    Sub,
    Sum,
    Tanh,
    Transpose,
    Where,
    backprop,
    numeric_test,
)

SHAPES = [(), (3,), (3, 2)]
# Pairs of input shapes for binary operations: equal shapes and broadcasting, both ways round.
PAIRS = [(s, s) for s in SHAPES] + [
    ((3, 2), (2,)),
    ((2,), (3, 2)),
    ((3, 1), (1, 4)),
    ((1, 4), (3, 1)),
    ((2,), ()),
    ((), (2,)),
    ((3, 2), ()),
    ((2, 1, 3), (4, 1)),
]


def ids(pair: tuple[tuple[int, ...], tuple[int, ...]]) -> str:
    return f"{pair[0]}&{pair[1]}"


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], low: float = 0.5) -> np.ndarray:
    """Random values with |v| in [low, 2) and random signs."""
    magnitude = rng.uniform(low, 2.0, size=shape)
    return magnitude * rng.choice([-1.0, 1.0], size=shape)


# ----------------------------------------------------------------- unary operations
UNARY = {
    "Identity": (Identity, lambda rng, s: rng.normal(size=s)),
    "Neg": (Neg, lambda rng, s: rng.normal(size=s)),
    "Exp": (Exp, lambda rng, s: rng.normal(size=s)),
    "Log": (Log, lambda rng, s: rng.uniform(0.5, 3.0, size=s)),
    "ReLU": (ReLU, lambda rng, s: away_from_zero(rng, s, 0.1)),
    "Abs": (Abs, lambda rng, s: away_from_zero(rng, s, 0.1)),
    "Sigmoid": (Sigmoid, lambda rng, s: 3 * rng.normal(size=s)),
    "Tanh": (Tanh, lambda rng, s: 2 * rng.normal(size=s)),
}


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_gradient(name: str, shape: tuple[int, ...], rng: np.random.Generator) -> None:
    operation, values = UNARY[name]
    x = Parameter(values(rng, shape))
    z = operation(x)
    assert z.shape == shape
    numeric_test(z)
    numeric_test(z, order=2)


def test_unary_values() -> None:
    x = np.array([-1.5, 0.0, 0.7])
    np.testing.assert_allclose(Identity(Parameter(x)).value, x)
    np.testing.assert_allclose(Neg(Parameter(x)).value, -x)
    np.testing.assert_allclose(Exp(Parameter(x)).value, np.exp(x))
    np.testing.assert_allclose(Log(Parameter(x + 2)).value, np.log(x + 2))
    np.testing.assert_allclose(ReLU(Parameter(x)).value, [0.0, 0.0, 0.7])
    np.testing.assert_allclose(Sigmoid(Parameter(x)).value, 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(Tanh(Parameter(x)).value, np.tanh(x))


def test_relu_gradient_is_one_at_zero() -> None:
    x = Parameter(0.0)
    assert float(backprop(ReLU(x))[x]) == 1.0
    v = Parameter([-1.0, 0.0, 2.0])
    np.testing.assert_array_equal(backprop(ReLU(v).sum())[v], [0.0, 1.0, 1.0])


def test_sigmoid_large_arguments_do_not_overflow() -> None:
    x = Parameter([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = Sigmoid(x)
        gradient = backprop(z.sum())[x]
    np.testing.assert_allclose(z.value, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-20)
    assert np.all(np.isfinite(gradient))
    np.testing.assert_allclose(gradient, [0.0, 0.0, 0.25, 0.0, 0.0], atol=1e-20)


@pytest.mark.parametrize("x", [-1.0, -30.0, -300.0, -700.0, -740.0])
def test_sigmoid_keeps_relative_precision_for_very_negative_x(x: float) -> None:
    # There exp(x) / (1 + exp(x)) is exact to rounding; 1/2 (1 + tanh(x/2)),
    # an identity that also never overflows, is off by 100 % beyond x = -37.
    z = Sigmoid(Parameter(x)).value
    reference = np.exp(x) / (1 + np.exp(x))
    np.testing.assert_allclose(z, reference, rtol=1e-15)
    assert z > 0


def test_sigmoid_float32_stays_float32() -> None:
    x = Parameter(np.array([-100.0, 0.0, 100.0], dtype=np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = Sigmoid(x)
    assert z.dtype == np.float32


# ---------------------------------------------------------------- binary operations
def binary_values(name: str, rng: np.random.Generator, shape: tuple[int, ...], position: int) -> np.ndarray:
    if name == "Div" and position == 1:
        return away_from_zero(rng, shape)
    if name == "Pow" and position == 0:
        return rng.uniform(0.5, 2.0, size=shape)
    return rng.normal(size=shape)


BINARY = {"Add": Add, "Sub": Sub, "Mul": Mul, "Div": Div, "Pow": Pow, "MSE": MSE, "Maximum": Maximum}
NUMPY = {
    "Maximum": np.maximum,
    "Add": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "Div": np.divide,
    "Pow": np.power,
    "MSE": lambda x, y: np.mean((x - y) ** 2),
}


@pytest.mark.parametrize("pair", PAIRS, ids=ids)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_gradient(name: str, pair: tuple[tuple[int, ...], tuple[int, ...]], rng: np.random.Generator) -> None:
    x = Parameter(binary_values(name, rng, pair[0], 0))
    y = Parameter(binary_values(name, rng, pair[1], 1))
    z = BINARY[name](x, y)
    np.testing.assert_allclose(z.value, NUMPY[name](x.value, y.value))
    numeric_test(z)
    numeric_test(z, order=2)
    # Through backprop too: each gradient has its input's shape.
    gradients = backprop(z.sum())
    assert gradients[x].shape == pair[0]
    assert gradients[y].shape == pair[1]


def test_operators_build_the_same_operations(rng: np.random.Generator) -> None:
    x = Parameter(rng.uniform(0.5, 2.0, size=(3, 2)))
    y = Parameter(rng.uniform(0.5, 2.0, size=(2,)))
    cases = [
        (x + y, Add, x.value + y.value),
        (x - y, Sub, x.value - y.value),
        (x * y, Mul, x.value * y.value),
        (x / y, Div, x.value / y.value),
        (x**y, Pow, x.value**y.value),
        (-x, Neg, -x.value),
        (x @ y, MatMul, x.value @ y.value),
        (x.sum(axis=0), Sum, x.value.sum(axis=0)),
        (x.mean(axis=1, keepdims=True), Mean, x.value.mean(axis=1, keepdims=True)),
        (x.reshape(2, 3), Reshape, x.value.reshape(2, 3)),
        (x.reshape((6,)), Reshape, x.value.reshape(6)),
        (x.T, Transpose, x.value.T),
        (x[1:], GetItem, x.value[1:]),
    ]
    for variable, operation, expected in cases:
        assert type(variable.operation) is operation
        np.testing.assert_allclose(variable.value, expected)
    assert +x is x


def test_mse_fused_agrees_with_composed(rng: np.random.Generator) -> None:
    for shape_x, shape_y in [((), ()), ((4,), (4,)), ((3, 2), (2,)), ((3, 1), (1, 4))]:
        x = Parameter(rng.normal(size=shape_x))
        y = Parameter(rng.normal(size=shape_y))
        fused = MSE(x, y)
        composed = ((x - y) ** 2).mean()
        np.testing.assert_allclose(fused.value, composed.value, rtol=1e-12)
        g_fused, g_composed = backprop(fused), backprop(composed)
        for v in (x, y):
            np.testing.assert_allclose(g_fused[v], g_composed[v], rtol=1e-12, atol=1e-15)


def test_mse_exercise_examples() -> None:
    z = MSE(Parameter(1.0), Parameter(-1.0))
    np.testing.assert_allclose(z.value, 4.0)
    numeric_test(z)
    numeric_test(z, order=2)
    z = MSE(Parameter(np.ones(4)), Parameter([1, 1, 1, 0.0]))
    np.testing.assert_allclose(z.value, 0.25)
    numeric_test(z)
    numeric_test(z, order=2)


# ------------------------------------------------------------------------------ Pow
def test_pow_gradients_by_hand() -> None:
    x, y = Parameter(2.0), Parameter(3.0)
    gradients = backprop(x**y)
    np.testing.assert_allclose(gradients[x], 3 * 2.0**2)
    np.testing.assert_allclose(gradients[y], 2.0**3 * np.log(2.0))


def test_pow_base_zero_gives_exponent_gradient_zero() -> None:
    x, y = Parameter([0.0, 0.0]), Parameter([2.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gradients = backprop((x**y).sum())
    np.testing.assert_array_equal(gradients[y], [0.0, 0.0])
    np.testing.assert_array_equal(gradients[x], [0.0, 0.0])


def test_pow_negative_base_gives_nan_exponent_gradient() -> None:
    x, y = Parameter([-2.0, 2.0]), Parameter([3.0, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        z = x**y
        gradients = backprop(z.sum())
    np.testing.assert_allclose(z.value, [-8.0, 8.0])
    assert np.isnan(gradients[y][0])
    np.testing.assert_allclose(gradients[y][1], 8.0 * np.log(2.0))
    # The base's gradient is exact for a negative base: d(x^3)/dx = 3 x^2.
    np.testing.assert_allclose(gradients[x], [12.0, 12.0])


def test_pow_negative_base_with_integer_exponent_checks_numerically() -> None:
    # An integer exponent is not differentiable, so numeric_test only checks the base.
    z = Pow(Parameter([-2.0, -0.5, 1.5]), Input(np.array([3, 2, 4])))
    numeric_test(z)
    numeric_test(z, order=2)


def test_pow_reflected_and_constant_exponent() -> None:
    x = Parameter([1.0, 2.0])
    z = 2**x
    assert type(z.operation) is Pow
    np.testing.assert_allclose(backprop(z.sum())[x], 2.0 ** x.value * np.log(2.0))
    np.testing.assert_allclose(backprop((x**2).sum())[x], 2 * x.value)


# --------------------------------------------------------------------------- MatMul
MATMUL_SHAPES = [
    ((4,), (4,)),  # 1-D . 1-D
    ((4,), (4, 3)),  # 1-D . 2-D
    ((4,), (5, 4, 3)),  # 1-D . N-D
    ((2, 4), (4,)),  # 2-D . 1-D
    ((5, 2, 4), (4,)),  # N-D . 1-D
    ((2, 4), (4, 3)),  # 2-D . 2-D
    ((1, 2, 4), (5, 4, 3)),  # broadcast batch axes
    ((5, 2, 4), (1, 4, 3)),
    ((5, 2, 4), (4, 3)),
    ((2, 4), (5, 4, 3)),
    ((3, 1, 2, 4), (5, 4, 3)),
    ((1, 1), (1, 1)),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=ids)
def test_matmul_gradient(shapes: tuple[tuple[int, ...], tuple[int, ...]], rng: np.random.Generator) -> None:
    x = Parameter(rng.normal(size=shapes[0]))
    y = Parameter(rng.normal(size=shapes[1]))
    z = x @ y
    np.testing.assert_allclose(z.value, x.value @ y.value)
    numeric_test(z)
    numeric_test(z, order=2)
    gradients = backprop((z * rng.normal(size=z.shape)).sum())
    assert gradients[x].shape == shapes[0]
    assert gradients[y].shape == shapes[1]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES, ids=ids)
def test_matmul_skips_unneeded_products(shapes: tuple[tuple[int, ...], tuple[int, ...]], rng: np.random.Generator) -> None:
    x = Parameter(rng.normal(size=shapes[0]))
    y = Parameter(rng.normal(size=shapes[1]))
    loss = (x @ y).sum()
    full = backprop(loss)
    only_y = backprop(loss, variables=[y])
    only_x = backprop(loss, variables=[x])
    assert list(only_y) == [y] and list(only_x) == [x]
    np.testing.assert_allclose(only_y[y], full[y])
    np.testing.assert_allclose(only_x[x], full[x])


def test_matmul_with_ndarray_on_the_left(rng: np.random.Generator) -> None:
    a = rng.normal(size=(2, 3))
    v = Parameter(rng.normal(size=(3, 4)))
    z = a @ v
    assert type(z.operation) is MatMul
    np.testing.assert_allclose(backprop(z.sum())[v], a.T @ np.ones((2, 4)))


# ---------------------------------------------------------------------- Sum and Mean
AXES = [None, 0, 1, -1, (0, 1), (0, -1), -2]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("operation", [Sum, Mean], ids=lambda c: c.__name__)
def test_reduction_gradient(operation: type, axis: object, keepdims: bool, rng: np.random.Generator) -> None:
    for shape in [(3, 2), (2, 3, 4)]:
        x = Parameter(rng.normal(size=shape))
        z = operation(x, axis=axis, keepdims=keepdims)
        expected = (np.sum if operation is Sum else np.mean)(x.value, axis=axis, keepdims=keepdims)
        assert z.shape == expected.shape
        np.testing.assert_allclose(z.value, expected)
        numeric_test(z)
        numeric_test(z, order=2)


@pytest.mark.parametrize("operation", [Sum, Mean], ids=lambda c: c.__name__)
def test_reduction_of_scalar_and_vector(operation: type, rng: np.random.Generator) -> None:
    numeric_test(operation(Parameter(1.5)))
    numeric_test(operation(Parameter(1.5)), order=2)
    numeric_test(operation(Parameter(rng.normal(size=4)), axis=0))
    numeric_test(operation(Parameter(rng.normal(size=4)), axis=0), order=2)
    numeric_test(operation(Parameter(rng.normal(size=4)), axis=-1, keepdims=True))
    numeric_test(operation(Parameter(rng.normal(size=4)), axis=-1, keepdims=True), order=2)


def test_mean_gradient_by_hand() -> None:
    x = Parameter(np.ones((2, 5)))
    np.testing.assert_allclose(backprop(x.mean())[x], np.full((2, 5), 0.1))
    np.testing.assert_allclose(backprop(x.mean(axis=1).sum())[x], np.full((2, 5), 0.2))


# ------------------------------------------------------------------------- GetItem
INDICES = {
    "int": 1,
    "negative int": -1,
    "slice": slice(1, None),
    "step slice": slice(None, None, 2),
    "tuple of slices": (slice(0, 2), slice(None)),
    "int and slice": (2, slice(None, 1)),
    "ellipsis": (Ellipsis, 0),
    "newaxis": (slice(None), None, 1),
    "int array": np.array([0, 2]),
    "repeated int array": np.array([0, 0, 2, 0]),
    "list": [1, 1],
    "two int arrays": (np.array([0, 0, 3]), np.array([1, 1, 0])),
    "boolean mask rows": np.array([True, False, True, True]),
    "boolean mask elements": np.array([[True, False], [False, False], [True, True], [False, True]]),
}


@pytest.mark.parametrize("name", list(INDICES))
def test_getitem_gradient(name: str, rng: np.random.Generator) -> None:
    index = INDICES[name]
    x = Parameter(rng.normal(size=(4, 2)))
    z = x[index]
    np.testing.assert_allclose(z.value, x.value[index])
    numeric_test(z)
    numeric_test(z, order=2)


def test_getitem_repeated_indices_accumulate() -> None:
    x = Parameter([10.0, 20.0, 30.0])
    z = GetItem(x, index=np.array([0, 0, 2, 0]))
    np.testing.assert_array_equal(backprop(z.sum())[x], [3.0, 0.0, 1.0])
    weights = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(backprop((z * weights).sum())[x], [7.0, 0.0, 3.0])


def test_getitem_boolean_mask_gradient() -> None:
    x = Parameter([[1.0, -2.0], [-3.0, 4.0]])
    z = x[x.value > 0]
    np.testing.assert_array_equal(z.value, [1.0, 4.0])
    np.testing.assert_array_equal(backprop((z * np.array([5.0, 7.0])).sum())[x], [[5.0, 0.0], [0.0, 7.0]])


# ---------------------------------------------------------------- Reshape, Transpose
@pytest.mark.parametrize(
    ("shape", "new_shape"),
    [((6,), (2, 3)), ((3, 2), (-1,)), ((), (1, 1)), ((2, 3, 4), (4, 6)), ((1,), ())],
    ids=str,
)
def test_reshape_gradient(shape: tuple[int, ...], new_shape: tuple[int, ...], rng: np.random.Generator) -> None:
    x = Parameter(rng.normal(size=shape))
    z = Reshape(x, shape=new_shape)
    np.testing.assert_allclose(z.value, np.reshape(x.value, new_shape))
    numeric_test(z)
    numeric_test(z, order=2)
    assert backprop((z * rng.normal(size=z.shape)).sum())[x].shape == shape


@pytest.mark.parametrize(
    ("shape", "axes"),
    [((3,), None), ((3, 2), None), ((2, 3, 4), None), ((2, 3, 4), (1, 2, 0)), ((2, 3, 4), (2, 0, 1)), ((3, 2), (0, 1))],
    ids=str,
)
def test_transpose_gradient(shape: tuple[int, ...], axes: tuple[int, ...] | None, rng: np.random.Generator) -> None:
    x = Parameter(rng.normal(size=shape))
    z = Transpose(x, axes=axes)
    np.testing.assert_allclose(z.value, np.transpose(x.value, axes))
    numeric_test(z)
    numeric_test(z, order=2)
    weights = rng.normal(size=z.shape)
    np.testing.assert_allclose(backprop((z * weights).sum())[x], np.transpose(weights, np.argsort(axes) if axes else None))


@pytest.mark.parametrize("axes", [(-1, 0, 1), (2, -3, 1), (-2, -1, -3)])
def test_transpose_with_negative_axes(rng: np.random.Generator, axes: tuple[int, ...]) -> None:
    # A square shape: a wrong inverse permutation would still have the right shape.
    numeric_test(Transpose(Parameter(rng.normal(size=(3, 3, 3))), axes=axes))
    numeric_test(Transpose(Parameter(rng.normal(size=(3, 3, 3))), axes=axes), order=2)
    numeric_test(Transpose(Parameter(rng.normal(size=(2, 3, 4))), axes=axes))
    numeric_test(Transpose(Parameter(rng.normal(size=(2, 3, 4))), axes=axes), order=2)


def test_pow_skips_the_exponent_gradient_when_nobody_needs_it(rng: np.random.Generator) -> None:
    x = Parameter(rng.normal(size=(3, 2)))
    gradients = backprop((x ** 2).sum(), [x])
    np.testing.assert_allclose(gradients[x], 2 * x.value)


# ------------------------------------------- Where, BroadcastTo and ScatterAdd
@pytest.mark.parametrize("pair", PAIRS, ids=ids)
def test_where_gradient(pair: tuple[tuple[int, ...], tuple[int, ...]], rng: np.random.Generator) -> None:
    x = Parameter(rng.normal(size=pair[0]))
    y = Parameter(rng.normal(size=pair[1]))
    condition = rng.random(np.broadcast_shapes(*pair)) < 0.5
    z = Where(x, y, condition=condition)
    np.testing.assert_array_equal(z.value, np.where(condition, x.value, y.value))
    numeric_test(z)
    numeric_test(z, order=2)


@pytest.mark.parametrize(
    ("shape", "target"), [((), (3,)), ((2,), (3, 2)), ((3, 1), (3, 4)), ((1, 2), (5, 3, 2))], ids=str
)
def test_broadcast_to_gradient(shape: tuple[int, ...], target: tuple[int, ...], rng: np.random.Generator) -> None:
    x = Parameter(rng.normal(size=shape))
    z = BroadcastTo(x, shape=target)
    np.testing.assert_array_equal(z.value, np.broadcast_to(x.value, target))
    numeric_test(z)
    numeric_test(z, order=2)


@pytest.mark.parametrize("name", list(INDICES))
def test_scatter_add_is_the_gradient_of_getitem(name: str, rng: np.random.Generator) -> None:
    index = INDICES[name]
    values = np.zeros((4, 2))[index]
    x = Parameter(rng.normal(size=values.shape))
    z = ScatterAdd(x, index=index, shape=(4, 2))
    expected = np.zeros((4, 2))
    np.add.at(expected, index, x.value)
    np.testing.assert_allclose(z.value, expected)
    numeric_test(z)
    numeric_test(z, order=2)


def test_maximum_gives_a_tie_to_its_first_input() -> None:
    x, y = Parameter([1.0, 2.0]), Parameter([1.0, 3.0])
    gradients = backprop(Maximum(x, y).sum())
    np.testing.assert_array_equal(gradients[x], [1.0, 0.0])
    np.testing.assert_array_equal(gradients[y], [0.0, 1.0])


def test_abs_has_slope_zero_at_zero() -> None:
    x = Parameter([-2.0, 0.0, 3.0])
    np.testing.assert_array_equal(backprop(abs(x).sum())[x], [-1.0, 0.0, 1.0])
