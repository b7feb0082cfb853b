"""The gradient checkers: numeric_gradient, numeric_test and check_gradients."""

from __future__ import annotations

import re
import warnings

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


# ---------------------------------------------------------------------------- diagnosis
# A failing check compares all the analytic gradients with the numeric ones and names
# the usual mistake that explains them. Each wrong operation below is one a student
# might write.


def _failure(check, *args, **kwargs) -> str:  # type: ignore[no-untyped-def]
    """The message of the GradientCheckError that ``check(*args, **kwargs)`` raises."""
    with pytest.raises(GradientCheckError) as info:
        check(*args, **kwargs)
    return str(info.value)


def _diagnosis(message: str) -> str:
    """The 'Likely mistake' part of a message, on one line; '' if there is none."""
    lines = message.splitlines()
    assert lines[0].startswith("Gradient check failed for ")
    if not lines[1].startswith("  Likely mistake"):
        return ""
    end = next(i for i, line in enumerate(lines) if line.startswith("  analytic (from grad):"))
    for line in lines[1:end]:
        assert line.count("`") % 2 == 0, f"a `code span` is broken across lines: {line!r}"
    return " ".join(line.strip() for line in lines[1:end])


class SwappedMul(Operation):
    """The build-it-yourself Mul with its two gradients in each other's place."""

    def apply(self, x, y):  # type: ignore[no-untyped-def]
        def grad(gz):  # type: ignore[no-untyped-def]
            return gz * x, gz * y  # should be gz * y, gz * x

        self.grad = grad
        return x * y


def test_swapped_gradients_are_named_first() -> None:
    message = _failure(numeric_test, SwappedMul(Parameter(123.0), Parameter(-100.0)))
    lines = message.splitlines()
    assert lines[0] == "Gradient check failed for SwappedMul, input 0 of shape (), element ():"
    assert lines[1] == "  Likely mistake:"
    diagnosis = _diagnosis(message)
    assert "gradients of inputs 0 and 1 are swapped" in diagnosis
    assert "In SwappedMul.grad, return one gradient per input, in the order" in diagnosis
    assert "broadcast" not in diagnosis  # the shapes are equal: nothing was summed to compare
    # The numbers and the usual causes are still there, after the diagnosis.
    assert "analytic (from grad):" in message and "Usual causes:" in message


def test_swapped_gradients_of_inputs_that_broadcast() -> None:
    # (3, 2) and (2,): the engine sums the swapped (3, 2) gradient over axis 0 for y,
    # so the two are compared as sums over axis 0.
    x = Parameter([[1.0, -2.0], [0.5, 3.0], [2.0, 1.0]])
    y = Parameter([4.0, -1.5])
    diagnosis = _diagnosis(_failure(numeric_test, SwappedMul(x, y)))
    assert "gradients of inputs 0 and 1 are swapped" in diagnosis
    assert "after summing over the axes where one was broadcast" in diagnosis


def test_swapped_gradients_in_a_graph_name_the_parameters(rng: np.random.Generator) -> None:
    w, v = Parameter(rng.normal(size=3)), Parameter(rng.normal(size=3))
    x = rng.normal(size=3)
    diagnosis = _diagnosis(_failure(check_gradients, lambda: (SwappedMul(w, v) * x).sum(), [w, v]))
    assert "gradients of parameters 0 and 1 are swapped" in diagnosis
    assert "In the grad of an operation in the graph, return one gradient per input" in diagnosis


class SubLikeAdd(Operation):
    """Subtraction whose grad forgets the minus sign of the second input."""

    def apply(self, x, y):  # type: ignore[no-untyped-def]
        def grad(gz):  # type: ignore[no-untyped-def]
            return gz, gz  # should be gz, -gz

        self.grad = grad
        return x - y


def test_flipped_sign_is_named(rng: np.random.Generator) -> None:
    x, y = Parameter(rng.normal(size=3)), Parameter(rng.normal(size=3))
    message = _failure(numeric_test, SubLikeAdd(x, y))
    assert "input 1 of shape (3,)" in message.splitlines()[0]  # input 0 passes
    diagnosis = _diagnosis(message)
    assert diagnosis.startswith(
        "Likely mistake: The sign is flipped for input 1: `analytic = -numeric` everywhere."
    )
    assert "input 0" not in diagnosis


def test_flipped_sign_of_a_single_number_is_named() -> None:
    # -1 is not fitted to the data, so one element is evidence enough.
    diagnosis = _diagnosis(_failure(numeric_test, SubLikeAdd(Parameter(2.0), Parameter(5.0))))
    assert "The sign is flipped for input 1" in diagnosis


def test_swapped_sub_fits_two_descriptions_and_names_both() -> None:
    class SwappedSub(Operation):
        def apply(self, x, y):  # type: ignore[no-untyped-def]
            def grad(gz):  # type: ignore[no-untyped-def]
                return -gz, gz

            self.grad = grad
            return x - y

    # Swapped and both signs flipped give the same numbers (and the same fix): say both.
    message = _failure(numeric_test, SwappedSub(Parameter([1.0, 2.0]), Parameter([3.0, 5.0])))
    assert message.splitlines()[1] == "  Likely mistakes:"
    diagnosis = _diagnosis(message)
    assert "gradients of inputs 0 and 1 are swapped" in diagnosis
    assert "The sign is flipped for input 0" in diagnosis
    assert "The sign is flipped for input 1" in diagnosis


class HalfSquare(Operation):
    """x * x with the factor 2 of its derivative forgotten."""

    def apply(self, x):  # type: ignore[no-untyped-def]
        def grad(gz):  # type: ignore[no-untyped-def]
            return gz * x,  # should be gz * 2 * x

        self.grad = grad
        return x * x


def test_constant_factor_is_named_with_its_value() -> None:
    diagnosis = _diagnosis(_failure(numeric_test, HalfSquare(Parameter([1.0, -3.0, 2.0]))))
    assert "Off by a constant factor for input 0: `analytic = 1/2 * numeric` everywhere." in diagnosis
    assert "In HalfSquare.grad, a factor is missing or too many" in diagnosis
    assert "kink" not in diagnosis  # the remark about kinks is for a factor 2 only


class BatchMean(Operation):
    """The mean over the batch axis 0, with the division by the batch size forgotten."""

    def apply(self, x):  # type: ignore[no-untyped-def]
        n = x.shape[0]

        def grad(gz):  # type: ignore[no-untyped-def]
            return np.broadcast_to(gz, x.shape),  # should be divided by n

        self.grad = grad
        return x.sum(axis=0) / n


def test_factor_of_the_batch_size_is_named(rng: np.random.Generator) -> None:
    diagnosis = _diagnosis(_failure(numeric_test, BatchMean(Parameter(rng.normal(size=(4, 3))))))
    assert "`analytic = 4 * numeric` everywhere" in diagnosis
    assert "batch size" in diagnosis


def test_mean_of_all_elements_is_a_factor_not_a_sum() -> None:
    # All numeric values are equal (1/6 of the scalar output gradient), so "constant, the
    # sum of the numeric gradient" would fit too; the sum is not named, the factor 6 is.
    class MeanWithoutCount(Operation):
        def apply(self, x):  # type: ignore[no-untyped-def]
            def grad(gz):  # type: ignore[no-untyped-def]
                return np.broadcast_to(gz, x.shape),  # should be divided by x.size

            self.grad = grad
            return x.mean()

    x = Parameter(np.arange(6.0).reshape(2, 3))
    diagnosis = _diagnosis(_failure(numeric_test, MeanWithoutCount(x)))
    assert "`analytic = 6 * numeric` everywhere" in diagnosis
    assert "Summed" not in diagnosis


def test_common_factor_of_scalar_parameters_through_a_graph() -> None:
    # Each parameter is a single number, which fits any factor; together, with different
    # values, they pin the batch size 4 down.
    class MSEWithoutCount(Operation):
        def apply(self, prediction, target):  # type: ignore[no-untyped-def]
            difference = prediction - target

            def grad(gz):  # type: ignore[no-untyped-def]
                return gz * 2 * difference, -gz * 2 * difference  # should be divided by the size

            self.grad = grad
            return (difference * difference).mean()

    w, b = Parameter(0.5), Parameter(-0.3)
    x, y = np.array([1.0, 2.0, -1.0, 0.5]), np.array([0.2, 1.0, -0.4, 0.7])
    diagnosis = _diagnosis(_failure(check_gradients, lambda: MSEWithoutCount(x * w + b, y), [w, b]))
    assert "Off by a constant factor for parameters 0 and 1: `analytic = 4 * numeric`" in diagnosis


def test_factor_two_mentions_the_kink() -> None:
    # Every element on ReLU's kink: analytic 1, numeric 1/2. The data say "factor 2",
    # and the message says that a kink gives the same numbers.
    diagnosis = _diagnosis(_failure(numeric_test, ReLU(Parameter(np.zeros(3)))))
    assert "`analytic = 2 * numeric` everywhere" in diagnosis
    assert "kink" in diagnosis


class MatMulTransposedY(Operation):
    """A matrix product whose gradient for y multiplies in the wrong order."""

    def apply(self, x, y):  # type: ignore[no-untyped-def]
        def grad(gz):  # type: ignore[no-untyped-def]
            return gz @ y.T, gz.T @ x  # should be x.T @ gz; fits y's shape only if y is square

        self.grad = grad
        return x @ y


def test_transposed_gradient_is_named(rng: np.random.Generator) -> None:
    x, y = Parameter(rng.normal(size=(3, 2))), Parameter(rng.normal(size=(2, 2)))
    message = _failure(numeric_test, MatMulTransposedY(x, y))
    assert "input 1 of shape (2, 2)" in message.splitlines()[0]
    diagnosis = _diagnosis(message)
    assert diagnosis.startswith("Likely mistake: The gradient of input 1 is transposed:")
    assert "`gz.T @ x` is its transpose" in diagnosis


def test_transposed_gradient_in_a_graph(rng: np.random.Generator) -> None:
    x, w = rng.normal(size=(4, 2)), Parameter(rng.normal(size=(2, 2)))
    message = _failure(check_gradients, lambda: (MatMulTransposedY(x, w) ** 2).sum(), [w])
    diagnosis = _diagnosis(message)
    assert "The gradient of parameter 0 is transposed" in diagnosis
    assert "In the grad of an operation in the graph, transpose it" in diagnosis


def test_transposed_sum_gradient_is_named(rng: np.random.Generator) -> None:
    # Sum over axis 1 whose grad forgets to put the summed axis back: gz of shape (3,)
    # broadcasts along the wrong axis of a square input, without any shape error.
    class RowSum(Operation):
        def apply(self, x):  # type: ignore[no-untyped-def]
            def grad(gz):  # type: ignore[no-untyped-def]
                return np.broadcast_to(gz, x.shape),  # should be gz.reshape(-1, 1)

            self.grad = grad
            return x.sum(axis=1)

    diagnosis = _diagnosis(_failure(numeric_test, RowSum(Parameter(rng.normal(size=(3, 3))))))
    assert "The gradient of input 0 is transposed" in diagnosis


class ScaleSummingY(Operation):
    """x * y whose gradient for y is summed, as if y were always a scalar."""

    def apply(self, x, y):  # type: ignore[no-untyped-def]
        def grad(gz):  # type: ignore[no-untyped-def]
            return gz * y, (gz * x).sum()  # right only if y was a scalar

        self.grad = grad
        return x * y


def test_summed_gradient_is_named(rng: np.random.Generator) -> None:
    # The chapter's exercise: shapes (3,) and (); then (3,) and (3,), which fails.
    numeric_test(ScaleSummingY(Parameter(rng.normal(size=3)), Parameter(2.0)))
    x, y = Parameter(rng.normal(size=3)), Parameter(rng.normal(size=3))
    message = _failure(numeric_test, ScaleSummingY(x, y))
    diagnosis = _diagnosis(message)
    assert "Summed where one value per element was due, for input 1" in diagnosis
    assert "the same number, the sum of all of numeric" in diagnosis


def test_sum_without_keepdims_is_named_as_summed(rng: np.random.Generator) -> None:
    # y of shape (3, 1) is broadcast along axis 1; summing over it without keepdims gives
    # shape (3,), which the engine lines up with y's last axis: it sums it all and
    # broadcasts the total back.
    class ColumnScale(Operation):
        def apply(self, x, y):  # type: ignore[no-untyped-def]
            def grad(gz):  # type: ignore[no-untyped-def]
                return gz * y, (gz * x).sum(axis=1)  # should have keepdims=True

            self.grad = grad
            return x * y

    x, y = Parameter(rng.normal(size=(3, 4))), Parameter(rng.normal(size=(3, 1)))
    diagnosis = _diagnosis(_failure(numeric_test, ColumnScale(x, y)))
    assert "Summed where one value per element was due, for input 1" in diagnosis
    assert "`.sum(axis=1)` without `keepdims=True`" in diagnosis


def test_sum_over_one_axis_is_named_with_the_axis(rng: np.random.Generator) -> None:
    # y has the full shape (2, 3), but grad sums over axis 0 as if y were a broadcast bias.
    class ScaleSummingRows(Operation):
        def apply(self, x, y):  # type: ignore[no-untyped-def]
            def grad(gz):  # type: ignore[no-untyped-def]
                return gz * y, (gz * x).sum(axis=0, keepdims=True)

            self.grad = grad
            return x * y

    x, y = Parameter(rng.normal(size=(2, 3))), Parameter(rng.normal(size=(2, 3)))
    diagnosis = _diagnosis(_failure(numeric_test, ScaleSummingRows(x, y)))
    assert "analytic = numeric summed over axis 0 and repeated along it" in diagnosis


class AddBiasMean(Operation):
    """x + b for a bias b broadcast over the batch, its gradient averaged instead of summed."""

    def apply(self, x, b):  # type: ignore[no-untyped-def]
        def grad(gz):  # type: ignore[no-untyped-def]
            return gz, gz.mean(axis=tuple(range(gz.ndim - b.ndim)))  # should be the sum

        self.grad = grad
        return x + b


def test_broadcast_axes_not_summed_are_named(rng: np.random.Generator) -> None:
    x, b = Parameter(rng.normal(size=(4, 3))), Parameter(rng.normal(size=3))
    message = _failure(numeric_test, AddBiasMean(x, b))
    assert "input 1 of shape (3,)" in message.splitlines()[0]
    diagnosis = _diagnosis(message)
    assert diagnosis.startswith("Likely mistake: Broadcast axes not summed for input 1:")
    assert "used each of its elements 4 times" in diagnosis
    assert "`analytic = numeric / 4`, their mean" in diagnosis
    assert "Off by a constant factor" not in diagnosis  # the same numbers, said once


def test_broadcast_axes_not_summed_for_a_scalar_bias() -> None:
    # One number, but the 12 uses are not fitted: they come from the shapes.
    x = Parameter(np.arange(12.0).reshape(4, 3))
    diagnosis = _diagnosis(_failure(numeric_test, AddBiasMean(x, Parameter(0.5))))
    assert "used each of its elements 12 times" in diagnosis


# ------------------------------------------------------------ the diagnosis stays silent


def test_a_wrong_formula_gets_the_usual_causes_only(rng: np.random.Generator) -> None:
    class ExpWithWrongGrad(Operation):
        def apply(self, x):  # type: ignore[no-untyped-def]
            def grad(gz):  # type: ignore[no-untyped-def]
                return gz * x,  # should be gz * exp(x)

            self.grad = grad
            return np.exp(x)

    message = _failure(numeric_test, ExpWithWrongGrad(Parameter(rng.normal(size=(2, 3)))))
    assert "Likely mistake" not in message
    assert message.splitlines()[1].startswith("  analytic (from grad):")
    assert "Usual causes:" in message and "wrong formula" in message


def test_one_number_fits_any_factor_so_none_is_named() -> None:
    # Scalars: analytic / numeric is some number, which proves nothing.
    assert "Likely mistake" not in _failure(numeric_test, HalfSquare(Parameter(3.0)))
    # ReLU at its kink: the book's example, whose ratio 2 comes from the kink.
    assert "Likely mistake" not in _failure(numeric_test, ReLU(Parameter(0.0)))
    # The test above with WrongMul: a copy of input 0's gradient for input 1 is no pattern here.
    assert "Likely mistake" not in _failure(numeric_test, WrongMul(Parameter(3.0), Parameter(4.0)))


def test_a_factor_that_misses_the_tolerance_is_not_named() -> None:
    class AlmostHalfSquare(Operation):
        def apply(self, x):  # type: ignore[no-untyped-def]
            def grad(gz):  # type: ignore[no-untyped-def]
                return gz * x * (1 + 1e-3 * x),  # 1/2 * numeric only to three digits

            self.grad = grad
            return x * x

    message = _failure(numeric_test, AlmostHalfSquare(Parameter([1.0, -3.0, 2.0])))
    assert "Likely mistake" not in message


def test_zero_gradients_name_nothing() -> None:
    # A grad that returns zeros: neither a factor (0) nor a sum, even though the numeric
    # gradient of x - mean(x) sums to zero over every axis.
    class CenterWithZeroGrad(Operation):
        def apply(self, x):  # type: ignore[no-untyped-def]
            def grad(gz):  # type: ignore[no-untyped-def]
                return np.zeros_like(x),

            self.grad = grad
            return x - x.mean()

    message = _failure(numeric_test, CenterWithZeroGrad(Parameter([[1.0, 2.0], [0.5, -1.0]])))
    assert "Likely mistake" not in message


def test_diagnose_on_degenerate_data() -> None:
    from autodiff.check import _diagnose

    def diagnose(analytic: list[object], numeric: list[object]) -> list[str]:
        a = {k: np.asarray(v, dtype=np.float64) for k, v in enumerate(analytic)}
        n = {k: np.asarray(v, dtype=np.float64) for k, v in enumerate(numeric)}
        return _diagnose(a, n, rtol=1e-5, atol=1e-8)

    # Passing inputs are not diagnosed; numeric zero where analytic is not fits nothing.
    assert diagnose([[1.0, 2.0], [5.0, 1.0]], [[1.0, 2.0], [0.0, 0.0]]) == []
    # All-equal values, both sides: the factor 3 is named (the sum of numeric is 3 times it too).
    findings = diagnose([[3.0, 3.0, 3.0]], [[1.0, 1.0, 1.0]])
    assert len(findings) == 1
    assert findings[0].startswith("Off by a constant factor for input 0: `analytic = 3 * numeric`")
    # A 1 x 1 matrix is its own transpose; a failing one is never "transposed".
    assert diagnose([[[2.0]]], [[[1.5]]]) == []
    # An antisymmetric numeric gradient: its transpose is its negative, and both are said.
    numeric = np.array([[0.0, 2.0], [-2.0, 0.0]])
    findings = diagnose([numeric.T], [numeric])
    assert [f.split(":")[0] for f in findings] == [
        "The sign is flipped for input 0",
        "The gradient of input 0 is transposed",
    ]
    # nan and inf fit nothing, and warn about nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert diagnose([[np.nan, 1.0], [np.inf, -np.inf]], [[1.0, 2.0], [1.0, 2.0]]) == []
        assert diagnose([[1.0, 2.0], [3.0, 4.0]], [[np.nan, 2.0], [np.inf, -np.inf]]) == []


def test_factors_read_as_written_and_near_one_is_precision() -> None:
    from autodiff.check import _diagnose, _readable_factor

    assert [_readable_factor(c, 1e-5) for c in (2.0, -3.0, 0.25, -0.5, 1.5, 0.3517)] == [
        "2", "-3", "1/4", "-1/2", "1.5", "0.3517"
    ]
    # analytic 0.05 % above numeric fails the check, but is no factor to look for in grad.
    numeric = np.array([1.0, -2.0, 3.0])
    assert _diagnose({0: numeric * 1.0005}, {0: numeric}, rtol=1e-5, atol=1e-8) == []
    assert _diagnose({0: numeric * -1.0005}, {0: numeric}, rtol=1e-5, atol=1e-8) == []


def test_second_order_diagnosis(rng: np.random.Generator) -> None:
    # x ** 3 whose grad detaches one factor x: the first order is right, the second is half.
    class CubeDetachingX(Operation):
        def apply(self, x):  # type: ignore[no-untyped-def]
            from autodiff.ops import detach

            def grad(gz):  # type: ignore[no-untyped-def]
                return 3 * gz * x * detach(x),  # d/dx sees only one x: 3x instead of 6x

            self.grad = grad
            return x * x * x

    x = Parameter(rng.normal(size=3))
    numeric_test(CubeDetachingX(x))
    message = _failure(numeric_test, CubeDetachingX(x), order=2)
    assert "input 0 of shape (3,), second order" in message.splitlines()[0]
    assert "`analytic = 1/2 * numeric` everywhere" in _diagnosis(message)
    w = Parameter(rng.normal(size=3))
    message = _failure(check_gradients, lambda: CubeDetachingX(w).sum(), [w], order=2)
    diagnosis = _diagnosis(message)
    assert "Off by a constant factor for parameter 0: `analytic = 1/2 * numeric`" in diagnosis


SHAPES = [(), (3,), (3, 2), (1, 2), (2, 2), (2, 3, 3)]


@pytest.mark.parametrize("shape", SHAPES)
def test_unrelated_or_nearly_matching_gradients_are_not_diagnosed(shape: tuple[int, ...]) -> None:
    from autodiff.check import _diagnose

    rng = np.random.default_rng(7)
    numeric = {0: rng.normal(size=shape), 1: rng.normal(size=shape)}
    unrelated = {0: rng.normal(size=shape), 1: rng.normal(size=shape)}
    assert _diagnose(unrelated, numeric, rtol=1e-5, atol=1e-8, uses={0: 4, 1: 4}) == []
    # Each pattern, off by 0.1 % up and down (so no factor explains it): not named.
    n0, n1 = numeric[0], numeric[1]
    square = len(shape) >= 2 and shape[-1] == shape[-2]
    nearly = [
        (n1, n0),  # swapped
        (-n0, -n1),  # signs flipped
        (2 * n0, 2 * n1),  # a factor 2
        (n0 / 4, n1 / 4),  # a mean over 4 uses
        (np.swapaxes(n0, -1, -2) if square else n0, n1),  # transposed
        (np.full(shape, n0.sum()), n1),  # summed
    ]
    up_down = np.reshape(1e-3 * (-1.0) ** np.arange(n0.size), shape)
    for a0, a1 in nearly:
        analytic = {0: np.asarray(a0 * (1 + up_down)), 1: np.asarray(a1 * (1 - up_down))}
        assert _diagnose(analytic, numeric, rtol=1e-5, atol=1e-8, uses={0: 4, 1: 4}) == []
        # Without the noise, the pattern is named: the test above is not vacuous.
        exact = {0: np.asarray(a0), 1: np.asarray(a1)}
        if not all(np.allclose(exact[k], numeric[k]) for k in (0, 1)):
            assert _diagnose(exact, numeric, rtol=1e-5, atol=1e-8, uses={0: 4, 1: 4}) != []
