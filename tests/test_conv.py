"""Convolution and pooling: Unfold, Fold, Conv2d and MaxPool2d.

Values against loops written straight from the definitions, gradients and
gradients of gradients against central differences, and the errors for bad
shapes and settings.
"""

from __future__ import annotations

import numpy as np
import pytest

from autodiff import (
    Conv2d,
    Fold,
    MaxPool2d,
    Parameter,
    ShapeError,
    Tanh,
    Unfold,
    backprop,
    check_gradients,
    numeric_test,
)
from autodiff.ops import fold, unfold


def pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return value if isinstance(value, tuple) else (value, value)


def conv2d_by_loops(x: np.ndarray, w: np.ndarray, stride=1, padding=0) -> np.ndarray:
    """z[n, o, i, j] = sum over c, a, b of w[o, c, a, b] * padded x[n, c, s i + a, s j + b]."""
    (sh, sw), (ph, pw) = pair(stride), pair(padding)
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out_channels, _, kh, kw = w.shape
    out_height = (padded.shape[2] - kh) // sh + 1
    out_width = (padded.shape[3] - kw) // sw + 1
    z = np.zeros((len(x), out_channels, out_height, out_width))
    for n in range(len(x)):
        for o in range(out_channels):
            for i in range(out_height):
                for j in range(out_width):
                    window = padded[n, :, sh * i : sh * i + kh, sw * j : sw * j + kw]
                    z[n, o, i, j] = np.sum(window * w[o])
    return z


def max_pool_by_loops(x: np.ndarray, kernel, stride) -> tuple[np.ndarray, np.ndarray]:
    """The pooled values, and the gradient of their sum with the first maximum of each window."""
    (kh, kw), (sh, sw) = pair(kernel), pair(stride)
    out_height = (x.shape[2] - kh) // sh + 1
    out_width = (x.shape[3] - kw) // sw + 1
    z = np.zeros(x.shape[:2] + (out_height, out_width))
    gx = np.zeros(x.shape)
    for n, c, i, j in np.ndindex(z.shape):
        window = x[n, c, sh * i : sh * i + kh, sw * j : sw * j + kw]
        a, b = np.unravel_index(np.argmax(window), window.shape)  # the first maximum
        z[n, c, i, j] = window[a, b]
        gx[n, c, sh * i + a, sw * j + b] += 1
    return z, gx


# (x shape, w shape, stride, padding): square and not, strides that do not divide.
CONVOLUTIONS = [
    ((2, 1, 5, 5), (3, 1, 3, 3), 1, 0),
    ((2, 2, 5, 6), (3, 2, 3, 2), 1, 1),
    ((1, 2, 7, 6), (2, 2, 3, 3), 2, 1),
    ((2, 3, 6, 7), (2, 3, 2, 3), (2, 3), (1, 0)),
    ((1, 1, 4, 4), (1, 1, 4, 4), 1, 0),  # the kernel covers the whole image
    ((1, 2, 3, 3), (2, 2, 1, 1), 1, 0),  # 1x1: a matrix product over channels
]


def ids(case) -> str:
    x, w, stride, padding = case
    return f"x{x}-w{w}-s{stride}-p{padding}"


@pytest.mark.parametrize("case", CONVOLUTIONS, ids=ids)
def test_conv2d_matches_the_definition(case, rng: np.random.Generator) -> None:
    x_shape, w_shape, stride, padding = case
    x, w = rng.normal(size=x_shape), rng.normal(size=w_shape)
    z = Conv2d(Parameter(x), Parameter(w), stride=stride, padding=padding)
    np.testing.assert_allclose(z.value, conv2d_by_loops(x, w, stride, padding), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONVOLUTIONS, ids=ids)
def test_conv2d_gradients(case, rng: np.random.Generator) -> None:
    x_shape, w_shape, stride, padding = case
    z = Conv2d(Parameter(rng.normal(size=x_shape)), Parameter(rng.normal(size=w_shape)),
               stride=stride, padding=padding)
    numeric_test(z)
    numeric_test(z, order=2)


def test_conv2d_gradients_are_a_correlation_and_a_full_convolution(rng: np.random.Generator) -> None:
    """The formulas of the chapter: w-bar correlates x with z-bar; x-bar convolves z-bar with w."""
    x, w = rng.normal(size=(2, 3, 6, 5)), rng.normal(size=(4, 3, 3, 2))
    gz = rng.normal(size=(2, 4, 4, 4))
    px, pw = Parameter(x), Parameter(w)
    gradients = backprop(Conv2d(px, pw), output_gradient=gz)
    # w-bar[o, c] = correlation of x[:, c] with gz[:, o]: a "convolution" with gz as the kernel.
    gw = conv2d_by_loops(x.transpose(1, 0, 2, 3), gz.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    np.testing.assert_allclose(gradients[pw], gw, rtol=1e-12, atol=1e-12)
    # x-bar = gz padded by k - 1, correlated with the kernel flipped and its channels swapped.
    flipped = w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    gx = conv2d_by_loops(gz, flipped, padding=(2, 1))
    np.testing.assert_allclose(gradients[px], gx, rtol=1e-12, atol=1e-12)


def test_conv2d_float32_stays_float32(rng: np.random.Generator) -> None:
    x = Parameter(rng.normal(size=(2, 1, 6, 6)).astype(np.float32))
    w = Parameter(rng.normal(size=(3, 1, 3, 3)).astype(np.float32))
    z = Conv2d(x, w, padding=1)
    gradients = backprop(z.sum())
    assert z.dtype == gradients[x].dtype == gradients[w].dtype == np.float32


def test_conv2d_skips_the_input_gradient_nobody_asked_for(rng: np.random.Generator,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import autodiff.ops

    calls = []
    original = autodiff.ops.fold
    monkeypatch.setattr(autodiff.ops, "fold", lambda *a, **k: calls.append(1) or original(*a, **k))
    x, w = rng.normal(size=(2, 1, 5, 5)), Parameter(rng.normal(size=(2, 1, 3, 3)))
    backprop(Conv2d(x, w).sum(), [w])
    assert calls == []
    backprop(Conv2d(Parameter(x), w).sum())
    assert calls == [1]


def test_second_order_through_a_small_network(rng: np.random.Generator) -> None:
    """A Hessian-vector product through convolution, tanh, pooling and a dense layer."""
    x = rng.normal(size=(2, 2, 6, 6))
    w1, w2 = Parameter(rng.normal(size=(3, 2, 3, 3)) / 3), Parameter(rng.normal(size=(12, 2)) / 3)

    def loss():
        h = MaxPool2d(Tanh(Conv2d(x, w1, padding=1)), kernel_size=3)  # (2, 3, 2, 2)
        return Tanh(h.reshape(2, -1) @ w2).sum()

    check_gradients(loss, [w1, w2], order=2)


# ---------------------------------------------------------------- Unfold and Fold

WINDOWS = [
    ((2, 2, 4, 5), 2, 1, 0),
    ((1, 3, 5, 5), 3, 2, 1),
    ((2, 1, 6, 5), (3, 2), (1, 2), (0, 1)),
    ((1, 2, 7, 8), 2, 3, 0),  # windows with gaps between them
    ((2, 2, 6, 6), 2, 2, 1),  # windows that tile the padded image
]


@pytest.mark.parametrize("x_shape, kernel, stride, padding", WINDOWS)
def test_unfold_holds_every_window(x_shape, kernel, stride, padding, rng: np.random.Generator) -> None:
    x = rng.normal(size=x_shape)
    (kh, kw), (sh, sw), (ph, pw) = pair(kernel), pair(stride), pair(padding)
    columns = unfold(x, kernel, stride, padding)
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out_width = (padded.shape[3] - kw) // sw + 1
    assert columns.shape[:2] == (x_shape[0], x_shape[1] * kh * kw)
    for position in range(columns.shape[2]):
        i, j = divmod(position, out_width)
        window = padded[:, :, sh * i : sh * i + kh, sw * j : sw * j + kw]
        np.testing.assert_array_equal(columns[:, :, position], window.reshape(x_shape[0], -1))


@pytest.mark.parametrize("x_shape, kernel, stride, padding", WINDOWS)
def test_fold_is_the_adjoint_of_unfold(x_shape, kernel, stride, padding, rng: np.random.Generator) -> None:
    """<unfold(x), y> = <x, fold(y)> for all x, y: each is the other's transpose."""
    x = rng.normal(size=x_shape)
    y = rng.normal(size=unfold(x, kernel, stride, padding).shape)
    left = np.sum(unfold(x, kernel, stride, padding) * y)
    right = np.sum(x * fold(y, x_shape[2:], kernel, stride, padding))
    np.testing.assert_allclose(left, right, rtol=1e-12)


@pytest.mark.parametrize("x_shape, kernel, stride, padding", WINDOWS)
def test_unfold_and_fold_gradients(x_shape, kernel, stride, padding, rng: np.random.Generator) -> None:
    x = Parameter(rng.normal(size=x_shape))
    z = Unfold(x, kernel_size=kernel, stride=stride, padding=padding)
    numeric_test(z)
    numeric_test(z, order=2)
    y = Parameter(rng.normal(size=z.shape))
    folded = Fold(y, output_size=x_shape[2:], kernel_size=kernel, stride=stride, padding=padding)
    assert folded.shape == x_shape
    numeric_test(folded)
    numeric_test(folded, order=2)


# ---------------------------------------------------------------- MaxPool2d

POOLS = [
    ((2, 3, 4, 4), 2, None),
    ((1, 2, 5, 7), (2, 3), None),  # the last row and column fit no window
    ((2, 1, 5, 5), 3, 1),  # overlapping windows
    ((1, 2, 6, 5), 2, (1, 2)),
    ((1, 1, 7, 7), 2, 3),  # gaps between the windows
]


@pytest.mark.parametrize("x_shape, kernel, stride", POOLS)
def test_max_pool_matches_the_definition(x_shape, kernel, stride, rng: np.random.Generator) -> None:
    x = Parameter(rng.normal(size=x_shape))
    z = MaxPool2d(x, kernel_size=kernel, stride=stride)
    expected, expected_gradient = max_pool_by_loops(x.value, kernel, kernel if stride is None else stride)
    np.testing.assert_array_equal(z.value, expected)
    np.testing.assert_array_equal(backprop(z.sum())[x], expected_gradient)


@pytest.mark.parametrize("x_shape, kernel, stride", POOLS)
def test_max_pool_gradients(x_shape, kernel, stride, rng: np.random.Generator) -> None:
    # Distinct values spaced well apart: no step of the check changes a window's maximum.
    values = rng.permutation(np.prod(x_shape)).reshape(x_shape) * 0.1
    z = MaxPool2d(Parameter(values), kernel_size=kernel, stride=stride)
    numeric_test(z)
    numeric_test(z, order=2)


def test_max_pool_tie_sends_the_gradient_to_the_first_maximum_only() -> None:
    x = Parameter(np.array([[[[3.0, 3.0, 0.0, 1.0],
                              [3.0, 1.0, 1.0, 1.0]]]]))
    z = MaxPool2d(x, kernel_size=2)
    np.testing.assert_array_equal(z.value, [[[[3.0, 1.0]]]])
    gradient = backprop(z.sum())[x]
    np.testing.assert_array_equal(gradient, [[[[1.0, 0.0, 0.0, 1.0],
                                                [0.0, 0.0, 0.0, 0.0]]]])
    assert gradient.sum() == z.size  # one element per window


def test_max_pool_overlapping_windows_add_up() -> None:
    # The 9 is the maximum of all four 2x2 windows of a 3x3 image.
    x = Parameter(np.array([[[[0.0, 1.0, 2.0], [3.0, 9.0, 4.0], [5.0, 6.0, 7.0]]]]))
    gradient = backprop(MaxPool2d(x, kernel_size=2, stride=1).sum())[x]
    np.testing.assert_array_equal(gradient[0, 0], [[0, 0, 0], [0, 4, 0], [0, 0, 0]])


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "x_shape, w_shape, settings, error, words",
    [
        ((1, 1, 4, 4), (1, 1, 5, 5), {}, ShapeError, ["Conv2d", "(5, 5)", "(1, 1, 4, 4)", "larger"]),
        ((1, 1, 2, 2), (1, 1, 5, 5), {"padding": 1}, ShapeError, ["with padding (1, 1)", "(4, 4)", "(5, 5)", "(1, 1, 5, 5)"]),
        ((2, 3, 8, 8), (4, 1, 3, 3), {}, ShapeError, ["Conv2d", "(2, 3, 8, 8)", "3 channels", "(4, 1, 3, 3)", "expects 1"]),
        ((8, 8), (4, 1, 3, 3), {}, ShapeError, ["Conv2d", "(batch, channels, height, width)", "(8, 8)", "reshape"]),
        ((2, 1, 8, 8), (4, 3, 3), {}, ShapeError, ["Conv2d", "(out_channels, in_channels, kh, kw)", "(4, 3, 3)"]),
        ((1, 1, 8, 8), (1, 1, 3, 3), {"stride": 0}, ValueError, ["Conv2d", "stride", "positive", "0"]),
        ((1, 1, 8, 8), (1, 1, 3, 3), {"stride": (1, 0)}, ValueError, ["Conv2d", "stride", "(1, 0)"]),
        ((1, 1, 8, 8), (1, 1, 3, 3), {"padding": -1}, ValueError, ["Conv2d", "padding", "at least 0", "-1"]),
        ((1, 1, 8, 8), (1, 1, 3, 3), {"stride": 1.5}, TypeError, ["Conv2d", "stride", "int", "1.5"]),
    ],
)
def test_conv2d_bad_input_is_explained(x_shape, w_shape, settings, error, words) -> None:
    with pytest.raises(error) as info:
        Conv2d(Parameter(np.zeros(x_shape)), Parameter(np.zeros(w_shape)), **settings)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


@pytest.mark.parametrize(
    "x_shape, settings, error, words",
    [
        ((1, 1, 3, 3), {"kernel_size": 4}, ShapeError, ["MaxPool2d", "(4, 4)", "(1, 1, 3, 3)", "larger"]),
        ((3, 3), {"kernel_size": 2}, ShapeError, ["MaxPool2d", "(3, 3)", "(batch, channels, height, width)"]),
        ((1, 1, 4, 4), {"kernel_size": 2, "stride": 0}, ValueError, ["MaxPool2d", "stride", "positive"]),
        ((1, 1, 4, 4), {"kernel_size": 0}, ValueError, ["MaxPool2d", "kernel_size", "positive"]),
        ((1, 1, 4, 4), {}, TypeError, ["MaxPool2d", "kernel_size", "None"]),
    ],
)
def test_max_pool_bad_input_is_explained(x_shape, settings, error, words) -> None:
    with pytest.raises(error) as info:
        MaxPool2d(Parameter(np.zeros(x_shape)), **settings)
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_fold_refuses_columns_of_the_wrong_shape() -> None:
    with pytest.raises(ShapeError, match=r"fold: .* has 4 windows, .*shape \(1, 8, 5\)"):
        Fold(Parameter(np.zeros((1, 8, 5))), output_size=(3, 3), kernel_size=2)


# ---------------------------------------------------------------- against PyTorch, if installed


def test_against_pytorch(rng: np.random.Generator) -> None:
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x, w = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(4, 3, 3, 2))
    gz = rng.normal(size=(2, 4, 4, 4))
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    functional.conv2d(tx, tw, stride=(2, 2), padding=(1, 1)).backward(torch.tensor(gz))
    px, pw = Parameter(x), Parameter(w)
    z = Conv2d(px, pw, stride=2, padding=1)
    gradients = backprop(z, output_gradient=gz)
    np.testing.assert_allclose(gradients[px], tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gradients[pw], tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    columns = functional.unfold(torch.tensor(x), (3, 2), padding=1, stride=(1, 2)).numpy()
    np.testing.assert_array_equal(unfold(x, (3, 2), (1, 2), 1), columns)
    np.testing.assert_allclose(
        fold(columns, (7, 6), (3, 2), (1, 2), 1),
        functional.fold(torch.tensor(columns), (7, 6), (3, 2), padding=1, stride=(1, 2)).numpy(),
    )
    np.testing.assert_array_equal(
        MaxPool2d(x, kernel_size=(2, 3), stride=(1, 2)).value,
        functional.max_pool2d(torch.tensor(x), (2, 3), stride=(1, 2)).numpy(),
    )
