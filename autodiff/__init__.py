"""autodiff: reverse-mode automatic differentiation on NumPy, small enough to read.

>>> from autodiff import Parameter, backprop
>>> x = Parameter(3.0)
>>> J = x * x
>>> float(backprop(J)[x])
6.0
"""

from autodiff.check import GradientCheckError, check_gradients, numeric_gradient, numeric_test
from autodiff.core import (
    Input,
    Operation,
    Parameter,
    Variable,
    backprop,
    get_variables,
    topological_order,
    unbroadcast,
)
from autodiff.ops import (
    MSE,
    Add,
    Div,
    Exp,
    GetItem,
    Identity,
    Log,
    MatMul,
    Mean,
    Mul,
    Neg,
    Pow,
    ReLU,
    Reshape,
    Sigmoid,
    Sub,
    Sum,
    Tanh,
    Transpose,
)
from autodiff.visualize import visualize

__all__ = [
    "Variable",
    "Parameter",
    "Input",
    "Operation",
    "backprop",
    "topological_order",
    "get_variables",
    "unbroadcast",
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
    "ReLU",
    "Sigmoid",
    "Tanh",
    "Sum",
    "Mean",
    "MatMul",
    "GetItem",
    "Reshape",
    "Transpose",
    "MSE",
]

__version__ = "0.1.0"
