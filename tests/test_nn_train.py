"""Tests of autodiff.nn.train: train_step, fit, evaluate and predict."""

import io

import numpy as np
import pytest

from autodiff.nn import (
    SGD, History, Momentum, cross_entropy, evaluate, fit, mlp, mse, predict, train_step,
)


def blobs(n=200, seed=0):
    """Three well-separated clusters in 2-D, float32, with integer labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    centres = np.array([[2.0, 0.0], [-2.0, 2.0], [0.0, -2.0]])
    images = (centres[labels] + 0.5 * rng.normal(size=(n, 2))).astype(np.float32)
    return images, labels


def test_train_step_lowers_the_loss():
    x, y = blobs()
    model = mlp(2, 8, 3, seed=0)
    optimizer = SGD(model, 0.1)
    first, _ = train_step(model, optimizer, x, y)
    for _ in range(30):
        loss, acc = train_step(model, optimizer, x, y)
    assert loss < 0.5 * first and acc > 0.9


def test_fit_returns_a_history_per_epoch_and_learns():
    x, y = blobs()
    test = blobs(seed=1)
    model = mlp(2, 16, 3, seed=0)
    history = fit(model, Momentum(model, 0.05), x, y, epochs=4, batch_size=32,
                  test_data=test, progress=False)
    assert isinstance(history, History)
    assert all(len(values) == 4 for values in
               (history.loss, history.accuracy, history.test_loss, history.test_accuracy))
    assert history.loss[-1] < history.loss[0]
    assert history.test_accuracy[-1] > 0.9
    assert evaluate(model, *test) == (history.test_loss[-1], history.test_accuracy[-1])


def test_fit_without_test_data_leaves_those_lists_empty():
    x, y = blobs()
    model = mlp(2, 4, 3)
    history = fit(model, SGD(model, 0.1), x, y, epochs=2, progress=False)
    assert history.test_loss == [] and history.test_accuracy == [] and len(history.loss) == 2


def test_fit_is_reproducible_with_a_seed():
    x, y = blobs()
    results = []
    for _ in range(2):
        model = mlp(2, 8, 3, seed=0)
        fit(model, SGD(model, 0.1), x, y, epochs=2, batch_size=16, seed=5, progress=False)
        results.append(model[0].weight.value.copy())
    np.testing.assert_array_equal(*results)


def test_fit_writes_one_finished_bar_per_epoch_to_a_file():
    x, y = blobs(n=50)
    model = mlp(2, 4, 3)
    log = io.StringIO()
    fit(model, SGD(model, 0.1), x, y, epochs=3, batch_size=16, file=log)
    lines = log.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in log.getvalue()
    assert lines[0].startswith("epoch 1/3: 4/4 batches") and "loss " in lines[0]


def test_fit_shows_a_live_bar_on_stderr(capsys):
    x, y = blobs(n=50)
    model = mlp(2, 4, 3)
    fit(model, SGD(model, 0.1), x, y, epochs=1, batch_size=16)
    assert "epoch 1/1" in capsys.readouterr().err


def test_fit_with_another_loss_function():
    x, y = blobs()
    targets = np.eye(3, dtype=np.float32)[y]
    model = mlp(2, 8, 3)
    history = fit(model, SGD(model, 0.1), x, targets.argmax(axis=1), epochs=3, progress=False,
                  loss_function=lambda logits, labels: mse(logits, np.eye(3, dtype=np.float32)[labels]))
    assert history.loss[-1] < history.loss[0]


def test_predict_in_batches_equals_one_pass():
    x, _ = blobs(n=37)
    model = mlp(2, 5, 3)
    np.testing.assert_allclose(predict(model, x, batch_size=10), model(x).value, rtol=1e-6)


def test_fit_checks_epochs():
    x, y = blobs(n=10)
    model = mlp(2, 4, 3)
    with pytest.raises(ValueError, match="epochs"):
        fit(model, SGD(model, 0.1), x, y, epochs=0)


def test_fit_with_regression_targets_reports_nan_accuracy():
    x, _ = blobs(n=64)
    targets = (x @ np.array([[1.0], [-2.0]], dtype=np.float32)).astype(np.float32)
    model = mlp(2, 8, 1)
    history = fit(model, SGD(model, 0.05), x, targets, epochs=3, progress=False, loss_function=mse)
    assert history.loss[-1] < history.loss[0]
    assert all(np.isnan(a) for a in history.accuracy)


@pytest.mark.parametrize("bad", [{"batch_size": 0}, {"epochs": 0}, {"epochs": 1.5}])
def test_fit_refuses_bad_sizes(bad):
    x, y = blobs(n=20)
    model = mlp(2, 4, 3)
    with pytest.raises(ValueError, match="fit: .* must be a positive int"):
        fit(model, SGD(model, 0.1), x, y, progress=False, **bad)


def test_fit_refuses_an_empty_data_set():
    model = mlp(2, 4, 3)
    with pytest.raises(ValueError, match="at least one"):
        fit(model, SGD(model, 0.1), np.zeros((0, 2), np.float32), np.zeros(0, int), progress=False)


def diverging_run(stop_on_nonfinite):
    """fit with a learning rate far too high; returns the run's outcome and every batch's loss."""
    x, y = blobs(n=64)
    model = mlp(2, 16, 3, seed=0)
    losses = []

    def recording_loss(logits, labels):
        loss = cross_entropy(logits, labels)
        losses.append(float(loss.value))
        return loss
    with np.errstate(all="ignore"):  # the overflows on the way to NaN
        try:
            outcome = fit(model, SGD(model, 1e6), x, y, epochs=4, batch_size=8, progress=False,
                          loss_function=recording_loss, stop_on_nonfinite=stop_on_nonfinite)
        except FloatingPointError as error:
            outcome = error
    return outcome, losses


def test_fit_stops_at_the_first_nonfinite_loss_naming_epoch_and_batch():
    error, losses = diverging_run(stop_on_nonfinite=True)
    assert isinstance(error, FloatingPointError)
    assert not np.isfinite(losses[-1]) and np.isfinite(losses[:-1]).all()  # stopped at once
    steps = 64 // 8
    epoch, batch = divmod(len(losses) - 1, steps)
    message = str(error)
    assert f"at epoch {epoch + 1}, batch {batch + 1} of {steps}" in message
    assert "smaller learning rate (this one is 1000000.0)" in message
    assert "stop_on_nonfinite=False" in message


def test_fit_goes_on_past_a_nonfinite_loss_when_asked():
    history, losses = diverging_run(stop_on_nonfinite=False)
    assert len(history.loss) == 4 and len(losses) == 4 * 64 // 8  # every epoch ran
    assert np.isnan(history.loss[-1])
