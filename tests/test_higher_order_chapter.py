"""Defects found while writing the chapter "Gradients of gradients" (docs/higher-order.md).

Each test states the behaviour the chapter needs. A test marked ``xfail(strict=True)``
documents a defect that is reported but not yet fixed: it fails today, as expected,
and turns into an error (XPASS) once the package is fixed, so that the marker is
removed at the same time.
"""

from __future__ import annotations

import numpy as np
import pytest

from autodiff import Operation, Parameter, Variable, backprop
from autodiff.ops import maximum


class WhereReLU(Operation):
    """ReLU whose grad uses ``np.where``, as the exercise's ``MyReLU`` does.

    Its ``apply`` runs on Variables (``maximum`` is the package's), so under
    ``create_graph=True`` its ``grad`` receives a Variable ``gz``.
    """

    def apply(self, x):  # type: ignore[no-untyped-def]
        z = maximum(x, 0)

        def grad(gz):  # type: ignore[no-untyped-def]
            return (np.where(x < 0, 0.0, gz),)

        self.grad = grad
        return z


def test_numpy_where_in_grad_is_fine_for_first_order() -> None:
    x = Parameter([-1.0, 2.0])
    gradient = backprop(WhereReLU(x).sum(), [x])[x]
    assert gradient.dtype == np.float64
    np.testing.assert_array_equal(gradient, [0.0, 1.0])


@pytest.mark.xfail(
    strict=True,
    reason="np.where(mask, 0.0, variable) is not a ufunc, so __array_ufunc__ = None does not "
    "stop it: it returns an object array holding a Variable, and backprop accepts that array "
    "as the gradient (the dtype check is skipped when the type is ndarray and the shape fits).",
)
def test_numpy_function_in_grad_under_create_graph_is_refused_or_recorded() -> None:
    x = Parameter([-1.0, 2.0])
    try:
        gradient = backprop(WhereReLU(x).sum(), [x], create_graph=True)[x]
    except TypeError:
        return  # refused with an error that names the problem: acceptable
    assert isinstance(gradient, Variable), (
        f"create_graph=True gave a {type(gradient).__name__} of dtype "
        f"{getattr(gradient, 'dtype', None)}: {gradient!r}"
    )
