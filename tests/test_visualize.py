"""Drawing the graph: the DOT source that visualize produces."""

from __future__ import annotations

import re
import shutil

import graphviz
import numpy as np
import pytest

from autodiff import MSE, Parameter, ReLU, backprop, topological_order, visualize
from autodiff.core import Variable


def exercise_1() -> tuple[Parameter, Parameter, Variable]:
    x, gamma = Parameter(7.0), Parameter(5.0)
    return x, gamma, ReLU(x) + x * gamma


def node_label(source: str, variable: Variable) -> str:
    match = re.search(rf'^\t{id(variable)} \[label="?(.*?)"? (?:fillcolor|shape)', source, re.M | re.S)
    assert match, f"no node for {variable!r}"
    return match.group(1)


def test_returns_a_digraph_with_values_and_operations() -> None:
    x, gamma, J = exercise_1()
    graph = visualize(J)
    assert isinstance(graph, graphviz.Digraph)
    source = graph.source
    assert node_label(source, x) == "7.0"
    assert node_label(source, gamma) == "5.0"
    assert node_label(source, J) == "42.0"
    # One ellipse per operation: ReLU, × and +.
    assert len(re.findall(r"shape=ellipse", source)) == 3
    assert "label=ReLU" in source and 'label="×"' in source and 'label="+"' in source
    # Each variable is a node once; edges go from inputs to operations to outputs.
    for variable in topological_order(J):
        assert len(re.findall(rf"^\t{id(variable)} \[", source, re.M)) == 1
    operation = J.operation
    assert f"op{id(operation)} -> {id(J)}" in source


def test_edges_of_two_input_operations_are_labelled() -> None:
    x, gamma, J = exercise_1()
    source = visualize(J).source
    product = J.operation.args[1]
    assert f"{id(x)} -> op{id(product.operation)} [label=x]" in source
    assert f"{id(gamma)} -> op{id(product.operation)} [label=y]" in source
    relu = J.operation.args[0]
    assert f'{id(x)} -> op{id(relu.operation)} [label=""]' in source  # one input: no label


def test_names_gradients_and_order() -> None:
    x, gamma, J = exercise_1()
    gradients = backprop(J)
    source = visualize(J, gradients, names={x: "x", gamma: "γ", J: "J"}, show_order=True).source
    assert node_label(source, x) == "#0  x = 7.0\ngrad 6.0"
    assert node_label(source, gamma) == "#2  γ = 5.0\ngrad 7.0"
    assert node_label(source, J) == "#4  J = 42.0\ngrad 1.0"
    for number, variable in enumerate(topological_order(J)):
        assert node_label(source, variable).startswith(f"#{number}  ")


def test_no_gradients_or_order_unless_asked() -> None:
    _, _, J = exercise_1()
    source = visualize(J).source
    assert "grad" not in source and "#0" not in source


def test_large_arrays_show_shape_and_dtype() -> None:
    w = Parameter(np.zeros((5, 5), dtype=np.float32))
    v = Parameter([1.0, 2.0])
    J = MSE(w.sum(axis=0)[:2], v)
    source = visualize(J, backprop(J)).source
    assert "array(shape=(5, 5), dtype=float32)" in source
    assert "grad array(shape=(5, 5), dtype=float64)" in source  # v is float64, so is the loss
    assert node_label(source, v) == "[1., 2.]\ngrad [1., 2.]"  # d mean((0 - v)^2)/dv = v


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_renders_to_svg() -> None:
    _, _, J = exercise_1()
    svg = visualize(J, backprop(J), show_order=True).pipe(format="svg").decode()
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    assert "42.0" in svg
