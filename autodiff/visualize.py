"""Draw a computation graph with graphviz."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from autodiff._format import format_array
from autodiff.core import Input, Operation, Parameter, Variable, topological_order

if TYPE_CHECKING:
    import graphviz

__all__ = ["visualize"]

# How the common operations are drawn: a symbol reads faster than a name.
_SYMBOLS = {"Add": "+", "Sub": "−", "Mul": "×", "Div": "÷", "Neg": "−", "Pow": "**", "MatMul": "@"}


@lru_cache(maxsize=None)
def _input_names(cls: type[Operation]) -> tuple[str, ...]:
    """The names of the positional inputs of ``cls.apply`` (``x``, ``y``, ...)."""
    parameters = list(inspect.signature(cls.apply).parameters.values())[1:]
    return tuple(
        p.name
        for p in parameters
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    )


def _edge_label(operation: Operation, position: int) -> str:
    names = _input_names(type(operation))  # type: ignore[arg-type]
    return names[position] if position < len(names) else str(position)


def visualize(
    variable: Variable,
    gradients: Mapping[Variable, Any] | None = None,
    *,
    names: Mapping[Variable, str] | None = None,
    show_order: bool = False,
) -> graphviz.Digraph:
    """Draw the graph that computed ``variable``, from the inputs up.

    Variables are boxes with their value, to four significant digits (shape
    and dtype for arrays of 20 elements or more): parameters blue, inputs grey, intermediate results
    white. Operations are ellipses; where an operation has several inputs,
    each edge is labelled with the name of the argument it feeds.

    Parameters
    ----------
    variable
        The output of the graph, usually the loss.
    gradients
        The result of :func:`~autodiff.core.backprop`; each variable then
        also shows its gradient.
    names
        Optional names to print on variables, such as ``{x: "x"}``.
    show_order
        Number the variables in execution order (the order of
        :func:`~autodiff.core.topological_order`).

    Returns
    -------
    graphviz.Digraph
        In a notebook, the last expression of a cell draws it.

    Examples
    --------
    >>> from autodiff import Parameter, ReLU
    >>> x, gamma = Parameter(7.0), Parameter(5.0)
    >>> J = ReLU(x) + x * gamma
    >>> graph = visualize(J, names={x: "x", gamma: "γ", J: "J"})
    >>> "γ = 5.0" in graph.source
    True
    """
    import graphviz

    names = names or {}
    graph = graphviz.Digraph()
    graph.attr(rankdir="BT")
    graph.attr("node", fontname="Helvetica", fontsize="11")
    graph.attr("edge", fontname="Helvetica", fontsize="10", color="#555555")

    for number, node in enumerate(topological_order(variable)):
        label = format_array(node.value, digits=4)
        if node in names:
            label = f"{names[node]} = {label}"
        if show_order:
            label = f"#{number}  {label}"
        if gradients is not None and node in gradients:
            label += f"\ngrad {format_array(np.asarray(gradients[node]), digits=4)}"
        if isinstance(node, Parameter):
            style = {"style": "filled,rounded", "fillcolor": "#dbe9f6"}
        elif isinstance(node, Input):
            style = {"style": "filled,rounded", "fillcolor": "#eeeeee"}
        else:
            style = {"style": "rounded"}
        graph.node(str(id(node)), label, shape="box", **style)

        operation = node.operation
        if operation is not None:
            op_id = f"op{id(operation)}"
            op_name = type(operation).__name__
            graph.node(op_id, _SYMBOLS.get(op_name, op_name), shape="ellipse")
            graph.edge(op_id, str(id(node)))
            several = len(operation.args) > 1
            for position, argument in enumerate(operation.args):
                label = _edge_label(operation, position) if several else ""
                graph.edge(str(id(argument)), op_id, label=label)
    return graph
