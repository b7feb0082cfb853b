"""The engine: variables, operations, topological order, backprop and their errors."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from autodiff.core import get_variables
from autodiff import (
    MSE,
    Add,
    Input,
    MatMul,
    Mul,
    Operation,
    Parameter,
    ReLU,
    Sum,
    Variable,
    backprop,
    topological_order,
    unbroadcast,
)


# ------------------------------------------------------------------ the exercise graphs
def test_exercise_1_graph() -> None:
    x, gamma = Parameter(7.0), Parameter(5.0)
    h = ReLU(x)
    z = x * gamma
    J = h + z
    np.testing.assert_allclose(J.value, 42.0)
    gradients = backprop(J)
    # dJ/dx = ReLU'(7) + gamma = 1 + 5, dJ/dgamma = x = 7; h and z pass 1 through the sum.
    assert float(gradients[x]) == 6.0
    assert float(gradients[gamma]) == 7.0
    assert float(gradients[h]) == 1.0
    assert float(gradients[z]) == 1.0
    assert float(gradients[J]) == 1.0
    assert J.backprop()[x] == gradients[x]


@pytest.mark.parametrize(("b_value", "J_value"), [(-1.0, 121.0), (-3.0, 49.0)])
def test_exercise_2_graph(b_value: float, J_value: float) -> None:
    x, w, b, y = Parameter(5.0), Parameter(2.0), Parameter(b_value), Parameter(7.0)
    v = x * w
    z = v + b
    h = ReLU(z)
    y_hat = h + z
    J = MSE(y_hat, y)
    np.testing.assert_allclose(J.value, J_value)
    gradients = backprop(J)
    # By hand: y_hat = 2 (x w + b) while z > 0, J = (y_hat - y)^2.
    residual = 2 * (5.0 * 2.0 + b_value) - 7.0
    g_y_hat = 2 * residual
    g_z = g_y_hat * (1 + 1)  # directly and through ReLU (slope 1 since z > 0)
    expected = {
        J: 1.0,
        y_hat: g_y_hat,
        y: -g_y_hat,
        h: g_y_hat,
        z: g_z,
        b: g_z,
        v: g_z,
        x: g_z * 2.0,
        w: g_z * 5.0,
    }
    assert set(gradients) == set(expected)
    for variable, value in expected.items():
        assert float(gradients[variable]) == pytest.approx(value), variable
    if b_value == -1.0:
        assert (float(gradients[x]), float(gradients[w]), float(gradients[b])) == (88.0, 220.0, 44.0)


def test_reused_subexpression() -> None:
    x = Parameter(3.0)
    s = x * x  # used three times
    J = s * s + s
    # J = x^4 + x^2, dJ/dx = 4 x^3 + 2 x
    np.testing.assert_allclose(J.value, 90.0)
    gradients = backprop(J)
    np.testing.assert_allclose(gradients[x], 4 * 27 + 6)
    np.testing.assert_allclose(gradients[s], 2 * 9 + 1)


def test_diamond() -> None:
    x = Parameter(2.0)
    a = x * 3.0
    b = x + 1.0
    J = a * b
    # J = 3x (x + 1), dJ/dx = 6x + 3
    gradients = backprop(J)
    np.testing.assert_allclose(gradients[x], 15.0)
    np.testing.assert_allclose(gradients[a], 3.0)
    np.testing.assert_allclose(gradients[b], 6.0)


def test_variable_used_several_times_gets_the_sum() -> None:
    x = Parameter([1.0, 2.0])
    J = (x + x + x * 2.0 + 5.0 * x).sum()
    np.testing.assert_allclose(backprop(J)[x], [9.0, 9.0])
    y = Parameter(4.0)
    np.testing.assert_allclose(backprop(y * y)[y], 8.0)  # the same input twice in one operation


def test_deep_chain_of_100000_operations() -> None:
    x = Parameter(0.5)
    a, c = 1.00001, 0.001
    y = x
    for _ in range(50_000):  # two operations per step
        y = y * a + c
    order = topological_order(y)  # iterative and linear: 200,001 variables, no RecursionError
    assert len(order) == 1 + 50_000 * 4  # x, and per step: two constants and two results
    assert order[0] is x and order[-1] is y
    gradients = backprop(y)
    # y = a^n x + c (a^n - 1) / (a - 1), so dy/dx = a^n.
    np.testing.assert_allclose(gradients[x], a**50_000, rtol=1e-9)
    np.testing.assert_allclose(y.value, a**50_000 * 0.5 + c * (a**50_000 - 1) / (a - 1), rtol=1e-9)


# ------------------------------------------------------------------------- backprop
def test_backprop_needs_a_scalar_loss() -> None:
    x = Parameter(np.ones((2, 3)))
    with pytest.raises(ValueError, match=re.escape("(2, 3)")) as info:
        backprop(x * 2)
    assert "sum()" in str(info.value)
    with pytest.raises(ValueError, match=re.escape("(2, 3)")):
        (x * 2).backprop()


def test_backprop_rejects_a_non_variable() -> None:
    with pytest.raises(TypeError, match="backprop"):
        backprop(np.float64(1.0))  # type: ignore[arg-type]


def test_backprop_twice_gives_the_same_fresh_dict(rng: np.random.Generator) -> None:
    x = Parameter(rng.normal(size=(3, 2)))
    w = Parameter(rng.normal(size=(2,)))
    J = ((x * w + x) ** 2).sum()
    first = backprop(J)
    second = backprop(J)
    assert first is not second
    assert list(first) == list(second)
    for variable in first:
        np.testing.assert_array_equal(first[variable], second[variable])
    first[x] = np.zeros(3)  # the caller may change its dict without affecting the next call
    np.testing.assert_array_equal(backprop(J)[x], second[x])


def test_backprop_covers_every_variable_with_its_shape(rng: np.random.Generator) -> None:
    x = Parameter(rng.normal(size=(4, 3)))
    w = Parameter(rng.normal(size=(3, 2)))
    b = Parameter(rng.normal(size=(2,)))
    J = ReLU(x @ w + b).mean() + (b * 2.0).sum()
    gradients = backprop(J)
    order = topological_order(J)
    assert set(gradients) == set(order)
    assert next(iter(gradients)) is J
    for variable in order:
        assert gradients[variable].shape == variable.shape, variable


def test_backprop_with_variables_returns_only_those(rng: np.random.Generator) -> None:
    x = Parameter(rng.normal(size=(4, 3)))
    w = Parameter(rng.normal(size=(3, 2)))
    unused = Parameter(np.ones((5,), dtype=np.float32))
    hidden = x @ w
    J = (hidden * hidden).sum()
    full = backprop(J)
    subset = backprop(J, variables=[w, unused, hidden])
    assert list(subset) == [w, unused, hidden]
    np.testing.assert_allclose(subset[w], full[w])
    np.testing.assert_allclose(subset[hidden], full[hidden])
    np.testing.assert_array_equal(subset[unused], np.zeros(5))
    assert subset[unused].shape == (5,)
    # Accepts any iterable, and gives the same again.
    again = backprop(J, variables=iter([w]))
    np.testing.assert_allclose(again[w], full[w])


def test_float32_graph_stays_float32() -> None:
    x = Parameter(np.array([1.0, 2.0], dtype=np.float32))
    y = x * 0.5
    assert y.dtype == np.float32
    z = (y + 1 - 2.0 / (x + 3)) ** 2
    assert z.dtype == np.float32
    J = z.sum()
    assert J.dtype == np.float32
    gradients = backprop(J)
    for variable in topological_order(J):
        if variable.dtype.kind == "f":
            assert gradients[variable].dtype == np.float32, variable
    assert backprop(J, variables=[x])[x].dtype == np.float32


# ------------------------------------------------------------------ topological order
def recursive_order(variable: Variable) -> list[Variable]:
    """The exercise's recursive get_variables (quadratic, limited by recursion)."""
    all_variables: list[Variable] = []

    def recursive_call(variable: Variable) -> None:
        if variable.operation is not None:
            for input_variable in variable.operation.args:
                if not any(input_variable is seen for seen in all_variables):
                    recursive_call(input_variable)
        all_variables.append(variable)

    recursive_call(variable)
    return all_variables


def random_dag(rng: np.random.Generator, size: int) -> Variable:
    pool: list[Variable] = [Parameter(rng.normal()) for _ in range(rng.integers(1, 4))]
    for _ in range(size):
        operation = [Add, Mul, ReLU, MSE][rng.integers(4)]
        if operation is ReLU:
            pool.append(ReLU(pool[rng.integers(len(pool))]))
        else:
            # Favour recent nodes, so the graph gets deep, and allow the same input twice.
            a = pool[len(pool) - 1 - min(rng.geometric(0.4) - 1, len(pool) - 1)]
            b = pool[rng.integers(len(pool))]
            pool.append(operation(a, b))
    return pool[-1]


@pytest.mark.parametrize("seed", range(30))
def test_topological_order_matches_the_exercise(seed: int) -> None:
    rng = np.random.default_rng(seed)
    J = random_dag(rng, int(rng.integers(1, 40)))
    order = topological_order(J)
    reference = recursive_order(J)
    assert [id(v) for v in order] == [id(v) for v in reference]
    # Each variable once, inputs before the operations that use them.
    assert len({id(v) for v in order}) == len(order)
    position = {id(v): i for i, v in enumerate(order)}
    for variable in order:
        if variable.operation is not None:
            for argument in variable.operation.args:
                assert position[id(argument)] < position[id(variable)]
    assert order[-1] is J
    assert get_variables(J) == order


def test_topological_order_of_exercise_1() -> None:
    x, gamma = Parameter(7.0), Parameter(5.0)
    h = ReLU(x)
    z = x * gamma
    J = h + z
    assert topological_order(J) == [x, h, gamma, z, J]


def test_topological_order_of_a_leaf_and_errors() -> None:
    x = Parameter(1.0)
    assert topological_order(x) == [x]
    with pytest.raises(TypeError, match="topological_order"):
        topological_order(3.0)  # type: ignore[arg-type]


# --------------------------------------------------------------- Variable and leaves
def test_parameter_copies_and_converts_integers() -> None:
    data = np.array([1, 2, 3])
    p = Parameter(data)
    assert p.dtype == np.float64
    data[0] = 100
    assert p.value[0] == 1.0
    floats = np.array([1.0, 2.0])
    q = Parameter(floats)
    floats[0] = 5.0
    assert q.value[0] == 1.0
    assert Parameter(np.float32(1.0)).dtype == np.float32
    assert Parameter(True).dtype == np.float64


def test_variable_attributes() -> None:
    v = Input(np.zeros((2, 3, 4), dtype=np.float32))
    assert (v.shape, v.ndim, v.dtype, v.size, len(v)) == ((2, 3, 4), 3, np.float32, 24, 2)
    assert v.operation is None
    assert isinstance(v.value, np.ndarray)
    assert isinstance(Variable(3).value, np.ndarray)
    w = Parameter(1.0) + 2
    assert isinstance(w.value, np.ndarray) and isinstance(w.operation, Add)
    assert isinstance(w.operation.args[1], Input)


def test_truth_value_is_ambiguous() -> None:
    with pytest.raises(TypeError, match=r"\.value"):
        bool(Parameter(1.0))


def test_variables_are_hashable_by_identity() -> None:
    a, b = Parameter(1.0), Parameter(1.0)
    assert len({a, b}) == 2
    assert a != b and a == a


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (lambda a, v: a + v, lambda a, v: a + v),
        (lambda a, v: a - v, lambda a, v: a - v),
        (lambda a, v: a * v, lambda a, v: a * v),
        (lambda a, v: a / v, lambda a, v: a / v),
        (lambda a, v: a**v, lambda a, v: a**v),
        (lambda a, v: 2**v, lambda a, v: 2**v),
        (lambda a, v: 2.0 - v, lambda a, v: 2.0 - v),
        (lambda a, v: 3 / v, lambda a, v: 3 / v),
        (lambda a, v: np.float64(2.0) * v, lambda a, v: 2.0 * v),
    ],
)
def test_ndarray_or_number_on_the_left_gives_a_variable(expression: Any, expected: Any) -> None:
    a = np.array([1.0, 2.0, 3.0])
    v = Parameter([0.5, 1.5, 2.5])
    result = expression(a, v)
    assert isinstance(result, Variable)
    assert result.operation is not None
    np.testing.assert_allclose(result.value, expected(a, v.value))
    x = backprop(result.sum())[v]
    assert x.shape == (3,)


def test_ndarray_matmul_on_the_left_gives_a_variable() -> None:
    v = Parameter(np.ones(3))
    result = np.ones((2, 3)) @ v
    assert isinstance(result, Variable) and isinstance(result.operation, MatMul)
    np.testing.assert_allclose(result.value, [3.0, 3.0])


def test_repr_short_for_large_arrays() -> None:
    assert repr(Parameter(3.0)) == "Parameter(3.0)"
    assert repr(Parameter([1.0, 2.0])) == "Parameter([1., 2.])"
    big = Parameter(np.zeros((100, 100)))
    assert repr(big) == "Parameter(array(shape=(100, 100), dtype=float64))"
    assert repr(big * 2) == "Variable(array(shape=(100, 100), dtype=float64), <Mul>)"
    assert len(repr(Input(np.zeros(10**6)))) < 80


# ------------------------------------------------------------------------ unbroadcast
@pytest.mark.parametrize(
    ("gradient_shape", "shape"),
    [((3, 2), (2,)), ((3, 2), (3, 1)), ((3, 2), ()), ((4, 3, 2), (3, 1)), ((3, 2), (3, 2)), ((), (3, 2)), ((2,), (3, 2))],
    ids=str,
)
def test_unbroadcast_sums_back_to_the_shape(gradient_shape: tuple[int, ...], shape: tuple[int, ...], rng: np.random.Generator) -> None:
    gradient = rng.normal(size=gradient_shape)
    result = unbroadcast(gradient, shape)
    assert result.shape == shape
    # Summing a broadcast gradient is the adjoint of broadcasting: <g, bcast(u)> = <unbroadcast(g), u>.
    u = rng.normal(size=shape)
    target = np.broadcast_shapes(gradient_shape, shape)
    lhs = np.sum(np.broadcast_to(gradient, target) * np.broadcast_to(u, target))
    if target == gradient_shape:
        np.testing.assert_allclose(lhs, np.sum(result * u))
    else:  # a gradient smaller than the input (a scalar for a matrix) is broadcast up to it
        np.testing.assert_array_equal(result, np.broadcast_to(gradient, shape))


def test_unbroadcast_rejects_foreign_shapes() -> None:
    with pytest.raises(ValueError, match=re.escape("(4,)")):
        unbroadcast(np.ones((3, 4)), (3,))


# -------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name", ["Add", "Sub", "Mul", "Div", "Pow", "MSE"])
def test_binary_operation_on_incompatible_shapes(name: str) -> None:
    import autodiff

    operation = getattr(autodiff, name)
    x, y = Parameter(np.ones((3, 2))), Parameter(np.ones(3))
    with pytest.raises(ValueError) as info:
        operation(x, y)
    message = str(info.value)
    assert name in message and "(3, 2)" in message and "(3,)" in message
    assert "broadcast" in message


def test_operator_on_incompatible_shapes() -> None:
    with pytest.raises(ValueError, match=r"Add.*\(2, 3\).*\(4,\)"):
        Parameter(np.ones((2, 3))) + np.ones(4)


@pytest.mark.parametrize(
    ("shape_x", "shape_y"),
    [((2, 3), (4, 5)), ((3,), (4,)), ((2, 3), (2,)), ((3,), (2, 4)), ((2, 2, 3), (3, 3, 4))],
    ids=str,
)
def test_matmul_mismatch_names_both_shapes(shape_x: tuple[int, ...], shape_y: tuple[int, ...]) -> None:
    with pytest.raises(ValueError) as info:
        Parameter(np.ones(shape_x)) @ Parameter(np.ones(shape_y))
    message = str(info.value)
    assert "MatMul" in message and str(shape_x) in message and str(shape_y) in message


@pytest.mark.parametrize(("shape_x", "shape_y"), [((), (3,)), ((3,), ()), ((), ())], ids=str)
def test_matmul_rejects_0d_operands(shape_x: tuple[int, ...], shape_y: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="MatMul") as info:
        MatMul(Parameter(np.ones(shape_x)), Parameter(np.ones(shape_y)))
    assert "Mul" in str(info.value) and "at least one axis" in str(info.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Parameter(1.0) + "a",
        lambda: Add("abc", Parameter(1.0)),
        lambda: Parameter(1.0) * np.array([1, None], dtype=object),
        lambda: Parameter("abc"),
        lambda: Input(np.array([object()])),
        lambda: Variable(["a", "b"]),
    ],
    ids=["str operand", "str first", "object array", "Parameter(str)", "Input(object)", "Variable(str)"],
)
def test_non_numeric_input_is_a_type_error(make: Any) -> None:
    with pytest.raises(TypeError, match="numeric"):
        make()


def test_operation_names_itself_for_non_numeric_input() -> None:
    with pytest.raises(TypeError, match="^Mul: "):
        Parameter(1.0) * "a"


def test_variable_as_keyword_is_a_type_error() -> None:
    x = Parameter(np.ones((2, 3)))
    with pytest.raises(TypeError) as info:
        Sum(x, axis=Parameter(0.0))
    message = str(info.value)
    assert "Sum" in message and "axis=" in message and "positional" in message


class ReturnsObjects(Operation):
    def apply(self, x):  # type: ignore[no-untyped-def]
        self.grad = lambda gz: (gz,)
        return np.array([object(), "x"], dtype=object)


class ReturnsNothing(Operation):
    def apply(self, x):  # type: ignore[no-untyped-def]
        self.grad = lambda gz: (gz,)


def test_apply_returning_objects_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="ReturnsObjects") as info:
        ReturnsObjects(Parameter(1.0))
    assert "object" in str(info.value)
    with pytest.raises(TypeError, match="ReturnsNothing"):
        ReturnsNothing(Parameter(1.0))


class NoApply(Operation):
    pass


class NoGrad(Operation):
    def apply(self, x):  # type: ignore[no-untyped-def]
        return 2 * x


def test_subclass_without_apply() -> None:
    with pytest.raises(NotImplementedError, match="NoApply") as info:
        NoApply(Parameter(1.0))
    assert "apply" in str(info.value)


def test_subclass_without_grad_fails_at_backprop() -> None:
    x = Parameter(1.0)
    y = NoGrad(x)  # the forward pass works
    assert float(y.value) == 2.0
    with pytest.raises(NotImplementedError, match="NoGrad") as info:
        backprop(y)
    assert "self.grad = grad" in str(info.value)
    with pytest.raises(NotImplementedError, match="NoGrad"):
        backprop(y, variables=[x])


class BadGrad(Operation):
    """Multiplies; ``mode`` chooses what its grad returns wrongly."""

    def apply(self, x, y, mode="ok"):  # type: ignore[no-untyped-def]
        def grad(gz):  # type: ignore[no-untyped-def]
            if mode == "list":
                return [gz * y, gz * x]
            if mode == "bare":
                return gz * y
            if mode == "one":
                return (gz * y,)
            if mode == "three":
                return gz * y, gz * x, gz
            if mode == "shape":
                return np.ones(7), gz * x
            if mode == "none":
                return gz * y, None
            return gz * y, gz * x

        self.grad = grad
        return x * y


@pytest.mark.parametrize(
    ("mode", "error", "pattern"),
    [
        ("list", TypeError, r"BadGrad\.grad returned an object of type list.*tuple"),
        ("bare", TypeError, r"BadGrad\.grad returned an object of type (ndarray|float64).*trailing comma"),
        ("one", TypeError, r"BadGrad\.grad returned 1 gradients.*2 positional"),
        ("three", TypeError, r"BadGrad\.grad returned 3 gradients.*2 positional"),
        ("shape", ValueError, r"BadGrad\.grad returned a gradient of shape \(7,\) for input 0, which has shape"),
        ("none", TypeError, r"BadGrad\.grad returned None for input 1, which needs a gradient"),
    ],
)
@pytest.mark.parametrize("shape", [(), (3,)], ids=str)
def test_grad_returning_the_wrong_thing_names_the_operation(
    mode: str, error: type, pattern: str, shape: tuple[int, ...]
) -> None:
    if mode == "shape" and shape == ():
        shape = (3,)  # a scalar may have been broadcast to (7,), so that gradient is summed
    x, y = Parameter(np.ones(shape)), Parameter(np.ones(shape))
    J = BadGrad(x, y, mode=mode).sum()
    with pytest.raises(error, match=pattern):
        backprop(J)
    with pytest.raises(error, match=pattern):
        backprop(J, variables=[x, y])


def test_grad_of_broadcast_shape_is_accepted() -> None:
    x, y = Parameter(np.ones(3)), Parameter(np.ones(3))
    gradients = backprop(BadGrad(x, y).sum())
    np.testing.assert_array_equal(gradients[x], np.ones(3))


def test_backprop_refuses_variables_that_are_not_variables() -> None:
    w = Parameter([1.0, 2.0])
    loss = (w * w).sum()
    with pytest.raises(TypeError, match=r"backprop: variables must be Variables.*ndarray"):
        backprop(loss, [np.ones(2)])


def test_a_matmul_batch_error_keeps_its_own_message() -> None:
    with pytest.raises(ValueError, match=r"MatMul cannot multiply .* batch axes"):
        Parameter(np.ones((2, 3, 4))) @ Parameter(np.ones((5, 4, 3)))


def test_a_variable_as_index_is_used_by_its_value() -> None:
    x = Parameter([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(x[Input(np.array([0, 2]))].value, [1.0, 3.0])


def test_a_leaf_made_from_a_variable_says_to_pass_its_value() -> None:
    with pytest.raises(TypeError, match=r"Parameter got a Parameter.*\.value"):
        Parameter(Parameter(1.0))
