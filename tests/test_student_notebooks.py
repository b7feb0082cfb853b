"""The student edition: notebooks with ``???`` gaps generated from the chapters.

Unit tests of the gap rules and the conversion run on small fixtures. The tests
on the real notebooks check, for every generated notebook, that it validates,
that every marked solution became a gap and no solution text survives, that
filling the gaps with the solutions gives a notebook that runs in a real
kernel, and that a wrong answer makes the exercise's check fail with a message
that helps. One more test keeps every chapter with code supplied with an
exercise.
"""

from __future__ import annotations

import ast
import copy
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

import autodiff.core
import autodiff.ops

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import exercise_gaps as eg  # noqa: E402
import myst_to_notebook as mn  # noqa: E402
import student_edition as se  # noqa: E402

GAP = eg.GAP
CELL_TIMEOUT = 600  # seconds per cell; the MNIST chapter trains a network
MARKED = re.compile(r"^(?P<indent>\s*)(?P<code>.*?)\s*#\s*solution\s*$")
FRONT_MATTER = """\
---
jupytext:
  text_representation:
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

"""


def fill_notebook(student: se.StudentNotebook, wrong: dict[tuple[int, int], str] | None = None) -> nbformat.NotebookNode:
    """The student notebook with every gap filled with its solution.

    ``wrong`` maps (cell index, gap number) to a text used instead of the solution.
    """
    notebook = copy.deepcopy(student.notebook)
    for record in student.gaps:
        fills = [(wrong or {}).get((record.cell, number), fill) for number, fill in enumerate(record.fills)]
        notebook.cells[record.cell].source = eg.fill_gaps(notebook.cells[record.cell].source, fills)
    return notebook


def same_code(a: str, b: str) -> bool:
    """True if two cells are the same Python code, comments and layout aside."""
    masked = [re.sub(r"^(\s*)[%!]", r"\1#", code, flags=re.MULTILINE) for code in (a, b)]  # IPython magics
    return ast.dump(ast.parse(masked[0])) == ast.dump(ast.parse(masked[1]))


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
    student, found, problems = eg.gap_marked_lines(prefix + line)
    assert student == prefix + expected
    assert found == fills
    assert problems == []
    # Filled in, the line is the chapter's line without its marker.
    assert eg.fill_gaps(student, found) == prefix + re.sub(r"\s*#\s*solution$", "", line)


def test_marked_multiline_statement_and_ipython_magic() -> None:
    source = "%matplotlib inline\ny = np.concatenate(\n    [a, b]\n)  # solution\nprint(y)\n"
    student, fills, problems = eg.gap_marked_lines(source)
    assert student == "%matplotlib inline\ny = ???\nprint(y)\n"
    assert fills == ["np.concatenate(\n    [a, b]\n)"]
    assert problems == []


def test_marker_on_a_compound_header_is_reported() -> None:
    _, _, problems = eg.gap_marked_lines("if x > 0:  # solution\n    y = 1\n")
    assert len(problems) == 1 and "does not end a simple statement" in problems[0]


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
    student, fills = eg.gap_solution_cell(source)
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
    assert same_code(eg.fill_gaps(student, fills), source)


def test_exercise_operation_keeps_structure_lines() -> None:
    source = eg.docstring_summary(inspect.getsource(autodiff.ops.MSE))
    assert source.count('"""') == 2 and "\n" not in source.split('"""')[1]  # the summary line only
    student, fills = eg.gap_exercise(source)
    for kept in ("def apply(self, x, y):", "def grad(gz):", "self.grad = grad", "return z", "return gx, ???"):
        assert kept in student
    assert "difference * difference" not in student and "2 / difference.size" not in student
    assert eg.fill_gaps(student, fills) == source


def test_exercise_function_gaps_what_builds_its_result() -> None:
    source = textwrap.dedent(
        '''\
        def totals(pairs):
            """Sum the values of each key."""
            result = {}
            for key, value in pairs:
                previous = result.get(key, 0)
                result[key] = previous + value
            return result
        '''
    )
    student, fills = eg.gap_exercise(source)
    assert fills == ["{}", "previous + value"]
    assert "previous = result.get(key, 0)" in student  # a helper line: given
    assert "    result[key] = ???\n" in student
    student, fills = eg.gap_exercise(source, whole_body=True)
    assert student.endswith('"""Sum the values of each key."""\n    ???\n')
    assert eg.fill_gaps(student, fills) == source


# ---------------------------------------------------------------- converting MyST


def _convert(tmp_path: Path, body: str) -> mn.Converted:
    path = tmp_path / "chapter.md"
    path.write_text(FRONT_MATTER + textwrap.dedent(body))
    return mn.convert(path)


def test_markdown_directives_become_readable(tmp_path: Path) -> None:
    (tmp_path / "code.py").write_text("class A:\n    def f(self):\n        return 42\n\n\nX = 1\n")
    converted = _convert(
        tmp_path,
        """\
        # Title

        (sec-label)=
        Read {math}`x^2` and {ref}`the section <sec-label>`, see {class}`~autodiff.Variable`
        and the {doc}`next chapter <backprop>`.
        % a MyST comment

        ```{dropdown} Solution
        The answer is 42.
        ```

        :::{dropdown} Why does this work?
        Because of the chain rule.
        :::

        ```{dropdown} More details
        See [the next chapter](../docs/backprop.md#the-rule).
        ```

        ```{literalinclude} code.py
        :pyobject: A.f
        :dedent:
        ```

        ```{note}
        Mind the comma.
        ```
        """,
    )
    assert converted.problems == []
    assert [c.cell_type for c in converted.cells] == ["markdown"]
    out = converted.cells[0].source
    assert "{" not in out and ":::" not in out and "%" not in out
    assert "42" not in out.replace("return 42", "")  # the solution's text is gone...
    assert "**Solution**\n\n" + mn.NO_ANSWER in out  # ...replaced by the note
    assert "**Why does this work?**\n\n" + mn.NO_ANSWER in out  # a question's answer
    assert "chain rule" not in out
    assert "<details><summary>More details</summary>\n\nSee [the next chapter](backprop.ipynb#the-rule)." in out
    assert "```python\ndef f(self):\n    return 42\n```\n\n</details>" in out  # folded, dedented
    assert "$x^2$" in out and "the section" in out and "`autodiff.Variable`" in out
    assert "[next chapter](backprop.ipynb)" in out
    assert "> **Note**" in out and "> Mind the comma." in out


def test_literalinclude_classes_make_code_cells(tmp_path: Path) -> None:
    (tmp_path / "code.py").write_text(
        'LIMIT = 3\n\n\ndef double(x):\n    """Twice x.\n\n    More that gives it away.\n    """\n'
        "    result = x + x\n    return result\n"
    )
    converted = _convert(
        tmp_path,
        """\
        # Title

        ```{literalinclude} code.py
        :start-at: LIMIT
        :end-at: LIMIT
        :class: code-cell
        ```

        Write it:

        ```{literalinclude} code.py
        :pyobject: double
        :class: exercise
        ```

        ```{literalinclude} code.py
        :pyobject: missing
        :class: code-cell
        ```
        """,
    )
    kinds = [c.cell_type for c in converted.cells]
    assert kinds == ["markdown", "code", "markdown", "code", "markdown"]
    assert converted.cells[1].source == "LIMIT = 3"
    assert converted.cells[3].source == 'def double(x):\n    """Twice x."""\n    result = ???\n    return result'
    [gap] = converted.gaps
    assert (gap.cell, gap.kind, gap.fills) == (3, "include", ["x + x"])
    assert len(converted.problems) == 1 and "'missing' not found" in converted.problems[0]


# ---------------------------------------------------------------- a fixture chapter

FIXTURE = FRONT_MATTER + """\
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
    student = se.student_notebook(fixture_chapter)
    notebook = student.notebook
    nbformat.validate(notebook)
    assert student.problems == []
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    assert "jupytext" not in notebook.metadata
    title = notebook.cells[0].source
    assert title.startswith("# A fixture chapter\n\n> **Exercise notebook.**") and "pip install -e ." in title
    codes = [c for c in notebook.cells if c.cell_type == "code"]
    assert codes[1].source == "x = Parameter(3.0)\ny = ???"
    assert codes[1].metadata == {}  # hide-input dropped
    assert codes[3].source == "# Your solution here\ndef cube(v):\n    ???"
    assert codes[3].metadata["tags"] == ["solution"]
    assert all(c.outputs == [] and c.execution_count is None for c in codes)
    assert "It is nine" not in nbformat.writes(notebook)
    assert [(g.kind, g.fills) for g in student.gaps] == [("line", ["x * x"]), ("cell", ["return v * v * v"])]
    assert nbformat.writes(notebook) == nbformat.writes(se.student_notebook(fixture_chapter).notebook)


def test_fixture_chapter_round_trip_and_wrong_answer(fixture_chapter: Path) -> None:
    student = se.student_notebook(fixture_chapter)
    _execute(fill_notebook(student), fixture_chapter.parent)
    record = student.gaps[0]
    error = _execute_expecting_failure(
        fill_notebook(student, {(record.cell, 0): "x + 1"}), fixture_chapter.parent
    )
    assert error["cell"] == record.cell + 1
    assert "y should be x squared" in error["evalue"]


def test_sphinx_build_links_and_writes_notebooks(tmp_path: Path, fixture_chapter: Path) -> None:
    """A strict (-W -n) build of a one-chapter book writes the notebooks and the link."""
    from sphinx.cmd.build import build_main

    src = tmp_path / "docs"
    src.mkdir()
    (src / "fixture.md").write_text(FIXTURE)
    (src / "plain.md").write_text(FRONT_MATTER + "# Plain\n\n```{code-cell} ipython3\nprint(1)\n```\n")
    (src / "index.md").write_text("# Index\n\n```{toctree}\nfixture\nplain\n```\n")
    (tmp_path / "conf.py").write_text(
        textwrap.dedent(
            f"""\
            import sys
            sys.path.insert(0, {str(DOCS / "_ext")!r})
            extensions = ["myst_nb", "sphinx_design", "student_notebooks"]
            nb_execution_mode = "off"
            student_notebooks_exercises = {str(DOCS / se.EXERCISES_FOLDER)!r}
            exclude_patterns = ["_build"]
            """
        )
    )
    out = tmp_path / "html"
    status = build_main(["-q", "-W", "-n", "-b", "html", "-c", str(tmp_path), str(src), str(out)])
    assert status == 0
    page = (out / "fixture.html").read_text()
    assert "Exercise notebook" in page and 'href="notebooks/fixture.ipynb"' in page
    assert "with gaps (???)" in page
    assert "to run and change the code yourself" in (out / "plain.html").read_text()
    assert "notebooks/index.ipynb" not in (out / "index.html").read_text()
    with zipfile.ZipFile(out / "notebooks" / se.ZIP_NAME) as archive:
        names = sorted(Path(n).name for n in archive.namelist())
    assert names == ["build-your-own-autodiff.ipynb", "fixture.ipynb", "plain.ipynb"]
    for name in names:
        nbformat.validate(nbformat.read(out / "notebooks" / name, as_version=4))


def test_missing_hide_input_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "chapter.md"
    path.write_text(FIXTURE.replace(":tags: [hide-input]\n", ""))
    problems = se.student_notebook(path).problems
    assert len(problems) == 1 and "no `hide-input` tag" in problems[0] and "code cell at line 18" in problems[0]


def test_command_line_writes_notebooks_and_zip(tmp_path: Path, fixture_chapter: Path) -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_student_notebooks

    out = tmp_path / "out"
    assert make_student_notebooks.main([str(fixture_chapter.parent), str(out)]) == 0
    for name in ("fixture.ipynb", se.ZIP_NAME):
        assert (out / name).is_file()
    nbformat.validate(nbformat.read(out / "fixture.ipynb", as_version=4))


# ---------------------------------------------------------------- the real notebooks

CHAPTERS = se.notebook_sources(DOCS)
BUILD_YOUR_OWN = DOCS / se.EXERCISES_FOLDER / "build-your-own-autodiff.md"
SOURCES = CHAPTERS + se.notebook_sources(DOCS / se.EXERCISES_FOLDER)
NAMES = [p.stem for p in SOURCES]

# Chapters with nothing to write: the preface's one code cell checks the installation.
NOTHING_TO_WRITE = {"preface"}


def _student(name: str) -> se.StudentNotebook:
    path = next(p for p in SOURCES if p.stem == name)
    return se.student_notebook(path, in_book=path in CHAPTERS)


@pytest.fixture(scope="module")
def build_your_own() -> se.StudentNotebook:
    return _student(BUILD_YOUR_OWN.stem)


def _code_cells(notebook: nbformat.NotebookNode) -> list[str]:
    return [c.source for c in notebook.cells if c.cell_type == "code"]


def test_the_exercise_lists_name_chapters() -> None:
    assert BUILD_YOUR_OWN in SOURCES
    assert NOTHING_TO_WRITE <= {p.stem for p in CHAPTERS}


@pytest.mark.parametrize("name", [p.stem for p in CHAPTERS])
def test_every_chapter_with_code_has_an_exercise(name: str) -> None:
    has_exercise = se.has_exercises(DOCS / f"{name}.md")
    if name in NOTHING_TO_WRITE:
        assert not has_exercise, f"{name} has an exercise now: take it off NOTHING_TO_WRITE."
    else:
        assert has_exercise, (
            f"The chapter {name} has code but no exercise. Mark a solution (a line ending in "
            "`# solution`, or a code cell tagged `solution`) and follow it with a check."
        )


@pytest.mark.parametrize("name", NAMES)
def test_student_notebook_is_valid(name: str) -> None:
    student = _student(name)
    assert student.problems == [], "\n".join(student.problems)
    nbformat.validate(student.notebook)
    assert student.notebook.metadata["kernelspec"]["name"] == "python3"
    for cell in student.notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert "hide-input" not in cell.metadata.get("tags", [])
        if cell.cell_type == "markdown":
            assert not re.search(r"^\s*(```|:::)\{", cell.source, re.MULTILINE), cell.source


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


def _docstring_lines(source: str) -> set[int]:
    """The line numbers of the docstrings in ``source``: the student keeps them."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            lines.update(range(body[0].lineno, (body[0].end_lineno or body[0].lineno) + 1))
    return lines


@pytest.mark.parametrize("name", NAMES)
def test_every_marked_solution_is_a_gap_and_none_survives(name: str) -> None:
    path = next(p for p in SOURCES if p.stem == name)
    chapter = jupytext.read(path, fmt="md:myst")
    student = _student(name)
    by_original = {g.original: g for g in student.gaps}
    free, solutions = [], []  # the chapter's unmarked lines; the solutions
    for cell in chapter.cells:
        tagged = "solution" in cell.metadata.get("tags", [])
        lines = cell.source.split("\n")
        if cell.cell_type != "code" or not (tagged or any(MARKED.match(l) for l in lines)):
            free.extend(lines if cell.cell_type == "code" else [])
            continue
        student_lines = student.notebook.cells[by_original[cell.source].cell].source.split("\n")
        docstrings = _docstring_lines(cell.source) if tagged else set()
        for number, line in enumerate(lines, start=1):
            match = MARKED.match(line)
            if tagged:  # every statement that is not a definition or a docstring is a solution
                stripped = line.strip()
                if number in docstrings:
                    continue
                if stripped and not stripped.startswith(("#", "def ", "class ", "import ", "from ", '"', "'")):
                    solutions.append(_rhs(stripped) or stripped)
            elif not match:
                free.append(line)
            else:
                code, rhs = match.group("code"), _rhs(match.group("code"))
                assert rhs is not None, f"{name}: cannot read the marked line {line!r}"
                expected = match.group("indent") + (code[: len(code) - len(rhs)] if code.endswith(rhs) else "")
                assert any(l.startswith(expected) and GAP in l[len(expected) - 1 :] for l in student_lines), (
                    f"{name}: no gap for {line.strip()!r}"
                )
                solutions.append(rhs)
    student_code = "\n".join(student.notebook.cells[g.cell].source for g in student.gaps)
    for solution in solutions:
        for part in [solution] + [p.strip() for p in solution.split(",")]:
            if len(part) > 3 and part not in "\n".join(free):
                assert part not in student_code, f"{name}: the solution {part!r} survived"


def _without_docstrings(source: str) -> str:
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return ast.dump(tree)


def _solutions_of(source: str) -> list[str]:
    """What an exercise must not show, read from the package's code independently of the generator.

    In an operation: every value ``apply`` computes, and what ``grad`` returns
    that it did not name. In a function: the values assigned to what it returns.
    """
    definition = ast.parse(source).body[0]
    found: list[ast.expr] = []
    computed = (ast.Call, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Subscript, ast.Dict, ast.IfExp)
    if isinstance(definition, ast.ClassDef):
        apply = next(n for n in definition.body if isinstance(n, ast.FunctionDef) and n.name == "apply")
        grad = next(n for n in ast.walk(apply) if isinstance(n, ast.FunctionDef) and n.name == "grad")
        in_grad = {id(n) for n in ast.walk(grad)}
        found += [n.value for n in ast.walk(apply) if isinstance(n, ast.Assign) and id(n) not in in_grad]
        for node in ast.walk(grad):
            if isinstance(node, ast.Return) and node.value is not None:
                found += node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
    else:
        returned = {n.value.id for n in ast.walk(definition) if isinstance(n, ast.Return) and isinstance(n.value, ast.Name)}
        for node in ast.walk(definition):
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(ast.unparse(t).split("[")[0] in returned for t in targets):
                    found.append(node.value)  # type: ignore[arg-type]
    return [ast.get_source_segment(source, n) or "" for n in found if isinstance(n, computed)]


# The exercises of the build-it-yourself notebook: the package's code, gapped.
BUILD_YOUR_OWN_EXERCISES = {
    "topological_order": autodiff.core.topological_order,
    "backprop": autodiff.core.backprop,
    **{name: getattr(autodiff.ops, name) for name in ("Add", "Sub", "Mul", "ReLU", "MSE", "Sum", "MatMul")},
}


def _exercise_cell(student: se.StudentNotebook, name: str) -> tuple[int, str]:
    [(index, source)] = [
        (i, c.source)
        for i, c in enumerate(student.notebook.cells)
        if c.cell_type == "code" and re.match(rf"(class|def) {name}\b", c.source)
    ]
    return index, source


@pytest.mark.parametrize("name", BUILD_YOUR_OWN_EXERCISES)
def test_build_your_own_exercise_is_the_package_code_gapped(name: str, build_your_own: se.StudentNotebook) -> None:
    index, student = _exercise_cell(build_your_own, name)
    package = textwrap.dedent(inspect.getsource(BUILD_YOUR_OWN_EXERCISES[name]))
    [record] = [g for g in build_your_own.gaps if g.cell == index]
    filled = fill_notebook(build_your_own).cells[index].source
    assert _without_docstrings(filled) == _without_docstrings(package)
    if name == "topological_order":  # the student writes the whole body
        assert re.fullmatch(r'def [^\n]*\n    """[^\n]*"""\n    \?\?\?', student), student
        return
    solutions = _solutions_of(package)
    assert solutions, name
    for solution in solutions:
        assert not re.search(rf"(=|return|,)\s*{re.escape(solution)}\s*(,|$)", student, re.M), (
            f"{name}: {solution!r} survived"
        )
    assert student.count(GAP) >= 2


def test_build_your_own_needs_no_package(build_your_own: se.StudentNotebook) -> None:
    """It runs where the package is not installed: everything it uses is in its cells."""
    code = "\n".join(_code_cells(build_your_own.notebook))
    assert not re.search(r"^\s*(from|import)\s+autodiff\b", code, re.MULTILINE)
    assert "_speed = types.SimpleNamespace(apply=apply)" in code


def test_build_your_own_asks_the_seeds_questions_beside_backprop(build_your_own: se.StudentNotebook) -> None:
    index, _ = _exercise_cell(build_your_own, "backprop")
    before = build_your_own.notebook.cells[index - 1].source
    for question in ("zero", "added", "In which order", "multivariable chain rule"):
        assert question in before, question


# ---------------------------------------------------------------- running them


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


@pytest.mark.parametrize("name", NAMES)
def test_filled_notebook_runs(name: str) -> None:
    """Filling every gap with its solution gives the chapter's code, and it runs."""
    student = _student(name)
    filled = fill_notebook(student)
    assert GAP not in "\n".join(_code_cells(filled))
    for record in student.gaps:
        assert same_code(filled.cells[record.cell].source, record.original)
    if name != BUILD_YOUR_OWN.stem:  # a chapter: code cell for code cell
        chapter = jupytext.read(DOCS / f"{name}.md", fmt="md:myst")
        chapter_code = [c.source for c in chapter.cells if c.cell_type == "code"]
        assert len(chapter_code) == len(_code_cells(filled))
        for ours, theirs in zip(_code_cells(filled), chapter_code):
            assert same_code(ours, theirs), f"{name}: {theirs[:60]!r}"
    _execute(filled, DOCS)


def _first_expression_gap(student: se.StudentNotebook) -> tuple[int, int, str] | None:
    """(cell, gap number, solution) of the first gap whose solution is an expression."""
    for record in student.gaps:
        for number, fill in enumerate(record.fills):
            try:
                ast.parse(fill, mode="eval")
            except SyntaxError:
                continue
            return record.cell, number, fill
    return None


WITH_EXPRESSION_GAPS = [p.stem for p in CHAPTERS if _first_expression_gap(se.student_notebook(p))]


def test_chapters_with_wrong_answers_to_try() -> None:
    assert WITH_EXPRESSION_GAPS, "no chapter has a gap that the wrong-answer test below can fill wrongly"


@pytest.mark.parametrize("name", WITH_EXPRESSION_GAPS)
def test_wrong_answer_in_chapter_fails_its_check(name: str) -> None:
    """The chapter's first gap, answered wrongly, fails the check after it with a message."""
    student = _student(name)
    cell, number, fill = _first_expression_gap(student)  # type: ignore[misc]
    wrong = f"({fill}) * 1.5 + 0.25"
    error = _execute_expecting_failure(fill_notebook(student, {(cell, number): wrong}), DOCS)
    cells = student.notebook.cells
    next_code = next(i for i in range(cell + 1, len(cells)) if cells[i].cell_type == "code")
    assert error["cell"] in (cell, next_code), (
        f"{name}: the wrong answer {wrong!r} was caught in cell {error['cell']}, not by the check after it"
    )
    assert error["ename"] in ("AssertionError", "GradientCheckError"), error
    assert len(str(error["evalue"]).strip()) > 10, f"{name}: the check fails without a helpful message"


RECURSIVE_ORDER = """order = []

    def visit(node):
        for x in node.operation.args if node.operation else ():
            if all(x is not seen for seen in order):
                visit(x)
        order.append(node)

    visit(variable)
    return order"""


@pytest.mark.parametrize(
    ("name", "number", "wrong", "error", "message"),
    [
        ("Mul", 1, "gz * x", "GradientCheckError", "Gradient check failed for Mul, input 0"),
        ("Sum", 2, "broadcast_to(gz, shape)", "AssertionError", "give gz the shape `kept`"),
        ("backprop", 1, "gx", "AssertionError", "the contribution of one use of x only"),
        ("topological_order", 0, RECURSIVE_ORDER, "AssertionError", "recursion limit"),
    ],
    ids=["Mul, gz * x for both inputs", "Sum, gz not reshaped", "backprop, overwriting", "topological_order, recursive"],
)
def test_wrong_answer_in_build_your_own_is_explained(
    build_your_own: se.StudentNotebook, name: str, number: int, wrong: str, error: str, message: str
) -> None:
    index, student = _exercise_cell(build_your_own, name)
    assert name != "Mul" or student.count(GAP) == 3  # z = ???, return ???, ???
    failure = _execute_expecting_failure(fill_notebook(build_your_own, {(index, number): wrong}), DOCS)
    cells = build_your_own.notebook.cells
    check = next(i for i in range(index + 1, len(cells)) if cells[i].cell_type == "code")
    assert failure["cell"] == check, f"the wrong {name} was caught in cell {failure['cell']}, not by its check"
    assert failure["ename"] == error
    assert message in str(failure["evalue"])
