"""Shared fixtures for the engine's tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A random generator with a fixed seed, fresh for every test."""
    return np.random.default_rng(20240611)
