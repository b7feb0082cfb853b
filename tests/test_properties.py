"""Property-based tests: random expression graphs against finite differences.

Hypothesis draws a recipe: leaves of mutually broadcastable shapes, then a
sequence of operations, each taking its inputs from everything computed so far
(so sub-expressions are reused). The recipe is replayed by a function of the
parameters, and check_gradients compares backprop with central differences.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

from autodiff import (
    Add,
    Div,
    Exp,
    MatMul,
    Mul,
    Parameter,
    Sigmoid,
    Sub,
    Sum,
    Tanh,
    Variable,
    backprop,
    check_gradients,
    topological_order,
)

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,  # the same examples on every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# name -> (number of inputs, function of the input variables and settings)
STEPS: dict[str, Callable[..., Variable]] = {
    "add": lambda a, b: Add(a, b),
    "sub": lambda a, b: Sub(a, b),
    "mul": lambda a, b: Mul(a, b),
    "div": lambda a, b: Div(a, Add(2.0, Tanh(b))),  # the denominator stays in [1, 3]
    "exp": lambda a: Exp(Tanh(a)),
    "tanh": lambda a: Tanh(a),
    "sigmoid": lambda a: Sigmoid(a),
    "sum": lambda a, axis, keepdims: Sum(a, axis=axis, keepdims=keepdims),
    "matmul": lambda a, b: MatMul(a, b),
}


def broadcastable(*shapes: tuple[int, ...]) -> bool:
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        return False
    return True


def matmul_fits(x: tuple[int, ...], y: tuple[int, ...]) -> bool:
    if not x or not y:
        return False
    inner = y[-2] if len(y) > 1 else y[0]
    return x[-1] == inner and broadcastable(x[:-2], y[:-2])


@st.composite
def recipes(draw: st.DrawFn) -> tuple[list[np.ndarray], list[tuple[Any, ...]]]:
    """Leaf values and a list of steps ``(name, input positions, settings)``."""
    count = draw(st.integers(1, 3))
    shapes = draw(mutually_broadcastable_shapes(num_shapes=count, max_dims=3, max_side=3)).input_shapes
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    values = [rng.uniform(-1.5, 1.5, size=shape) for shape in shapes]
    pool_shapes = [tuple(s) for s in shapes]
    steps: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(1, 8))):
        name = draw(st.sampled_from([*sorted(STEPS), "matmul"]))  # matmul twice as likely
        a = draw(st.integers(0, len(pool_shapes) - 1))
        sa = pool_shapes[a]
        if name in ("add", "sub", "mul", "div"):
            b = draw(st.integers(0, len(pool_shapes) - 1))  # may be a again
            if broadcastable(sa, pool_shapes[b]):
                steps.append((name, (a, b), {}))
                pool_shapes.append(np.broadcast_shapes(sa, pool_shapes[b]))
                continue
            name = "tanh"
        if name == "matmul":
            operands = [i for i, shape in enumerate(pool_shapes) if shape]  # not 0-d
            if operands:
                a = draw(st.sampled_from(operands))
                sa = pool_shapes[a]
            partners = [b for b, sb in enumerate(pool_shapes) if matmul_fits(sa, sb)]
            if partners:
                b = draw(st.sampled_from(partners))
            elif sa:
                # No variable fits: make a new parameter that does.
                columns = draw(st.sampled_from([(), (1,), (2,), (3,)]))
                shape = (sa[-1], *columns)
                values.append(rng.uniform(-1.5, 1.5, size=shape))
                steps.append(("leaf", (len(values) - 1,), {}))
                pool_shapes.append(shape)
                b = len(pool_shapes) - 1
            else:
                name = "sigmoid"
            if name == "matmul":
                steps.append((name, (a, b), {}))
                pool_shapes.append(np.matmul(np.zeros(sa), np.zeros(pool_shapes[b])).shape)
                continue
        if name == "sum":
            axis = draw(st.one_of(st.none(), st.integers(-len(sa), len(sa) - 1))) if sa else None
            keepdims = draw(st.booleans())
            steps.append((name, (a,), {"axis": axis, "keepdims": keepdims}))
            pool_shapes.append(np.sum(np.zeros(sa), axis=axis, keepdims=keepdims).shape)
            continue
        steps.append((name, (a,), {}))
        pool_shapes.append(sa)
    return values, steps


def replay(parameters: list[Parameter], steps: list[tuple[Any, ...]], weights: np.random.Generator | None = None) -> Variable:
    """Build the graph of ``steps`` and reduce its last result to a weighted sum."""
    leaves = len(parameters) - sum(1 for step in steps if step[0] == "leaf")
    pool: list[Variable] = list(parameters[:leaves])
    for name, inputs, options in steps:
        if name == "leaf":
            pool.append(parameters[inputs[0]])
        else:
            pool.append(STEPS[name](*[pool[i] for i in inputs], **options))
    last = pool[-1]
    # Fixed weights make every element of the result matter differently.
    w = np.linspace(-1.0, 1.3, num=max(last.size, 1)).reshape(last.shape)
    return (last * w).sum()


@SETTINGS
@given(recipes())
def test_random_graphs_match_finite_differences(recipe: tuple[list[np.ndarray], list[tuple[Any, ...]]]) -> None:
    values, steps = recipe
    parameters = [Parameter(v) for v in values]
    check_gradients(lambda: replay(parameters, steps), parameters, rtol=1e-4, atol=1e-6)


@SETTINGS
@given(recipes())
def test_random_graphs_gradient_shapes_and_subsets(recipe: tuple[list[np.ndarray], list[tuple[Any, ...]]]) -> None:
    values, steps = recipe
    parameters = [Parameter(v) for v in values]
    loss = replay(parameters, steps)
    full = backprop(loss)
    for variable in topological_order(loss):
        assert full[variable].shape == variable.shape
    subset = backprop(loss, variables=parameters)
    assert list(subset) == list(dict.fromkeys(parameters))
    for p in parameters:
        expected = full[p] if p in full else np.zeros(p.shape)
        np.testing.assert_allclose(subset[p], expected, rtol=1e-12, atol=1e-14)
    # A second call gives the same.
    again = backprop(loss)
    for variable in full:
        np.testing.assert_array_equal(again[variable], full[variable])
