"""Gradients of gradients (create_graph), vector-Jacobian products, and no_grad."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest

from autodiff import (
    GradientCheckError,
    Input,
    Operation,
    Parameter,
    Tanh,
    Variable,
    backprop,
    check_gradients,
    is_grad_enabled,
    no_grad,
    numeric_test,
)
from autodiff.nn import Linear, ReLU, Sequential, Sigmoid, cross_entropy, mlp, predict
from autodiff.ops import detach


# ----------------------------------------------------------------- create_graph
def test_without_create_graph_gradients_are_arrays() -> None:
    x = Parameter([1.0, 2.0])
    gradient = backprop((x * x).sum(), [x])[x]
    assert type(gradient) is np.ndarray


def test_with_create_graph_gradients_are_variables_with_the_same_values(rng: np.random.Generator) -> None:
    model = Sequential(Linear(3, 5, seed=0, dtype=np.float64), Sigmoid(), Linear(5, 4, seed=1, dtype=np.float64))
    x = rng.normal(size=(6, 3))
    labels = np.array([0, 1, 2, 3, 0, 1])
    loss = cross_entropy(model(x), labels)
    plain = backprop(loss, model.parameters())
    recorded = backprop(loss, model.parameters(), create_graph=True)
    for parameter in model.parameters():
        assert isinstance(recorded[parameter], Variable)
        assert recorded[parameter].operation is not None
        np.testing.assert_allclose(recorded[parameter].value, plain[parameter], rtol=1e-12)


def tanh_derivatives(t: float) -> list[float]:
    """d^k/dx^k tanh x for k = 1..6, as polynomials in t = tanh x (by hand)."""
    return [
        1 - t**2,
        -2 * t + 2 * t**3,
        -2 + 8 * t**2 - 6 * t**4,
        16 * t - 40 * t**3 + 24 * t**5,
        16 - 136 * t**2 + 240 * t**4 - 120 * t**6,
        -272 * t + 1232 * t**3 - 1680 * t**5 + 720 * t**7,
    ]


@pytest.mark.parametrize("x0", [-1.3, 0.0, 0.4, 2.0])
def test_six_derivatives_of_tanh(x0: float) -> None:
    x = Parameter(x0)
    derivative: Variable = Tanh(x)
    found = []
    for _ in range(6):
        derivative = backprop(derivative, [x], create_graph=True)[x]
        found.append(float(derivative.value))
    np.testing.assert_allclose(found, tanh_derivatives(np.tanh(x0)), rtol=1e-10, atol=1e-12)


def test_hessian_vector_product_matches_the_full_hessian(rng: np.random.Generator) -> None:
    w = Parameter(rng.normal(size=4))
    A = rng.normal(size=(5, 4))

    def loss() -> Variable:
        return (Tanh(A @ w) ** 2).sum()

    v = rng.normal(size=4)
    gradient = backprop(loss(), [w], create_graph=True)[w]
    hvp = backprop((gradient * v).sum(), [w])[w]
    hessian = np.stack([backprop(backprop(loss(), [w], create_graph=True)[w][i], [w])[w] for i in range(4)])
    np.testing.assert_allclose(hessian, hessian.T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hvp, hessian @ v, rtol=1e-10, atol=1e-12)


def test_check_gradients_second_order_through_a_network(rng: np.random.Generator) -> None:
    model = mlp(3, 4, 2, seed=0, dtype=np.float64)
    x = rng.normal(size=(5, 3))
    labels = np.array([0, 1, 1, 0, 1])
    check_gradients(lambda: cross_entropy(model(x), labels), model.parameters(), order=2)


class DetachedSquare(Operation):
    """x * x whose gradient is right, but treats x as a constant: wrong second order."""

    def apply(self, x):  # type: ignore[no-untyped-def]
        def grad(gz):  # type: ignore[no-untyped-def]
            return gz * 2 * detach(x),

        self.grad = grad
        return x * x


def test_second_order_check_names_the_operation_that_disagrees() -> None:
    z = DetachedSquare(Parameter([1.0, -2.0]))
    numeric_test(z)  # first order is right
    with pytest.raises(GradientCheckError, match=r"DetachedSquare, input 0 of shape \(2,\), second order"):
        numeric_test(z, order=2)


class NumpyExp(Operation):
    """Written with np.exp: fine for first order, cannot record its gradient."""

    def apply(self, x):  # type: ignore[no-untyped-def]
        z = np.exp(x)

        def grad(gz):  # type: ignore[no-untyped-def]
            return gz * z,

        self.grad = grad
        return z


def test_an_operation_written_with_numpy_functions_says_how_to_support_create_graph() -> None:
    x = Parameter(1.0)
    np.testing.assert_allclose(backprop(NumpyExp(x))[x], np.e)
    with pytest.raises(TypeError, match=r"NumpyExp\.apply cannot run on Variables.*ops\.exp"):
        backprop(NumpyExp(x), [x], create_graph=True)


def test_gradient_of_an_unused_variable_is_a_zero_variable_with_create_graph() -> None:
    x, unused = Parameter(2.0), Parameter([1.0, 2.0])
    gradients = backprop(x * x, [x, unused], create_graph=True)
    assert isinstance(gradients[unused], Variable)
    np.testing.assert_array_equal(gradients[unused].value, [0.0, 0.0])


# ------------------------------------------------------- vector-Jacobian products
def test_output_gradient_gives_the_vector_jacobian_product(rng: np.random.Generator) -> None:
    A = rng.normal(size=(3, 4))
    x = Parameter(rng.normal(size=4))
    v = rng.normal(size=3)
    y = Tanh(A @ x)
    jacobian = (1 - np.tanh(A @ x.value) ** 2)[:, None] * A
    np.testing.assert_allclose(backprop(y, [x], output_gradient=v)[x], v @ jacobian, rtol=1e-12)


def test_output_gradient_must_have_the_output_shape() -> None:
    y = Parameter([1.0, 2.0]) * 2.0
    with pytest.raises(ValueError, match=r"output_gradient has shape \(3,\), but the output has shape \(2,\)"):
        backprop(y, output_gradient=np.ones(3))


# ------------------------------------------------------------------------ no_grad
def test_no_grad_records_nothing() -> None:
    w = Parameter([1.0, 2.0])
    with no_grad():
        assert not is_grad_enabled()
        y = (w * w).sum()
    assert is_grad_enabled()
    assert type(y) is Variable and y.operation is None
    np.testing.assert_allclose(y.value, 5.0)


def test_no_grad_is_restored_after_an_error() -> None:
    with pytest.raises(RuntimeError):
        with no_grad():
            raise RuntimeError("boom")
    assert is_grad_enabled()


def test_no_grad_belongs_to_one_thread() -> None:
    """predict in one thread must not stop another thread's training from recording."""
    entered, done = threading.Event(), threading.Event()
    recorded: list[bool] = []

    def other() -> None:
        entered.wait()
        recorded.append((Parameter(1.0) * 2.0).operation is not None)
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    with no_grad():
        entered.set()
        done.wait()
    thread.join()
    assert recorded == [True]


def test_memory_does_not_grow_across_100_inference_batches(rng: np.random.Generator) -> None:
    model = mlp(784, 256, 10, seed=0)
    batch = rng.random((100, 784), dtype=np.float32)
    predict(model, batch)  # warm-up: one-off allocations
    tracemalloc.start()
    kept = []
    with no_grad():
        for _ in range(100):
            kept.append(model(batch).value.copy())  # the logits are all we keep
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    logits_bytes = sum(k.nbytes for k in kept)
    # Without the graph, a batch's hidden activations (100 x 256 floats, 100 kB)
    # are freed when the batch is done; the only growth is the kept logits.
    assert current < logits_bytes + 200_000
    assert peak < current + 4 * 100 * 256 * 4


def test_the_same_batches_with_a_graph_keep_their_activations(rng: np.random.Generator) -> None:
    model = Sequential(Linear(784, 256, seed=0), ReLU(), Linear(256, 10, seed=1))
    batch = rng.random((100, 784), dtype=np.float32)
    tracemalloc.start()
    outputs = [model(batch) for _ in range(10)]  # recorded: each keeps its graph
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert current > 10 * 100 * 256 * 4  # every batch's hidden activations are alive
    del outputs


def test_create_graph_records_even_inside_no_grad() -> None:
    x = Parameter(2.0)
    y = x**3
    with no_grad():
        dx = backprop(y, [x], create_graph=True)[x]
    assert dx.operation is not None
    np.testing.assert_allclose(backprop(dx, [x])[x], 12.0)  # d/dx 3x^2 = 6x


class CopyingReLU(Operation):
    """The exercise's ReLU, whose grad copies gz: a method arrays have and Variables do not."""

    def apply(self, x):  # type: ignore[no-untyped-def]
        z = np.maximum(x, 0) if isinstance(x, np.ndarray) else x * (x > 0)

        def grad(gz):  # type: ignore[no-untyped-def]
            gx = gz.copy()
            gx[x < 0] = 0
            return gx,

        self.grad = grad
        return z


def test_a_grad_that_cannot_run_on_variables_says_what_to_do() -> None:
    x = Parameter([-1.0, 2.0])
    np.testing.assert_array_equal(backprop(CopyingReLU(x).sum(), [x])[x], [0.0, 1.0])
    with pytest.raises(TypeError, match=r"CopyingReLU\.grad cannot run on Variables.*autodiff\.ops"):
        backprop(CopyingReLU(x).sum(), [x], create_graph=True)


def test_numpy_functions_refuse_a_variable_instead_of_building_object_arrays() -> None:
    p = Parameter([1.0, -2.0])
    for function in (np.asarray, lambda v: np.where(np.array([True, False]), 0.0, v)):
        with pytest.raises(TypeError, match="NumPy cannot use a Variable as an array.*ops.where"):
            function(p)


class WhereReLU(Operation):
    """ReLU whose grad uses np.where, as the exercise's MyReLU may: fine for first order."""

    def apply(self, x):  # type: ignore[no-untyped-def]
        z = np.maximum(x, 0) if isinstance(x, np.ndarray) else x * (x > 0)

        def grad(gz):  # type: ignore[no-untyped-def]
            return np.where(x < 0, 0.0, gz),

        self.grad = grad
        return z


def test_numpy_where_in_grad_is_fine_for_first_order_and_refused_for_second() -> None:
    x = Parameter([-1.0, 2.0])
    gradient = backprop(WhereReLU(x).sum(), [x])[x]
    assert gradient.dtype == np.float64
    np.testing.assert_array_equal(gradient, [0.0, 1.0])
    with pytest.raises(TypeError, match=r"WhereReLU\.grad cannot run on Variables"):
        backprop(WhereReLU(x).sum(), [x], create_graph=True)
