"""The gradient checkers: numeric_gradient, numeric_test and check_gradients."""

from __future__ import annotations

import re

import numpy as np
import pytest

from autodiff import (
    GradientCheckError,
    Input,
    Operation,
    Parameter,
    ReLU,
    Sigmoid,
    check_gradients,
    numeric_gradient,
    numeric_test,
)


class WrongMul(Operation):
    """Multiplication whose gradient for ``y`` is wrong (``y`` instead of ``x``)."""

    def apply(self, x, y):  # type: ignore[no-untyped-def]
        def grad(gz):  # type: ignore[no-untyped-def]
            return gz * y, gz * y

        self.grad = grad
        return x * y


class ForgetsBroadcast(Operation):
    """Addition that returns a correct-shape but wrong gradient for a broadcast ``y``."""

    def apply(self, x, y):  # type: ignore[no-untyped-def]
        def grad(gz):  # type: ignore[no-untyped-def]
            return gz, np.broadcast_to(gz, np.broadcast_shapes(np.shape(gz), y.shape))[0]

        self.grad = grad
        return x + y


# --------------------------------------------------------------------- numeric_gradient
def test_numeric_gradient_of_a_cubic_and_x_restored(rng: np.random.Generator) -> None:
    x = rng.normal(size=(3, 2))
    before = x.copy()
    gradient = numeric_gradient(lambda a: np.sum(a**3), x)
    np.testing.assert_allclose(gradient, 3 * before**2, rtol=1e-6)
    np.testing.assert_array_equal(x, before)
    assert gradient.dtype == np.float64 and gradient.shape == (3, 2)


def test_numeric_gradient_of_a_scalar() -> None:
    x = np.array(2.0)
    np.testing.assert_allclose(numeric_gradient(lambda a: float(a) ** 2, x, eps=1e-5), 4.0)


# ------------------------------------------------------------------------- numeric_test
def test_numeric_test_passes_for_a_correct_operation(rng: np.random.Generator) -> None:
    numeric_test(Parameter(rng.normal(size=(3, 2))) * Parameter(rng.normal(size=2)))


def test_numeric_test_failure_message() -> None:
    x, y = Parameter(3.0), Parameter(4.0)
    z = WrongMul(x, y)
    with pytest.raises(GradientCheckError) as info:
        numeric_test(z, eps=1e-6, rtol=1e-5, atol=1e-8, seed=0)
    message = str(info.value)
    # The output gradient numeric_test draws with seed 0; analytic is gz * y, numeric gz * x.
    gz = float(np.random.default_rng(0).normal(size=()))
    assert "WrongMul" in message
    assert "input 1 of shape ()" in message
    assert "element ()" in message
    analytic = float(re.search(r"analytic \(from grad\):\s+(\S+)", message).group(1))  # type: ignore[union-attr]
    numeric = float(re.search(r"numeric \(central differences\):\s+(\S+)", message).group(1))  # type: ignore[union-attr]
    assert analytic == pytest.approx(4.0 * gz, rel=1e-12)
    assert numeric == pytest.approx(3.0 * gz, rel=1e-6)
    assert "atol + rtol * |numeric| = 1e-08 + 1e-05" in message
    assert "eps = 1e-06" in message
    for cause in ["Usual causes", "broadcast", "kink", "ReLU", "step eps", "float32", "wrong formula"]:
        assert cause in message, cause
    assert isinstance(info.value, AssertionError)  # so plain pytest reports it as a failed check


def test_numeric_test_names_the_worst_element(rng: np.random.Generator) -> None:
    x = Parameter(rng.normal(size=(2, 3)))
    y = Parameter(np.ones((2, 3)))
    y.value[1, 2] = 100.0  # where y differs from x most, the wrong gradient differs most
    x.value[1, 2] = 0.0
    with pytest.raises(GradientCheckError, match=re.escape("WrongMul, input 1 of shape (2, 3), element (1, 2)")):
        numeric_test(WrongMul(x, y))


def test_numeric_test_catches_a_wrong_broadcast_gradient() -> None:
    z = ForgetsBroadcast(Parameter(np.zeros((4, 2))), Parameter(np.zeros(2)))
    with pytest.raises(GradientCheckError, match=r"ForgetsBroadcast, input 1 of shape \(2,\)"):
        numeric_test(z)


def test_numeric_test_skips_integer_inputs() -> None:
    # Labels, indices and masks are not differentiable; WrongMul's wrong gradient is for y.
    numeric_test(WrongMul(Parameter([1.0, 2.0]), Input(np.array([3, 4]))))


def test_numeric_test_leaves_the_variable_alone(rng: np.random.Generator) -> None:
    x = Parameter(rng.normal(size=3).astype(np.float32))
    z = Sigmoid(x)
    grad_before, value_before = z.operation.grad, z.value.copy()
    numeric_test(z, rtol=1e-4)
    assert z.operation.grad is grad_before
    np.testing.assert_array_equal(z.value, value_before)
    assert x.dtype == np.float32


def test_numeric_test_needs_an_operation() -> None:
    with pytest.raises(TypeError, match="numeric_test.*no operation"):
        numeric_test(Parameter(1.0))


def test_numeric_test_at_relu_kink_fails_with_a_hint() -> None:
    with pytest.raises(GradientCheckError, match="kink"):
        numeric_test(ReLU(Parameter(0.0)))


# ---------------------------------------------------------------------- check_gradients
def test_check_gradients_passes_through_a_whole_graph(rng: np.random.Generator) -> None:
    w = Parameter(rng.normal(size=(3, 2)))
    b = Parameter(rng.normal(size=2))
    x = rng.normal(size=(4, 3))
    check_gradients(lambda: (Sigmoid(x @ w + b) ** 2).mean(), [w, b])


def test_check_gradients_catches_a_wrong_gradient_and_restores_parameters(rng: np.random.Generator) -> None:
    w = Parameter(rng.normal(size=(3, 2)).astype(np.float32))
    b = Parameter(rng.normal(size=2))
    originals = [w.value, b.value]
    copies = [w.value.copy(), b.value.copy()]
    x = rng.normal(size=(4, 3))

    def loss() -> Parameter:
        hidden = Sigmoid(x @ w)
        return WrongMul(hidden, b).sum()  # wrong gradient for b, deep inside the graph

    with pytest.raises(GradientCheckError) as info:
        check_gradients(loss, [w, b])
    assert "parameter 1 (Parameter of shape (2,)) through the whole graph" in str(info.value)
    # The parameters have their very arrays back, unchanged, float32 included.
    assert w.value is originals[0] and b.value is originals[1]
    assert w.value.dtype == np.float32
    for value, copy in zip(originals, copies):
        np.testing.assert_array_equal(value, copy)


def test_check_gradients_restores_parameters_on_success() -> None:
    w = Parameter(np.array([1.0, 2.0], dtype=np.float32))
    original = w.value
    check_gradients(lambda: (w * w).sum(), [w], rtol=1e-4)
    assert w.value is original


def test_check_gradients_restores_parameters_when_the_function_raises() -> None:
    w = Parameter([1.0, 2.0])
    original = w.value

    def broken() -> Parameter:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        check_gradients(broken, [w])
    assert w.value is original


def test_check_gradients_unreached_parameter_has_zero_gradient() -> None:
    w, unused = Parameter([1.0, 2.0]), Parameter([3.0])
    check_gradients(lambda: (w * 3.0).sum(), [w, unused])
