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
