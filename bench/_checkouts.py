"""Load the autodiff package of another checkout beside this one, in the same process.

The benchmarks compare this checkout with another (``--baseline PATH``, for
example a ``git worktree`` of main) in one process, in turns, so that both
see the machine in the same state. Both are imported under the name
``autodiff``: the other one is imported with its folder first on
``sys.path``, its modules are taken out of ``sys.modules`` again, and this
checkout's modules are put back. Each function keeps the globals of the
module it was defined in, so the two copies do not mix.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace


def _ours(name: str) -> bool:
    return name == "autodiff" or name.startswith("autodiff.")


def load(path: str | Path) -> SimpleNamespace:
    """``autodiff`` and ``autodiff.nn`` of the checkout at ``path``, as ``.ad`` and ``.nn``."""
    folder = Path(path).resolve()
    if not (folder / "autodiff" / "__init__.py").is_file():
        raise SystemExit(f"--baseline: {folder} holds no autodiff package (autodiff/__init__.py).")
    importlib.import_module("autodiff.nn")  # this checkout's package, complete, first
    current = {name: module for name, module in sys.modules.items() if _ours(name)}
    for name in current:
        del sys.modules[name]
    sys.path.insert(0, str(folder))
    try:
        ad = importlib.import_module("autodiff")
        nn = importlib.import_module("autodiff.nn")
    finally:
        sys.path.remove(str(folder))
        loaded: dict[str, ModuleType] = {n: m for n, m in sys.modules.items() if _ours(n)}
        for name in loaded:
            del sys.modules[name]
        sys.modules.update(current)
    if Path(ad.__file__).resolve().parent != folder / "autodiff":
        raise SystemExit(f"--baseline: imported {ad.__file__}, not the package in {folder}.")
    return SimpleNamespace(ad=ad, nn=nn, path=folder)
