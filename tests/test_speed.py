"""autodiff._collector: full garbage collections wait while a large graph is alive."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from autodiff import Parameter, Variable, backprop, no_grad
from autodiff import _speed as _collector
from autodiff.nn import Linear, predict

DEFAULT = (700, 10, 10)  # gc.get_threshold() of a fresh Python


@pytest.fixture(autouse=True)
def default_schedule() -> Iterator[None]:
    """Start each test from Python's default schedule, with no large graph alive."""
    saved = gc.get_threshold()
    gc.collect()  # frees the graphs of earlier tests, and with them their checkpoints
    assert not _collector.deferring()
    gc.set_threshold(*DEFAULT)
    yield
    gc.collect()
    gc.set_threshold(*saved)


def chain(x: Variable, operations: int) -> Variable:
    y = x
    for _ in range(operations // 2):
        y = y * 1.0001 + 0.001
    return y


def test_full_collections_wait_while_a_large_graph_lives() -> None:
    x = Parameter(2.0)
    y = chain(x, 2 * _collector.LARGE_GRAPH)  # passes at least one checkpoint
    assert gc.get_threshold() == (700, 10, _collector.DEFERRED_THRESHOLD)
    backprop(y)
    assert gc.get_threshold()[2] == _collector.DEFERRED_THRESHOLD  # y is still alive
    del y
    assert gc.get_threshold() == DEFAULT  # freed: the schedule is back


def test_inference_in_a_loop_leaves_the_schedule_alone() -> None:
    """The bug of the first version: a counter of operations "since the last
    backprop" deferred full collections for good after 10,000 operations of
    inference, although each batch's graph was freed long ago."""
    model = Linear(4, 3, seed=0)
    images = np.ones((2, 4), dtype=np.float32)
    for _ in range(3 * _collector.LARGE_GRAPH):
        model(images)  # recorded, and freed at once
    assert gc.get_threshold() == DEFAULT
    predict(model, np.ones((10, 4), dtype=np.float32), batch_size=1)
    assert gc.get_threshold() == DEFAULT


def test_no_grad_records_nothing_for_the_collector_to_count() -> None:
    x = Parameter(1.0)
    with no_grad():
        y = chain(x, 2 * _collector.LARGE_GRAPH)
    assert y.operation is None
    assert gc.get_threshold() == DEFAULT


def test_a_schedule_set_by_the_program_meanwhile_is_kept() -> None:
    y = chain(Parameter(1.0), 2 * _collector.LARGE_GRAPH)
    gc.set_threshold(500, 5, 50)  # the program changes its mind meanwhile
    del y
    assert gc.get_threshold() == (500, 5, 50)


def test_a_lax_schedule_of_the_program_is_not_touched() -> None:
    gc.set_threshold(700, 10, 2 * _collector.DEFERRED_THRESHOLD)
    y = chain(Parameter(1.0), 2 * _collector.LARGE_GRAPH)
    assert gc.get_threshold() == (700, 10, 2 * _collector.DEFERRED_THRESHOLD)
    del y
    assert gc.get_threshold() == (700, 10, 2 * _collector.DEFERRED_THRESHOLD)


def test_two_large_graphs_defer_until_both_are_freed() -> None:
    first = chain(Parameter(1.0), 2 * _collector.LARGE_GRAPH)
    second = chain(Parameter(1.0), 2 * _collector.LARGE_GRAPH)
    del first
    assert gc.get_threshold()[2] == _collector.DEFERRED_THRESHOLD
    del second
    assert gc.get_threshold() == DEFAULT


def test_threads_recording_large_graphs_leave_the_schedule_as_it_was() -> None:
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                x = Parameter(1.0)
                gradient = backprop(chain(x, _collector.LARGE_GRAPH + 10), [x])[x]
                np.testing.assert_allclose(gradient, 1.0001 ** ((_collector.LARGE_GRAPH + 10) // 2))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert not _collector.deferring()
    assert gc.get_threshold() == DEFAULT


def test_no_full_collection_while_a_large_graph_is_recorded() -> None:
    """Full collections would scan the growing graph again and again."""
    before = gc.get_stats()[2]["collections"]
    x = Parameter(1.0)
    y = chain(x, 200_000)  # about 1.3 million tracked objects
    during = gc.get_stats()[2]["collections"] - before
    np.testing.assert_allclose(backprop(y, [x])[x], 1.0001**100_000)
    assert during == 0
    # Without the deferral, the same graph sets off several full collections.
    del y
    gc.collect()
    before = gc.get_stats()[2]["collections"]
    y = x
    for _ in range(100_000):
        y = y * 1.0001 + 0.001
        gc.set_threshold(*DEFAULT)  # undo the deferral at every step
    assert gc.get_stats()[2]["collections"] - before > 0
