"""Tests of autodiff.nn.optim: SGD, momentum and Adam against hand-written updates."""

import numpy as np
import pytest

from autodiff import Input, Parameter, backprop
from autodiff.nn import SGD, Adam, Linear, Momentum, cross_entropy, mlp


def quadratic(parameters):
    return sum(((p - 3.0) ** 2).sum() for p in parameters)


def make_parameters(dtype=np.float64):
    rng = np.random.default_rng(0)
    return [Parameter(rng.normal(size=(3, 2)).astype(dtype)), Parameter(np.zeros(2, dtype=dtype))]


def test_sgd_matches_the_formula():
    parameters = make_parameters()
    expected = [p.value.copy() for p in parameters]
    optimizer = SGD(parameters, learning_rate=0.1)
    for _ in range(3):
        optimizer.step(backprop(quadratic(parameters), parameters))
        expected = [e - 0.1 * 2 * (e - 3) for e in expected]
    for p, e in zip(parameters, expected):
        np.testing.assert_allclose(p.value, e)


def test_momentum_matches_the_formula():
    parameters = make_parameters()
    values = [p.value.copy() for p in parameters]
    velocities = [np.zeros_like(v) for v in values]
    optimizer = Momentum(parameters, learning_rate=0.05, momentum=0.8)
    for _ in range(4):
        optimizer.step(backprop(quadratic(parameters), parameters))
        for i, v in enumerate(values):
            velocities[i] = 0.8 * velocities[i] + 2 * (v - 3)
            values[i] = v - 0.05 * velocities[i]
    for p, v in zip(parameters, values):
        np.testing.assert_allclose(p.value, v)


def test_adam_matches_the_formula():
    parameters = make_parameters()
    values = [p.value.copy() for p in parameters]
    m = [np.zeros_like(v) for v in values]
    s = [np.zeros_like(v) for v in values]
    optimizer = Adam(parameters, learning_rate=0.01, betas=(0.9, 0.99), eps=1e-8)
    for t in range(1, 5):
        optimizer.step(backprop(quadratic(parameters), parameters))
        for i, v in enumerate(values):
            g = 2 * (v - 3)
            m[i] = 0.9 * m[i] + 0.1 * g
            s[i] = 0.99 * s[i] + 0.01 * g * g
            m_hat, s_hat = m[i] / (1 - 0.9**t), s[i] / (1 - 0.99**t)
            values[i] = v - 0.01 * m_hat / (np.sqrt(s_hat) + 1e-8)
    for p, v in zip(parameters, values):
        np.testing.assert_allclose(p.value, v, rtol=1e-10)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, 0.1), lambda ps: Momentum(ps, 0.05), lambda ps: Adam(ps, 0.1)])
def test_every_optimiser_minimises_a_quadratic(make):
    parameters = make_parameters()
    optimizer = make(parameters)
    start = float(quadratic(parameters).value)
    for _ in range(200):
        optimizer.step(backprop(quadratic(parameters), parameters))
    assert float(quadratic(parameters).value) < 1e-3 * start


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, 0.1), lambda ps: Momentum(ps, 0.05), lambda ps: Adam(ps, 0.1)])
def test_updates_are_in_place_and_keep_float32(make):
    parameters = make_parameters(np.float32)
    arrays = [p.value for p in parameters]
    make(parameters).step(backprop(quadratic(parameters), parameters))
    assert all(p.value is a for p, a in zip(parameters, arrays))
    assert all(p.dtype == np.float32 for p in parameters)


@pytest.mark.parametrize("make", [
    lambda ps: SGD(ps, 0.1), lambda ps: Momentum(ps, 0.1), lambda ps: Adam(ps, 0.1)])
def test_a_new_learning_rate_takes_effect_at_the_next_step(make):
    # A schedule (the MNIST chapter's smaller last step) sets optimizer.learning_rate
    # between steps. From the same state, a tenth of the rate moves a tenth as far.
    changed, kept = make_parameters(), make_parameters()
    optimizers = make(changed), make(kept)
    for optimizer in optimizers:
        optimizer.step(backprop(quadratic(optimizer.parameters), optimizer.parameters))
    optimizers[0].learning_rate = 0.01
    before = [p.value.copy() for p in changed]
    for optimizer in optimizers:
        optimizer.step(backprop(quadratic(optimizer.parameters), optimizer.parameters))
    for p, k, b in zip(changed, kept, before):
        np.testing.assert_allclose(p.value - b, 0.1 * (k.value - b), rtol=1e-10)


def test_a_module_can_be_passed_instead_of_its_parameters():
    model = mlp(4, 3, 2)
    assert SGD(model, 0.1).parameters == model.parameters()


def test_sgd_trains_a_classifier():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = Linear(2, 2, seed=0)
    optimizer = SGD(model, 0.5)
    first = None
    for _ in range(50):
        loss = cross_entropy(model(x), y)
        first = first if first is not None else float(loss.value)
        optimizer.step(backprop(loss, optimizer.parameters))
    assert float(loss.value) < 0.5 * first


def test_missing_gradient_is_explained():
    a, b = Parameter([1.0]), Parameter([2.0])
    optimizer = SGD([a, b], 0.1)
    with pytest.raises(KeyError, match=r"parameter 1.*backprop\(loss, optimizer.parameters\)"):
        optimizer.step(backprop((a * 2).sum()))  # the full form has no entry for b
    # The variables= form returns zeros for unused parameters, so this works:
    optimizer.step(backprop((a * 2).sum(), optimizer.parameters))
    np.testing.assert_allclose(b.value, [2.0])


def test_wrong_gradient_shape_is_explained():
    a = Parameter([1.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        SGD([a], 0.1).step({a: np.ones(3)})


@pytest.mark.parametrize("parameters, error, message", [
    ([], ValueError, "empty"),
    ([Input([1.0])], TypeError, "not a Parameter"),
    (Parameter([1.0]), TypeError, "list of Parameters"),
    ("weights", TypeError, "not a Parameter"),
])
def test_bad_parameter_lists_are_explained(parameters, error, message):
    with pytest.raises(error, match=message):
        SGD(parameters, 0.1)


def test_a_parameter_listed_twice_is_refused():
    p = Parameter([1.0])
    with pytest.raises(ValueError, match="twice"):
        SGD([p, p], 0.1)


def test_hyperparameters_are_checked():
    p = [Parameter([1.0])]
    with pytest.raises(ValueError, match="learning_rate"):
        SGD(p, 0.0)
    with pytest.raises(ValueError, match="momentum"):
        Momentum(p, 0.1, momentum=1.0)
    with pytest.raises(ValueError, match="betas"):
        Adam(p, betas=(0.9, 1.0))
