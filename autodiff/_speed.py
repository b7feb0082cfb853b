"""The engine's speed machinery: Python's garbage collector, and one fast path.

The engine (:mod:`autodiff.core`) calls this module at one point:
:func:`apply` runs every operation it records. Nothing here changes a
result; it only changes how fast the result comes.

A fast path stays here only if a benchmark shows it is worth at least 3 %
of the per-node chain of ``bench/bench_engine.py`` or of an MNIST epoch of
``bench/bench_mnist.py``. (Switching the collector off during the backward
pass, which an earlier version did, gave 1 % on the chain: it went.)

**The cyclic garbage collector.** CPython frees an object as soon as nothing
refers to it any more (reference counting). Objects in a reference cycle are
never freed that way, so a second mechanism, the cyclic garbage collector,
looks for them by scanning the objects that can hold references. It scans
young objects often and cheaply, and it scans *all* of them (a "full
collection") when the number of long-lived objects has grown by a quarter
since the last one.

A large graph being recorded is exactly such a growing set of long-lived
objects, several per operation, so full collections come again and again,
and each one scans the whole graph so far. They find nothing: a variable
refers to the operation that made it, an operation to its inputs and its
``grad`` closure, and nothing refers forward, so a graph has no cycles, and
reference counting frees it as soon as its output is dropped. Without help,
a chain of a million operations spends about half of its forward pass in
those scans.

So every :data:`LARGE_GRAPH` recorded operations, :func:`apply` takes a
*checkpoint*: the operation it is running. While a checkpoint is alive, full
collections wait (the collector's third threshold is raised to
:data:`DEFERRED_THRESHOLD`). An operation lives exactly as long as the graph
it belongs to, since its output, and every later variable of the graph,
refers to it; when the last checkpoint has been freed, the collector's
previous schedule returns. A training loop of small graphs frees each
checkpoint a step later, so its full collections are at most briefly
delayed; a long-lived large graph defers them for as long as it lives.
Young collections go on throughout.
"""

from __future__ import annotations

import gc
import itertools
import threading
import weakref
from typing import Any

#: A checkpoint is taken every LARGE_GRAPH recorded operations.
LARGE_GRAPH = 10_000

#: The collector's third threshold while a checkpoint is alive. A full
#: collection is then considered only after this many middle-generation ones.
DEFERRED_THRESHOLD = 10_000

_counter = itertools.count(1)  # next() on it is atomic: threads may share it
_lock = threading.Lock()  # guards the two names below
_live_checkpoints = 0
_saved_threshold: int | None = None  # the third threshold before the deferral


def apply(operation: Any, inputs: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``operation.apply(*[x.value for x in inputs], **kwargs)``, counted.

    The fast path: Python 3.11 calls a function with ``*args`` through a
    generic path that costs about as much as a NumPy operation on small
    arrays. Most operations have one or two inputs and no settings; calling
    their ``apply`` directly makes the per-node chain of
    ``bench/bench_engine.py`` 5 % faster (N = 1,000: 5.73 against 6.01 µs
    per node, measured in one process taking turns, on 2026-12-01), and
    saves 3,000 of 33,000 instructions per operation (``valgrind
    --tool=callgrind``).
    """
    if next(_counter) % LARGE_GRAPH == 0:
        _checkpoint(operation)
    if not kwargs:
        if len(inputs) == 2:
            return operation.apply(inputs[0].value, inputs[1].value)
        if len(inputs) == 1:
            return operation.apply(inputs[0].value)
    return operation.apply(*[x.value for x in inputs], **kwargs)


def _checkpoint(operation: Any) -> None:
    global _live_checkpoints, _saved_threshold
    with _lock:
        if _live_checkpoints == 0:
            first, second, third = gc.get_threshold()
            if third < DEFERRED_THRESHOLD:  # unless the program's schedule is as lax
                _saved_threshold = third
                gc.set_threshold(first, second, DEFERRED_THRESHOLD)
        _live_checkpoints += 1
    weakref.finalize(operation, _release).atexit = False


def _release() -> None:
    """Called when a checkpoint's graph has been freed."""
    global _live_checkpoints, _saved_threshold
    with _lock:
        _live_checkpoints -= 1
        if _live_checkpoints > 0 or _saved_threshold is None:
            return
        first, second, third = gc.get_threshold()
        if third == DEFERRED_THRESHOLD:  # unless the program has set its own meanwhile
            gc.set_threshold(first, second, _saved_threshold)
        _saved_threshold = None


def deferring() -> bool:
    """True while full collections wait for a large graph to be freed."""
    with _lock:
        return _live_checkpoints > 0
