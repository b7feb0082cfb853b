"""Shared fixtures for the tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# As the Makefile does: without AUTODIFF_MNIST_DIR, use the offline copy of MNIST
# beside the repository when there is one, the full set before the subset, so a
# bare `pytest` needs no network. (The student-notebook round trip prefers the
# subset, for speed: see tests/test_student_notebooks.py.)
_SHARED = Path(__file__).resolve().parents[2] / "shared"
if not os.environ.get("AUTODIFF_MNIST_DIR"):
    for _folder in (_SHARED / "mnist-full", _SHARED / "mnist"):
        if _folder.is_dir():
            os.environ["AUTODIFF_MNIST_DIR"] = str(_folder)
            break


@pytest.fixture
def rng() -> np.random.Generator:
    """A random generator with a fixed seed, fresh for every test."""
    return np.random.default_rng(20240611)
