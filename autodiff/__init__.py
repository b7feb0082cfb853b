"""autodiff: reverse-mode automatic differentiation on NumPy, small enough to read.

>>> from autodiff import Parameter, backprop
>>> x = Parameter(3.0)
>>> J = x * x
>>> float(backprop(J)[x])
6.0
"""

from autodiff.check import GradientCheckError, check_gradients, numeric_gradient, numeric_test
from autodiff.core import (
    IndexingError,
    Input,
    Operation,
    Parameter,
    ShapeError,
    Variable,
    backprop,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
    topological_order,
    unbroadcast,
)
from autodiff.ops import (
    MSE,
    Abs,
    Add,
    Affine,
    BroadcastTo,
    Div,
    Exp,
    GetItem,
    Identity,
    Log,
    MatMul,
    Maximum,
    Mean,
    Mul,
    Neg,
    Pow,
    ReLU,
    Reshape,
    ScatterAdd,
    Sigmoid,
    SoftmaxCrossEntropy,
    Sub,
    Sum,
    Tanh,
    Transpose,
    Where,
)
from autodiff.visualize import visualize

__all__ = [
    "Variable",
    "Parameter",
    "Input",
    "Operation",
    "ShapeError",
    "IndexingError",
    "backprop",
    "topological_order",
    "unbroadcast",
    "no_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "numeric_test",
    "numeric_gradient",
    "check_gradients",
    "GradientCheckError",
    "visualize",
    "Identity",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Neg",
    "Pow",
    "Exp",
    "Log",
    "Abs",
    "ReLU",
    "Maximum",
    "Sigmoid",
    "Tanh",
    "Sum",
    "Mean",
    "MatMul",
    "GetItem",
    "ScatterAdd",
    "Reshape",
    "Transpose",
    "BroadcastTo",
    "Where",
    "MSE",
    "Affine",
    "SoftmaxCrossEntropy",
]

__version__ = "0.1.0"
