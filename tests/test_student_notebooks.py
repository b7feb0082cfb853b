"""The student edition: notebooks with ``???`` gaps generated from the chapters.

Unit tests of the gap rules and the markdown conversion run on small fixtures.
The tests on the real notebooks check, for every generated notebook, that it
validates, that every marked solution became a gap and no solution text
survives, that filling the gaps with the solutions gives a notebook that runs
in a real kernel, and that a wrong answer makes the exercise's check fail with
a message that helps.
"""

from __future__ import annotations

import ast
import inspect
import os
import re
import sys
import textwrap
import zipfile
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import student_edition as se  # noqa: E402

GAP = se.GAP
CELL_TIMEOUT = 600  # seconds per cell; the MNIST chapter trains a network

MARKED = re.compile(r"^(?P<indent>\s*)(?P<code>.*?)\s*#\s*solution\s*$")


# ---------------------------------------------------------------- the gap rules


@pytest.mark.parametrize(
    ("line", "expected", "fills"),
    [
        ("z = x + y  # solution", "z = ???", ["x + y"]),
        ("    return gz, gz  # solution", "    return ???, ???", ["gz", "gz"]),
        ("    return gz * (x >= 0),  # solution", "    return ???,", ["gz * (x >= 0)"]),
        ("    return (gz, -gz)  # solution", "    return (???, ???)", ["gz", "-gz"]),
        ("total += weights[i]  # solution", "total += ???", ["weights[i]"]),
        ("w: float = 2.0 * x  # solution", "w: float = ???", ["2.0 * x"]),
        ('s = "a # b" + t  # solution', "s = ???", ['"a # b" + t']),
        ("a = b = f(x)  # solution", "a = b = ???", ["f(x)"]),
        ("gx[x < 0] = 0  # solution", "gx[x < 0] = ???", ["0"]),
        ("    np.copyto(gx, 0, where=x < 0)  # solution", "    ???", ["np.copyto(gx, 0, where=x < 0)"]),
        ("z = x * y  # not a solution marker", "z = x * y  # not a solution marker", []),
    ],
)
def test_marked_line(line: str, expected: str, fills: list[str]) -> None:
    prefix = "def f(gz, x, y, t, weights, i, gx):\n    total = 0\n" if line.startswith("    ") else ""
    student, found, problems = se.gap_marked_lines(prefix + line)
    assert student == prefix + expected
    assert found == fills
    assert problems == []
    assert se.fill_gaps(student, found) == prefix + line.split("  #")[0] if fills else True


def test_marked_multiline_statement_and_ipython_magic() -> None:
    source = "%matplotlib inline\ny = np.concatenate(\n    [a, b]\n)  # solution\nprint(y)\n"
    student, fills, problems = se.gap_marked_lines(source)
    assert student == "%matplotlib inline\ny = ???\nprint(y)\n"
    assert fills == ["np.concatenate(\n    [a, b]\n)"]
    assert problems == []


def test_marker_on_a_compound_header_is_reported() -> None:
    source = "if x > 0:  # solution\n    y = 1\n"
    _, _, problems = se.gap_marked_lines(source)
    assert problems and "not a simple statement" in problems[0]


def test_solution_cell_keeps_the_skeleton() -> None:
    source = textwrap.dedent(
        '''\
        import numpy as np
        x = Parameter(7.0)
        h, z = ReLU(x), x * 5
        print(h)
        visualize(z)
        def symbolic_mse(a, b):
            """The mean squared error."""
            difference = a - b
            return (difference * difference).mean()
        '''
    )
    student, fills = se.gap_solution_cell(source)
    assert student == textwrap.dedent(
        '''\
        # Your solution here
        import numpy as np
        x = ???
        h, z = ???, ???
        ???
        def symbolic_mse(a, b):
            """The mean squared error."""
            ???
        '''
    )
    assert "(difference * difference).mean()" in fills[-1]
    assert se.same_code(se.fill_gaps(student, fills), source)


def test_gap_operation_keeps_structure_lines() -> None:
    import autodiff.ops

    source = inspect.getsource(autodiff.ops.MSE)
    student, fills = se.gap_operation(source)
    for kept in ("def apply(self, x, y):", "def grad(gz):", "self.grad = grad", "return z"):
        assert kept in student
    assert "(difference * difference)" not in student and "2 / difference.size" not in student
    assert se.fill_gaps(student, fills) == source


# ---------------------------------------------------------------- markdown


def test_markdown_directives_become_readable(tmp_path: Path) -> None:
    (tmp_path / "code.py").write_text("class A:\n    def f(self):\n        return 42\n\n\nX = 1\n")
    source = textwrap.dedent(
        """\
        (sec-label)=
        Read {math}`x^2` and {ref}`the section <sec-label>`, see {class}`~autodiff.Variable`.
        % a MyST comment

        ```{dropdown} Solution
        The answer is 42.
        ```

        :::{dropdown} Why does this work?
        Because of the chain rule.
        :::

        ```{dropdown} More details
        See [the next chapter](backprop.md#the-rule).
        ```

        ```{literalinclude} code.py
        :pyobject: A.f
        ```

        ```{note}
        Mind the comma.
        ```
        """
    )
    out = se.convert_markdown(source, tmp_path)
    assert "{" not in out and ":::" not in out and "%" not in out
    assert "42" not in out.replace("return 42", "")  # the solution's text is gone...
    assert se.NO_ANSWER in out  # ...replaced by the note
    assert "**Why does this work?**\n\n" + se.NO_ANSWER in out  # a question's answer
    assert "chain rule" not in out
    assert "**More details**\n\nSee [the next chapter](backprop.ipynb#the-rule)." in out
    assert "<details><summary>" in out  # folded: it may be the solution
    assert "```python\ndef f(self):\n    return 42\n```\n\n</details>" in out
    assert "$x^2$" in out and "the section" in out and "`autodiff.Variable`" in out
    assert "> **Note**" in out and "> Mind the comma." in out


# ---------------------------------------------------------------- a fixture chapter

FIXTURE = """\
---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A fixture chapter

```{code-cell} ipython3
import numpy as np
from autodiff import Parameter, numeric_test
```

```{code-cell} ipython3
:tags: [hide-input]
x = Parameter(3.0)
y = x * x  # solution
```

```{code-cell} ipython3
np.testing.assert_allclose(y.value, 9.0, err_msg="y should be x squared.")
```

```{code-cell} ipython3
:tags: [solution, hide-input]
def cube(v):
    return v * v * v
```

```{code-cell} ipython3
assert cube(2.0) == 8.0, "cube(2) should be 8."
```

```{dropdown} Solution
It is nine.
```
"""


@pytest.fixture
def fixture_chapter(tmp_path: Path) -> Path:
    path = tmp_path / "fixture.md"
    path.write_text(FIXTURE)
    return path


def test_fixture_chapter(fixture_chapter: Path) -> None:
    student = se.student_chapter(fixture_chapter)
    notebook = student.notebook
    nbformat.validate(notebook)
    assert student.problems == []
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    assert "jupytext" not in notebook.metadata
    intro = notebook.cells[0].source
    assert "A fixture chapter" in intro and "pip install -e ." in intro
    codes = [c for c in notebook.cells if c.cell_type == "code"]
    assert codes[1].source == "x = Parameter(3.0)\ny = ???"
    assert codes[1].metadata == {}  # hide-input dropped
    assert codes[3].source == "# Your solution here\ndef cube(v):\n    ???"
    assert codes[3].metadata["tags"] == ["solution"]
    assert all(c.outputs == [] and c.execution_count is None for c in codes)
    assert "It is nine" not in nbformat.writes(notebook)


def test_fixture_chapter_round_trip_and_wrong_answer(fixture_chapter: Path) -> None:
    student = se.student_chapter(fixture_chapter)
    _execute(se.fill_notebook(student), fixture_chapter.parent)
    record = student.gaps[0]
    error = _execute_expecting_failure(
        se.fill_notebook(student, {(record.cell, 0): "x + 1"}), fixture_chapter.parent
    )
    assert error["cell"] == record.cell + 1
    assert "y should be x squared" in error["evalue"]


def test_sphinx_build_links_and_writes_notebooks(tmp_path: Path, fixture_chapter: Path) -> None:
    """A strict (-W -n) build of a one-chapter book writes the notebooks and the link."""
    from sphinx.cmd.build import build_main

    src = tmp_path / "docs"
    src.mkdir()
    (src / "fixture.md").write_text(FIXTURE)
    (src / "index.md").write_text("# Index\n\n```{toctree}\nfixture\n```\n")
    (tmp_path / "conf.py").write_text(
        textwrap.dedent(
            f"""\
            import sys
            sys.path.insert(0, {str(DOCS / "_ext")!r})
            extensions = ["myst_nb", "sphinx_design", "student_notebooks"]
            nb_execution_mode = "off"
            student_notebooks_root = {str(ROOT)!r}
            exclude_patterns = ["_build"]
            """
        )
    )
    out = tmp_path / "html"
    status = build_main(["-q", "-W", "-n", "-b", "html", "-c", str(tmp_path), str(src), str(out)])
    assert status == 0
    page = (out / "fixture.html").read_text()
    assert "Exercise notebook" in page and "href=\"notebooks/fixture.ipynb\"" in page
    assert "notebooks/index.ipynb" not in (out / "index.html").read_text()
    for name in ("fixture.ipynb", f"{se.BUILD_YOUR_OWN}.ipynb", se.ZIP_NAME):
        assert (out / "notebooks" / name).is_file()
    with zipfile.ZipFile(out / "notebooks" / se.ZIP_NAME) as archive:
        names = sorted(Path(n).name for n in archive.namelist())
    assert names == ["build-your-own-autodiff.ipynb", "fixture.ipynb"]


def test_missing_hide_input_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "chapter.md"
    path.write_text(FIXTURE.replace(":tags: [hide-input]\n", ""))
    problems = se.student_chapter(path).problems
    assert len(problems) == 1 and "no `hide-input` tag" in problems[0] and "code cell at line 18" in problems[0]


def test_command_line_writes_notebooks_and_zip(tmp_path: Path, fixture_chapter: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_student_notebooks

    out = tmp_path / "out"
    assert make_student_notebooks.main([str(fixture_chapter.parent), str(out), "--root", str(ROOT)]) == 0
    for name in ("fixture.ipynb", f"{se.BUILD_YOUR_OWN}.ipynb", se.ZIP_NAME):
        assert (out / name).is_file()
    nbformat.validate(nbformat.read(out / "fixture.ipynb", as_version=4))


# ---------------------------------------------------------------- the real notebooks

CHAPTERS = se.chapter_paths(DOCS)


@pytest.fixture(scope="module")
def build_your_own() -> se.StudentNotebook:
    return se.build_your_own(ROOT)


def _student(name: str, build_your_own: se.StudentNotebook) -> se.StudentNotebook:
    if name == se.BUILD_YOUR_OWN:
        return build_your_own
    return se.student_chapter(DOCS / f"{name}.md")


NAMES = [p.stem for p in CHAPTERS] + [se.BUILD_YOUR_OWN]


def _code_cells(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(c.source for c in notebook.cells if c.cell_type == "code")


def _rhs(code: str) -> str | None:
    """The solution part of a marked line, found independently of the generator."""
    match = re.match(r"^return\s+(.*)$", code)
    if match:
        return match.group(1)
    try:
        node = ast.parse(code).body[0]
    except SyntaxError:
        return None
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
        return ast.get_source_segment(code, node.value)
    return code


@pytest.mark.parametrize("name", NAMES)
def test_student_notebook_is_valid(name: str, build_your_own: se.StudentNotebook) -> None:
    student = _student(name, build_your_own)
    nbformat.validate(student.notebook)
    assert student.notebook.nbformat == 4
    assert student.notebook.metadata["kernelspec"]["name"] == "python3"
    for cell in student.notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert "hide-input" not in cell.metadata.get("tags", [])
        if cell.cell_type == "markdown":
            assert not re.search(r"^\s*(```|:::)\{", cell.source, re.MULTILINE), cell.source


@pytest.mark.parametrize("name", [p.stem for p in CHAPTERS])
def test_chapter_has_a_gap_for_every_solution_and_no_solution_left(name: str) -> None:
    path = DOCS / f"{name}.md"
    chapter = jupytext.read(path, fmt="md:myst")
    student = se.student_chapter(path)
    assert student.problems == [], "\n".join(student.problems)
    student_code = _code_cells(student.notebook)
    # Text outside the solutions: a solution string may legitimately appear there.
    free = []
    solutions: list[tuple[str, str]] = []
    for index, cell in enumerate(chapter.cells):
        if cell.cell_type != "code":
            continue
        new = student.notebook.cells[index + 1]  # +1: the intro cell
        tags = cell.metadata.get("tags", [])
        if "solution" in tags:
            assert GAP in new.source, f"cell {index}: solution cell without a gap"
            for line in cell.source.split("\n"):
                stripped = line.strip()
                if stripped and not stripped.startswith(("#", "def ", "class ", "import ", "from ")):
                    rhs = _rhs(stripped)
                    if rhs and not rhs.startswith(('"', "'")):
                        solutions.append((f"cell {index}", rhs))
            continue
        student_lines = new.source.split("\n")
        for line in cell.source.split("\n"):
            match = MARKED.match(line)
            if not match:
                free.append(line)
                continue
            code = match.group("code")
            rhs = _rhs(code)
            assert rhs is not None, f"{name}: cannot read marked line {line!r}"
            head = code[: len(code) - len(rhs)] if code.endswith(rhs) else ""
            expected = match.group("indent") + head
            assert any(
                l.startswith(expected) and GAP in l[len(expected) - 1 :] for l in student_lines
            ), f"{name}: no gap for {line.strip()!r}"
            solutions.append((line.strip(), rhs))
    free_text = "\n".join(free)
    for where, solution in solutions:
        for part in [solution] + [p.strip() for p in solution.split(",") if len(p.strip()) > 3]:
            if len(part) > 3 and part not in free_text:
                assert part not in student_code, f"{name}: solution {part!r} ({where}) survived"


def test_build_your_own_has_every_gap_and_no_solution_left(build_your_own: se.StudentNotebook) -> None:
    import autodiff.ops

    notebook = build_your_own.notebook
    code = _code_cells(notebook)
    assert "import autodiff" not in code and "from autodiff" not in code
    assert "_operations" not in code
    for name in se.EXERCISE_OPS:
        source = inspect.getsource(getattr(autodiff.ops, name))
        cell = next(c for c in notebook.cells if c.source.startswith(f"class {name}(Operation):"))
        apply = next(
            n for n in ast.parse(source).body[0].body if isinstance(n, ast.FunctionDef) and n.name == "apply"
        )
        assert cell.source.count(GAP) >= 2, f"{name} has too few gaps"
        grad = next(n for n in ast.walk(apply) if isinstance(n, ast.FunctionDef) and n.name.startswith("grad"))
        returned = [
            e
            for n in ast.walk(grad)
            if isinstance(n, ast.Return) and n.value is not None
            for e in (n.value.elts if isinstance(n.value, ast.Tuple) else [n.value])
        ]
        returned_names = {e.id for e in returned if isinstance(e, ast.Name)}
        solutions = [e for e in returned if not isinstance(e, (ast.Name, ast.Constant))]
        for node in ast.walk(apply):
            if isinstance(node, ast.Assign) and not isinstance(node.value, (ast.Constant, ast.Name, ast.Attribute)):
                targets = {t.id for t in node.targets if isinstance(t, ast.Name)}
                in_grad = any(node is n for n in ast.walk(grad))
                if "z" in targets or (in_grad and targets & returned_names) or not in_grad:
                    solutions.append(node.value)
        assert solutions, name
        for value in solutions:
            text = ast.get_source_segment(source, value)
            assert text and not re.search(rf"(=|return|,)\s*{re.escape(text)}\s*(,|$)", cell.source, re.M), (
                f"{name}: {text!r} survived"
            )
            assert re.search(r"(=|return|,)\s*\?\?\?", cell.source)
    # The theory graphs: both exercises, with their checks.
    assert "42" in code and "121" in code
    theory = [g for g in build_your_own.gaps if g.kind != "op"]
    assert len(theory) >= 2


# ---------------------------------------------------------------- execution


# The round trip checks that the filled-in notebooks run, not how well their networks
# learn: when the training subset ../shared/mnist is there, the kernels read MNIST from
# it, which keeps the training chapters quick. The strict build (`make html-strict`)
# trains on the full set that the Makefile finds, and holds the chapters to it.
ROUND_TRIP_MNIST = ROOT.parent / "shared" / "mnist"


def _kernel_environment() -> dict[str, str]:
    environment = dict(os.environ)
    if (ROUND_TRIP_MNIST / "train-images-idx3-ubyte.gz").is_file():
        environment["AUTODIFF_MNIST_DIR"] = str(ROUND_TRIP_MNIST)
    return environment


def _execute(notebook: nbformat.NotebookNode, folder: Path) -> None:
    client = NotebookClient(
        notebook, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute(env=_kernel_environment())


def _execute_expecting_failure(notebook: nbformat.NotebookNode, folder: Path) -> dict[str, object]:
    with pytest.raises(CellExecutionError) as info:
        _execute(notebook, folder)
    failed = next(
        i
        for i, c in enumerate(notebook.cells)
        if c.cell_type == "code" and any(o.output_type == "error" for o in c.outputs)
    )
    return {"cell": failed, "ename": info.value.ename, "evalue": info.value.evalue}


def _same_code_as_chapter(name: str, student: se.StudentNotebook, filled: nbformat.NotebookNode) -> None:
    if name == se.BUILD_YOUR_OWN:
        for record in student.gaps:
            assert se.same_code(filled.cells[record.cell].source, record.original)
        return
    chapter = jupytext.read(DOCS / f"{name}.md", fmt="md:myst")
    for index, cell in enumerate(chapter.cells):
        if cell.cell_type == "code":
            assert se.same_code(filled.cells[index + 1].source, cell.source), f"{name}, cell {index}"


@pytest.mark.parametrize("name", NAMES)
def test_filled_notebook_runs(name: str, build_your_own: se.StudentNotebook) -> None:
    """Filling every gap with its solution gives the chapter's code, and it runs."""
    student = _student(name, build_your_own)
    filled = se.fill_notebook(student)
    assert GAP not in _code_cells(filled)
    _same_code_as_chapter(name, student, filled)
    _execute(filled, DOCS)


def test_wrong_gradient_in_build_your_own_is_explained(build_your_own: se.StudentNotebook) -> None:
    mul = next(g for g in build_your_own.gaps if g.original.startswith("class Mul("))
    assert mul.fills == ["x * y", "gz * y", "gz * x"]
    wrong = se.fill_notebook(build_your_own, {(mul.cell, 1): "gz * x"})  # gz * x for both inputs
    error = _execute_expecting_failure(wrong, DOCS)
    assert error["cell"] == mul.cell + 1  # the check right after Mul
    assert error["ename"] == "GradientCheckError"
    message = str(error["evalue"])
    assert "Gradient check failed for Mul, input 0" in message
    assert "analytic (from grad)" in message and "numeric (central differences)" in message


def test_build_your_own_falls_back_to_generated_theory_cells(tmp_path: Path) -> None:
    """Without marked exercise chapters, the theory cells are generated, and they run."""
    (tmp_path / "autodiff").symlink_to(ROOT / "autodiff")
    (tmp_path / "docs").mkdir()
    student = se.build_your_own(tmp_path)
    theory = [g for g in student.gaps if g.kind != "op"]
    assert [g.fills[0] for g in theory] == ["Parameter(7.0)", "Parameter(5.0)"]
    nbformat.validate(student.notebook)
    _execute(se.fill_notebook(student), tmp_path)


def test_wrong_value_in_build_your_own_is_explained(build_your_own: se.StudentNotebook) -> None:
    add = next(g for g in build_your_own.gaps if g.original.startswith("class Add("))
    error = _execute_expecting_failure(se.fill_notebook(build_your_own, {(add.cell, 0): "x - y"}), DOCS)
    assert error["cell"] == add.cell + 1
    assert "Add.apply: 123 + (-100) should be 23" in str(error["evalue"])


WITH_LINE_GAPS = [
    p.stem for p in CHAPTERS if any(g.kind == "line" for g in se.student_chapter(p).gaps)
]


@pytest.mark.parametrize("name", WITH_LINE_GAPS)
def test_wrong_answer_in_chapter_fails_its_check(name: str) -> None:
    """The first one-line solution of the chapter, answered wrongly, fails the check after it."""
    student = se.student_chapter(DOCS / f"{name}.md")
    record = next(g for g in student.gaps if g.kind == "line")
    wrong = f"({record.fills[0]}) * 1.5 + 0.25"
    error = _execute_expecting_failure(se.fill_notebook(student, {(record.cell, 0): wrong}), DOCS)
    cells = student.notebook.cells
    next_code = next(i for i in range(record.cell + 1, len(cells)) if cells[i].cell_type == "code")
    assert error["cell"] in (record.cell, next_code), (
        f"{name}: the wrong answer {wrong!r} was caught in cell {error['cell']}, not by the check after it"
    )
    assert error["ename"] in ("AssertionError", "GradientCheckError"), error
    assert len(str(error["evalue"]).strip()) > 10, f"{name}: the check fails without a helpful message"
