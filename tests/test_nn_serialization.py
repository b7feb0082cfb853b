"""Tests of autodiff.nn.serialization: saving and loading parameters by name."""

import json
import os

import numpy as np
import pytest

from autodiff import Parameter
from autodiff.nn import (
    Linear, ParameterMismatchError, load_parameters, mlp, named_parameters, save_parameters,
)
from autodiff.nn import serialization


def values(model):
    return [p.value.copy() for p in model.parameters()]


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_round_trip_is_exact(tmp_path, suffix):
    model = mlp(5, 4, 3, seed=0)
    path = save_parameters(model, tmp_path / f"model{suffix}")
    fresh = mlp(5, 4, 3, seed=1)
    load_parameters(fresh, path)
    for a, b in zip(values(model), values(fresh)):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    x = np.random.default_rng(0).random((4, 5), dtype=np.float32)
    np.testing.assert_array_equal(model(x).value, fresh(x).value)


def test_loading_copies_into_the_existing_arrays(tmp_path):
    model = mlp(3, 2, seed=0)
    arrays = [p.value for p in model.parameters()]
    save_parameters(mlp(3, 2, seed=1), tmp_path / "m.npz")
    load_parameters(model, tmp_path / "m.npz")
    assert all(p.value is a for p, a in zip(model.parameters(), arrays))


def test_npz_is_keyed_by_name_and_has_no_pickles(tmp_path):
    save_parameters(mlp(3, 4, 2), tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        assert sorted(data.files) == sorted(
            ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias"])


def test_json_stores_name_dtype_shape_value(tmp_path):
    save_parameters(Linear(2, 3, seed=0), tmp_path / "m.json")
    document = json.loads((tmp_path / "m.json").read_text())
    entry = document["parameters"]["weight"]
    assert entry["dtype"] == "float32" and entry["shape"] == [2, 3] and len(entry["value"]) == 2


def test_a_loss_variable_names_the_parameters_of_its_graph(tmp_path):
    # The exercise's dump_parameters(loss, file) -- but reading its argument, not a global J.
    x, gamma, unused = Parameter([7.0]), Parameter([5.0]), Parameter([1.0])
    J = (x * gamma + x).sum()
    assert list(named_parameters(J).values()) == [x, gamma]
    save_parameters(J, tmp_path / "p.json")
    x2, gamma2 = Parameter([0.0]), Parameter([0.0])
    load_parameters((x2 * gamma2 + x2).sum(), tmp_path / "p.json")
    assert x2.value[0] == 7.0 and gamma2.value[0] == 5.0 and unused.value[0] == 1.0


def test_a_mapping_of_parameters(tmp_path):
    w = Parameter(np.ones(3))
    save_parameters({"w": w}, tmp_path / "w.npz")
    other = Parameter(np.zeros(3))
    load_parameters({"w": other}, tmp_path / "w.npz")
    np.testing.assert_array_equal(other.value, np.ones(3))


def test_the_exercises_json_list_loads_in_order(tmp_path):
    model = Linear(2, 2, seed=0)
    weight = [[1.0, 2.0], [3.0, 4.0]]
    (tmp_path / "parameters.json").write_text(json.dumps([weight, [5.0, 6.0]]))
    load_parameters(model, tmp_path / "parameters.json")
    np.testing.assert_array_equal(model.weight.value, weight)
    assert model.weight.dtype == np.float32


def test_every_mismatch_is_listed_and_nothing_changes(tmp_path):
    source = {"a": Parameter(np.zeros((2, 3))), "b": Parameter(np.zeros(4, dtype=np.float32)),
              "c": Parameter(np.zeros(1)), "extra": Parameter(np.zeros(1))}
    save_parameters(source, tmp_path / "s.npz")
    target = {"a": Parameter(np.ones((3, 2))), "b": Parameter(np.ones(4)),
              "c": Parameter(np.ones(1)), "missing": Parameter(np.ones(2))}
    before = {name: p.value.copy() for name, p in target.items()}
    with pytest.raises(ParameterMismatchError) as caught:
        load_parameters(target, tmp_path / "s.npz")
    message = str(caught.value)
    for expected in ["'a': shape (2, 3) in the file, (3, 2) in the model",
                     "'b': dtype float32 in the file, float64 in the model",
                     "missing in the file: 'missing'",
                     "not a parameter of the model: 'extra'",
                     "nothing was changed"]:
        assert expected in message
    assert "'c'" not in message
    for name, p in target.items():  # not even 'c', which fits, was loaded
        np.testing.assert_array_equal(p.value, before[name])


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_a_failed_load_leaves_a_model_unchanged(tmp_path, suffix):
    save_parameters(mlp(4, 3, 2, seed=0), tmp_path / f"m{suffix}")
    wider = mlp(4, 5, 2, seed=1)
    before = values(wider)
    with pytest.raises(ParameterMismatchError, match="shape"):
        load_parameters(wider, tmp_path / f"m{suffix}")
    for a, b in zip(before, values(wider)):
        np.testing.assert_array_equal(a, b)


def test_exercise_list_with_wrong_count(tmp_path):
    (tmp_path / "p.json").write_text("[[1.0]]")
    with pytest.raises(ParameterMismatchError, match="1 values.*2 parameters"):
        load_parameters(Linear(1, 1), tmp_path / "p.json")


def test_foreign_or_damaged_json_is_refused(tmp_path):
    (tmp_path / "a.json").write_text('{"weights": 1}')
    with pytest.raises(ParameterMismatchError, match="not a parameter file"):
        load_parameters(Linear(1, 1), tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps(
        {"format": "autodiff-parameters", "parameters": {"weight": {"value": [[1.0]]}}}))
    with pytest.raises(ParameterMismatchError, match="damaged"):
        load_parameters(Linear(1, 1), tmp_path / "b.json")


def test_pickled_npz_is_not_loaded(tmp_path):
    np.savez(tmp_path / "evil.npz", weight=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        load_parameters(Linear(1, 1), tmp_path / "evil.npz")


def test_unknown_suffix(tmp_path):
    with pytest.raises(ValueError, match=".npz or .json"):
        save_parameters(Linear(1, 1), tmp_path / "model.pt")


def test_write_is_atomic_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save_parameters(mlp(3, 2, seed=0), path)
    old = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(serialization.np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save_parameters(mlp(3, 2, seed=1), path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind


def test_write_goes_through_a_temporary_file_and_os_replace(tmp_path, monkeypatch):
    calls = []
    real_replace = os.replace

    def spy(source, target):
        calls.append((os.path.dirname(source), str(target)))
        real_replace(source, target)
    monkeypatch.setattr(serialization.os, "replace", spy)
    save_parameters(Linear(1, 1), tmp_path / "m.json")
    assert calls == [(str(tmp_path), str(tmp_path / "m.json"))]


def test_bad_sources_are_explained():
    with pytest.raises(TypeError, match="Module, a mapping"):
        named_parameters(42)
    with pytest.raises(TypeError, match="Parameters"):
        named_parameters({"w": np.ones(2)})


def test_saved_files_follow_the_umask_not_the_private_temporary_mode(tmp_path):
    import os

    from autodiff.nn import Linear, save_parameters

    old = os.umask(0o022)
    try:
        path = save_parameters(Linear(2, 2, seed=0), tmp_path / "model.npz")
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o644
