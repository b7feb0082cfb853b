"""Tests of autodiff.nn.layers: parameter discovery, Linear, Sequential, activations."""

import numpy as np
import pytest

from autodiff import Parameter, Variable, backprop, check_gradients
from autodiff.nn import Linear, Module, ReLU, Sequential, Sigmoid, Tanh, mlp


class TwoBranches(Module):
    def __init__(self):
        self.encoder = Linear(3, 4, seed=0)
        self.heads = [Linear(4, 2, seed=1), Linear(4, 2, seed=2)]
        self.pair = (Linear(2, 2, seed=3),)
        self.scale = Parameter(np.float32(1.5))
        self.not_a_parameter = np.ones(3)

    def forward(self, x):
        h = self.encoder(x)
        return (self.heads[0](h) + self.heads[1](h)) * self.scale


def test_named_parameters_walks_attributes_lists_and_tuples():
    names = [name for name, _ in TwoBranches().named_parameters()]
    assert names == [
        "encoder.weight", "encoder.bias",
        "heads.0.weight", "heads.0.bias", "heads.1.weight", "heads.1.bias",
        "pair.0.weight", "pair.0.bias",
        "scale",
    ]


def test_shared_parameters_and_modules_are_listed_once():
    shared = Linear(2, 2, seed=0)
    model = Sequential(shared, ReLU(), shared)
    assert [name for name, _ in model.named_parameters()] == ["layers.0.weight", "layers.0.bias"]
    assert len(model.parameters()) == 2


def test_parameter_count():
    assert mlp(784, 256, 10).parameter_count() == 784 * 256 + 256 + 256 * 10 + 10


@pytest.mark.parametrize("init, bound", [("uniform", 0.01), ("glorot", np.sqrt(6 / 700))])
def test_uniform_initialisations_stay_in_their_bounds(init, bound):
    weight = Linear(400, 300, init=init, seed=0).weight.value
    assert np.abs(weight).max() <= bound
    assert np.abs(weight).max() > 0.9 * bound  # and actually use the range


def test_he_initialisation_has_the_right_spread():
    weight = Linear(500, 400, init="he", seed=0).weight.value
    np.testing.assert_allclose(weight.std(), np.sqrt(2 / 500), rtol=0.02)
    assert abs(weight.mean()) < 0.01


def test_same_seed_same_weights_different_seed_different_weights():
    a, b, c = Linear(5, 3, seed=7), Linear(5, 3, seed=7), Linear(5, 3, seed=8)
    assert np.array_equal(a.weight.value, b.weight.value)
    assert not np.array_equal(a.weight.value, c.weight.value)
    assert np.array_equal(a.bias.value, np.zeros(3))


def test_a_shared_generator_gives_different_layers():
    rng = np.random.default_rng(0)
    a, b = Linear(4, 4, seed=rng), Linear(4, 4, seed=rng)
    assert not np.array_equal(a.weight.value, b.weight.value)


def test_float32_in_float32_out():
    model = mlp(6, 5, 4)
    out = model(np.ones((3, 6), dtype=np.float32))
    assert isinstance(out, Variable)
    assert out.dtype == np.float32
    gradients = backprop(out.sum(), model.parameters())
    assert all(g.dtype == np.float32 for g in gradients.values())


def test_float64_layers_on_request():
    layer = Linear(2, 3, dtype=np.float64, seed=0)
    assert layer.weight.dtype == np.float64 == layer(np.ones((1, 2))).dtype


def test_linear_computes_x_w_plus_b():
    layer = Linear(3, 2, seed=0, dtype=np.float64)
    layer.bias.value[:] = [1.0, -1.0]
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(layer(x).value, x @ layer.weight.value + [1.0, -1.0])


def test_linear_on_a_single_vector():
    assert Linear(3, 2, seed=0)(np.ones(3, dtype=np.float32)).shape == (2,)


def test_gradients_of_a_small_network_match_finite_differences():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(3, 4, seed=0, dtype=np.float64), Tanh(),
                       Linear(4, 4, seed=1, dtype=np.float64), Sigmoid(),
                       Linear(4, 2, seed=2, dtype=np.float64), ReLU())
    x = rng.normal(size=(5, 3))
    check_gradients(lambda: (model(x) ** 2).sum(), model.parameters())
    check_gradients(lambda: (model(x) ** 2).sum(), model.parameters(), order=2)


def test_activation_layers_wrap_the_operations():
    x = np.array([-2.0, 0.0, 3.0])
    np.testing.assert_allclose(ReLU()(x).value, [0, 0, 3])
    np.testing.assert_allclose(Tanh()(x).value, np.tanh(x))
    np.testing.assert_allclose(Sigmoid()(x).value, 1 / (1 + np.exp(-x)))


def test_sequential_indexing_and_length():
    first = Linear(2, 2, seed=0)
    model = Sequential(first, ReLU())
    assert model[0] is first and len(model) == 2 and list(model)[1].__class__ is ReLU


@pytest.mark.parametrize("kwargs, error", [
    ({"in_features": 0, "out_features": 3}, ValueError),
    ({"in_features": 2.5, "out_features": 3}, ValueError),
    ({"in_features": 2, "out_features": 3, "init": "xavier"}, ValueError),
    ({"in_features": 2, "out_features": 3, "dtype": np.int32}, TypeError),
    ({"in_features": 2, "out_features": 3, "seed": "zero"}, TypeError),
])
def test_linear_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error, match="Linear|seed"):
        Linear(**kwargs)


def test_sequential_rejects_non_callables():
    with pytest.raises(TypeError, match="layer 1"):
        Sequential(Linear(2, 2), np.ones(3))


def test_module_without_forward_says_what_to_do():
    with pytest.raises(NotImplementedError, match="forward"):
        Module()(np.ones(2))


def test_mlp_needs_two_sizes():
    with pytest.raises(ValueError, match="two sizes"):
        mlp(10)


@pytest.mark.parametrize("x_shape", [(4,), (5, 4), (2, 3, 4)])
def test_affine_gradients_match_finite_differences(x_shape):
    from autodiff import numeric_test
    from autodiff import Affine
    rng = np.random.default_rng(0)
    x, w, b = (Parameter(rng.normal(size=s)) for s in (x_shape, (4, 3), (3,)))
    z = Affine(x, w, b)
    np.testing.assert_allclose(z.value, x.value @ w.value + b.value)
    numeric_test(z)
    numeric_test(z, order=2)


def test_affine_skips_the_input_gradient_when_not_needed():
    from autodiff import Affine
    x = np.ones((2, 3))
    z = Affine(x, Parameter(np.ones((3, 2))), Parameter(np.zeros(2)))
    gx, gw, gb = z.operation.grad(np.ones((2, 2)), (False, True, True))
    assert gx is None and gw.shape == (3, 2) and gb.shape == (2,)


def test_affine_rejects_mismatched_shapes():
    from autodiff import Affine
    with pytest.raises(ValueError, match=r"Affine: expected .* \(2, 5\), \(3, 4\) and \(4,\)"):
        Affine(np.ones((2, 5)), Parameter(np.ones((3, 4))), Parameter(np.zeros(4)))


# ---------------------------------------------------------------- convolutional layers


def small_cnn(seed=0, dtype=np.float32):
    from autodiff.nn import Conv2d, Flatten, MaxPool2d

    rng = np.random.default_rng(seed)
    return Sequential(
        Conv2d(1, 4, 3, padding=1, seed=rng, dtype=dtype), ReLU(), MaxPool2d(2),
        Conv2d(4, 6, 3, seed=rng, dtype=dtype), Tanh(), Flatten(),
        Linear(6 * 2 * 2, 2, seed=rng, dtype=dtype),
    )


def bars(count, seed=0):
    """8x8 images with one horizontal (label 0) or vertical (label 1) bar, and noise."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0, 0.1, size=(count, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 2, size=count)
    where = rng.integers(1, 7, size=count)
    for image, label, at in zip(images, labels, where):
        if label == 0:
            image[0, at, :] += 1
        else:
            image[0, :, at] += 1
    return images, labels


def test_conv2d_layer_shapes_names_and_he_initialisation():
    from autodiff.nn import Conv2d

    layer = Conv2d(8, 16, (3, 5), stride=2, padding=(1, 2), seed=0)
    assert layer.weight.shape == (16, 8, 3, 5) and layer.bias.shape == (16,)
    assert layer.weight.dtype == layer.bias.dtype == np.float32
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    np.testing.assert_allclose(layer.weight.value.std(), np.sqrt(2 / (8 * 3 * 5)), rtol=0.05)
    np.testing.assert_array_equal(layer.bias.value, 0)
    assert layer(np.zeros((2, 8, 9, 10), dtype=np.float32)).shape == (2, 16, 5, 5)
    assert repr(layer) == ("Conv2d(8, 16, kernel_size=(3, 5), stride=(2, 2), padding=(1, 2), "
                           "dtype=float32)")


def test_conv2d_layer_is_the_operation_plus_a_bias_per_channel():
    from autodiff import Conv2d as Conv2dOp
    from autodiff.nn import Conv2d

    layer = Conv2d(2, 3, 3, padding=1, seed=0, dtype=np.float64)
    layer.bias.value[:] = [1.0, 2.0, 3.0]
    x = np.random.default_rng(0).normal(size=(2, 2, 5, 5))
    expected = Conv2dOp(x, layer.weight.value, padding=1).value + np.array([1.0, 2.0, 3.0])[:, None, None]
    np.testing.assert_allclose(layer(x).value, expected)


def test_conv2d_layer_same_seed_same_weights():
    from autodiff.nn import Conv2d

    a, b, c = Conv2d(1, 2, 3, seed=5), Conv2d(1, 2, 3, seed=5), Conv2d(1, 2, 3, seed=6)
    assert np.array_equal(a.weight.value, b.weight.value)
    assert not np.array_equal(a.weight.value, c.weight.value)


@pytest.mark.parametrize("kwargs, error, words", [
    ({"in_channels": 0, "out_channels": 3, "kernel_size": 3}, ValueError, "in_channels"),
    ({"in_channels": 1, "out_channels": 2.0, "kernel_size": 3}, ValueError, "out_channels"),
    ({"in_channels": 1, "out_channels": 3, "kernel_size": 0}, ValueError, "kernel_size"),
    ({"in_channels": 1, "out_channels": 3, "kernel_size": 3, "stride": 0}, ValueError, "stride"),
    ({"in_channels": 1, "out_channels": 3, "kernel_size": 3, "padding": -1}, ValueError, "padding"),
    ({"in_channels": 1, "out_channels": 3, "kernel_size": (3, 3, 3)}, TypeError, "pair"),
    ({"in_channels": 1, "out_channels": 3, "kernel_size": 3, "dtype": np.int64}, TypeError, "dtype"),
])
def test_conv2d_layer_rejects_bad_arguments(kwargs, error, words):
    from autodiff.nn import Conv2d

    with pytest.raises(error, match=f"Conv2d: .*{words}"):
        Conv2d(**kwargs)


def test_max_pool_and_flatten_layers():
    from autodiff.nn import Flatten, MaxPool2d

    x = np.arange(32.0).reshape(2, 1, 4, 4)
    pooled = MaxPool2d(2)(x)
    np.testing.assert_array_equal(pooled.value[0, 0], [[5, 7], [13, 15]])
    assert MaxPool2d(3, stride=1)(x).shape == (2, 1, 2, 2)
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=(2, 2), stride=(2, 2))"
    assert Flatten()(pooled).shape == (2, 4)
    assert list(MaxPool2d(2).named_parameters()) == [] == list(Flatten().named_parameters())
    with pytest.raises(ValueError, match="MaxPool2d: stride"):
        MaxPool2d(2, stride=0)


def test_small_cnn_in_sequential_gradients():
    model = small_cnn(dtype=np.float64)
    assert [name for name, _ in model.named_parameters()] == [
        "layers.0.weight", "layers.0.bias", "layers.3.weight", "layers.3.bias",
        "layers.6.weight", "layers.6.bias",
    ]
    images, labels = bars(3)
    from autodiff.nn import cross_entropy

    check_gradients(lambda: cross_entropy(model(images.astype(np.float64)), labels),
                    model.parameters())


def test_small_cnn_learns_with_fit():
    from autodiff.nn import Adam, evaluate, fit

    images, labels = bars(256)
    test_images, test_labels = bars(200, seed=1)
    model = small_cnn()
    history = fit(model, Adam(model.parameters(), learning_rate=0.01), images, labels,
                  epochs=4, batch_size=32, test_data=(test_images, test_labels), progress=False)
    assert history.loss[-1] < history.loss[0] / 2
    assert evaluate(model, test_images, test_labels)[1] >= 0.95


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_small_cnn_save_and_load(tmp_path, suffix):
    from autodiff.nn import load_parameters, predict, save_parameters

    model, fresh = small_cnn(seed=0), small_cnn(seed=1)
    images, _ = bars(10)
    path = save_parameters(model, tmp_path / f"cnn{suffix}")
    assert not np.array_equal(predict(fresh, images), predict(model, images))
    load_parameters(fresh, path)
    np.testing.assert_array_equal(predict(fresh, images), predict(model, images))
