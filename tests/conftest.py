"""Shared fixtures for the tests."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# As the Makefile does: without AUTODIFF_MNIST_DIR, use the offline copy of MNIST
# beside the repository when there is one, so a bare `pytest` needs no network.
_SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "mnist"
if not os.environ.get("AUTODIFF_MNIST_DIR") and _SHARED_MNIST.is_dir():
    os.environ["AUTODIFF_MNIST_DIR"] = str(_SHARED_MNIST)


@pytest.fixture
def rng() -> np.random.Generator:
    """A random generator with a fixed seed, fresh for every test."""
    return np.random.default_rng(20240611)
