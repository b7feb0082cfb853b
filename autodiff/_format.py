"""How variables and values print: shared by ``Variable.__repr__``, the graph
drawings and the error messages. Internal to the package."""

from __future__ import annotations

from typing import Any

import numpy as np


def format_array(array: np.ndarray, digits: int | None = None) -> str:
    """Print small arrays in full, large ones as their shape and dtype.

    With ``digits``, floats are rounded to that many significant digits.

    Examples
    --------
    >>> format_array(np.array(2.0))
    '2.0'
    >>> format_array(np.arange(3.0))
    '[0., 1., 2.]'
    >>> format_array(np.zeros((5, 4)))
    'array(shape=(5, 4), dtype=float64)'
    """
    if array.size >= 20:
        return f"array(shape={array.shape}, dtype={array.dtype})"
    if array.ndim == 0:
        value = array.item()
        if digits is None or not isinstance(value, float):
            return str(value)
        if value.is_integer() and abs(value) < 1e6:
            return f"{value:.1f}"
        return f"{value:.{digits}g}"
    return np.array2string(
        array, separator=", ", precision=digits, suppress_small=digits is not None
    )


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
