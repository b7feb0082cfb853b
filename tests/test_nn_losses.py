"""Tests of autodiff.nn.losses: softmax cross-entropy, MSE and accuracy."""

import warnings

import numpy as np
import pytest

from autodiff import Input, Parameter, backprop, numeric_test
from autodiff import SoftmaxCrossEntropy
from autodiff.nn import accuracy, cross_entropy, mse


def reference_cross_entropy(logits, labels):
    """Written the naive way, in float64, for moderate logits only."""
    logits = np.asarray(logits, dtype=np.float64)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return -np.mean(np.log(p[np.arange(len(labels)), labels]))


@pytest.mark.parametrize("shape", [(1, 2), (5, 3), (8, 10)])
def test_value_matches_the_naive_formula(shape):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=shape)
    labels = rng.integers(0, shape[1], size=shape[0])
    J = cross_entropy(Parameter(logits), labels)
    np.testing.assert_allclose(J.value, reference_cross_entropy(logits, labels), rtol=1e-12)


@pytest.mark.parametrize("shape", [(1, 2), (4, 3), (6, 10)])
def test_gradient_matches_finite_differences(shape):
    rng = np.random.default_rng(1)
    logits = Parameter(rng.normal(size=shape))
    labels = rng.integers(0, shape[1], size=shape[0])
    numeric_test(SoftmaxCrossEntropy(logits, labels=labels))
    numeric_test(SoftmaxCrossEntropy(logits, labels=labels), order=2)


def test_gradient_is_softmax_minus_one_hot_over_n():
    logits = Parameter([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    labels = np.array([2, 0])
    gradient = backprop(cross_entropy(logits, labels))[logits]
    p = np.exp(logits.value) / np.exp(logits.value).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(gradient, (p - np.eye(3)[labels]) / 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_logits_give_a_finite_loss_and_gradient(dtype):
    logits = Parameter(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0], [1e4, 1e4, -1e4]], dtype=dtype))
    J = cross_entropy(logits, np.array([1, 1, 0]))
    gradient = backprop(J)[logits]
    assert np.isfinite(J.value) and np.isfinite(gradient).all()
    # Row 0 is wrong by 2e4, row 1 right, row 2 a tie between two classes: log 2.
    np.testing.assert_allclose(J.value, (2e4 + 0 + np.log(2)) / 3, rtol=1e-6)
    np.testing.assert_allclose(gradient[0], np.array([1, -1, 0]) / 3, atol=1e-7)


def test_float32_stays_float32():
    logits = Parameter(np.zeros((4, 3), dtype=np.float32))
    J = cross_entropy(logits, np.array([0, 1, 2, 0]))
    assert J.dtype == np.float32
    assert backprop(J)[logits].dtype == np.float32


def test_backprop_twice_gives_the_same_gradient():
    logits = Parameter(np.random.default_rng(0).normal(size=(3, 4)))
    J = cross_entropy(logits, np.array([0, 3, 1]))
    first = backprop(J)[logits].copy()
    np.testing.assert_array_equal(backprop(J)[logits], first)


def test_labels_are_a_keyword_and_not_differentiated():
    with pytest.raises(TypeError, match="keyword"):
        SoftmaxCrossEntropy(Parameter(np.zeros((2, 2))))
    with pytest.raises(TypeError, match="labels= is a Variable"):
        SoftmaxCrossEntropy(Parameter(np.zeros((2, 2))), labels=Input(np.array([0, 1])))
    # cross_entropy unwraps an Input, but refuses a Parameter
    assert np.isfinite(cross_entropy(Parameter(np.zeros((2, 2))), Input(np.array([0, 1]))).value)
    with pytest.raises(TypeError, match="not differentiable"):
        cross_entropy(Parameter(np.zeros((2, 2))), Parameter(np.array([0.0, 1.0])))


@pytest.mark.parametrize("labels, error, message", [
    (np.array([0.0, 1.0]), TypeError, "integers"),
    (np.array([0, 1, 2]), ValueError, "shape"),
    (np.array([[0], [1]]), ValueError, "shape"),
    (np.array([0, 3]), ValueError, "0..2"),
    (np.array([-1, 0]), ValueError, "0..2"),
])
def test_bad_labels_are_explained(labels, error, message):
    with pytest.raises(error, match=message):
        cross_entropy(Parameter(np.zeros((2, 3))), labels)


@pytest.mark.parametrize("dtype", ["i1", "u1", "<i2", ">i2", "<i4", ">i4", "<i8", ">i8", ">u8"])
def test_labels_of_every_integer_type_and_byte_order(dtype):
    # The range check reads the labels as unsigned integers of the same size
    # and byte order; this pins that down for each kind of integer.
    logits = Parameter(np.zeros((3, 4)))
    good = np.array([0, 3, 2], dtype=dtype)
    np.testing.assert_allclose(cross_entropy(logits, good).value, np.log(4))
    assert accuracy(logits, good) == 1 / 3
    with pytest.raises(ValueError, match=r"0\.\.3 .* from 0 to 4"):
        cross_entropy(logits, np.array([0, 4, 2], dtype=dtype))
    if np.dtype(dtype).kind == "i":
        with pytest.raises(ValueError, match=r"0\.\.3 .* from -1 to 2"):
            cross_entropy(logits, np.array([0, -1, 2], dtype=dtype))
        with pytest.raises(ValueError, match=r"from -1 to 2"):
            accuracy(logits, np.array([0, -1, 2], dtype=dtype))


def test_logits_must_have_two_axes():
    with pytest.raises(ValueError, match="two axes"):
        cross_entropy(Parameter(np.zeros(3)), np.array([0]))


def test_mse_is_the_fused_operation():
    x = Parameter([1.0, 2.0])
    J = mse(x, np.array([0.0, 0.0]))
    assert type(J.operation).__name__ == "MSE"
    np.testing.assert_allclose(J.value, 2.5)
    np.testing.assert_allclose(backprop(J)[x], [1.0, 2.0])


def test_accuracy_on_logits_probabilities_and_variables():
    logits = np.array([[3.0, 1.0], [0.0, 2.0], [5.0, 4.0], [1.0, 9.0]])
    labels = np.array([0, 1, 1, 1])
    assert accuracy(logits, labels) == 0.75
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert accuracy(probabilities, labels) == 0.75
    assert accuracy(Parameter(logits), Input(labels)) == 0.75


def test_accuracy_rejects_mismatched_or_empty_input():
    with pytest.raises(ValueError, match="shape"):
        accuracy(np.zeros((3, 2)), np.array([0, 1]))
    with pytest.raises(ValueError, match="empty"):
        accuracy(np.zeros((0, 2)), np.zeros(0, dtype=int))


@pytest.mark.parametrize("logits, labels", [
    (np.zeros((0, 3)), np.zeros(0, dtype=int)),
    (Parameter(np.zeros((0, 3))), Input(np.zeros(0, dtype=np.int64))),
    (np.zeros((0, 3)), []),
])
def test_cross_entropy_on_an_empty_batch_is_an_error_not_nan(logits, labels):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and no RuntimeWarning on the way
        with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy: got an empty batch \(labels of "
                                             r"shape \(0,\)\)"):
            cross_entropy(logits, labels)
        with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy: got an empty batch"):
            SoftmaxCrossEntropy(logits, labels=np.zeros(0, dtype=np.int64))


def test_mse_on_an_empty_batch_is_an_error_not_nan():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match=r"MSE: got an empty batch \(shapes "
                                             r"\(0, 2\) and \(0, 2\)\)"):
            mse(Parameter(np.zeros((0, 2))), np.zeros((0, 2)))
        # An empty target for a full prediction is a shape mismatch.
        with pytest.raises(ValueError, match=r"MSE cannot combine inputs of shapes \(3, 2\) and \(0, 2\)"):
            mse(Parameter(np.zeros((3, 2))), Input(np.zeros((0, 2))))
