"""The student edition of the book: notebooks with ``???`` gaps instead of solutions.

Pure functions, no Sphinx: the Sphinx extension ``student_notebooks``, the
command-line script ``scripts/make_student_notebooks.py`` and the tests all use
this module.

How solutions are marked in a chapter (see the project's common brief):

* a code cell tagged ``solution`` is a solution as a whole. The student sees
  its skeleton: assignments keep their targets (``x = ???``), functions and
  classes keep their signatures and docstrings, everything else becomes
  ``???``;
* a line ending in the comment ``# solution`` is a one-line solution. An
  assignment keeps its target (``z = x + y  # solution`` becomes ``z = ???``),
  a ``return`` keeps one gap per returned element (``return gz, gz`` becomes
  ``return ???, ???``), any other statement becomes ``???``.

Every gap is recorded with its solution text (a :class:`CellGaps` per cell), so
that the tests can check that no solution survives and can fill the gaps back
in (:func:`fill_gaps`) to run the notebook.
"""

from __future__ import annotations

import ast
import copy
import io
import re
import textwrap
import tokenize
import zipfile
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

GAP = "???"
SOLUTION_TAG = "solution"
#: The comment that marks a one-line solution.
MARKER = re.compile(r"^#\s*solution\s*$")
BOOK_TITLE = "Autodiff from Scratch"
BUILD_YOUR_OWN = "build-your-own-autodiff"
ZIP_NAME = "autodiff-student-notebooks.zip"
#: The operations the student writes in the build-it-yourself notebook (the exercise's list).
EXERCISE_OPS = ("Add", "Sub", "Mul", "ReLU", "MSE", "Sum", "MatMul")

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
NO_ANSWER = "*(Answer this yourself; the book has the solution.)*"


# --------------------------------------------------------------------------- records


@dataclass
class CellGaps:
    """The gaps of one code cell of a student notebook.

    ``fills`` are the solution texts, one per ``???`` of the cell in order;
    ``original`` is the chapter's code of that cell.
    """

    cell: int
    kind: str  # "cell" (tagged solution), "line" (# solution markers) or "op"
    fills: list[str]
    original: str
    problems: list[str] = field(default_factory=list)


@dataclass
class StudentNotebook:
    name: str  # file stem, e.g. "exercise-1"
    notebook: nbformat.NotebookNode
    gaps: list[CellGaps]
    problems: list[str] = field(default_factory=list)

    @property
    def filename(self) -> str:
        return f"{self.name}.ipynb"


class MarkerError(ValueError):
    """A ``# solution`` marker or ``solution`` tag that the rules cannot apply to."""


# --------------------------------------------------------------------------- positions


def _mask_magics(source: str) -> str:
    """Turn IPython magics and shell escapes into comments of the same length."""
    lines = source.split("\n")
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            lines[i] = line[: len(line) - len(stripped)] + "#" + stripped[1:]
    return "\n".join(lines)


class _Offsets:
    """Convert ast (line, byte column) positions into offsets in the string."""

    def __init__(self, source: str) -> None:
        self.lines = source.split("\n")
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def __call__(self, lineno: int, col_bytes: int) -> int:
        line = self.lines[lineno - 1]
        col = len(line.encode("utf-8")[:col_bytes].decode("utf-8", errors="ignore"))
        return self.starts[lineno - 1] + col

    def start(self, node: ast.AST) -> int:
        return self(node.lineno, node.col_offset)  # type: ignore[attr-defined]

    def end(self, node: ast.AST) -> int:
        return self(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]


@dataclass
class _Edit:
    start: int
    end: int
    gap: bool  # True: replaced by ???, the removed text is a fill; False: removed


def _apply_edits(source: str, edits: list[_Edit]) -> tuple[str, list[str]]:
    edits = sorted(edits, key=lambda e: (e.start, e.end))
    for before, after in zip(edits, edits[1:]):
        if after.start < before.end:
            raise MarkerError("overlapping solution gaps")
    out, fills, position = [], [], 0
    for edit in edits:
        out.append(source[position : edit.start])
        if edit.gap:
            out.append(GAP)
            fills.append(source[edit.start : edit.end])
        position = edit.end
    out.append(source[position:])
    return "".join(out), fills


def _is_parenthesized_tuple(node: ast.Tuple, source: str, offsets: _Offsets) -> bool:
    if not node.elts:
        return True
    return offsets.start(node.elts[0]) > offsets.start(node)


def _value_edits(value: ast.expr, source: str, offsets: _Offsets) -> list[_Edit]:
    """Gap an expression; an unparenthesized tuple gets one gap per element."""
    if isinstance(value, ast.Tuple) and value.elts:
        return [_Edit(offsets.start(e), offsets.end(e), True) for e in value.elts]
    return [_Edit(offsets.start(value), offsets.end(value), True)]


def _statement_edits(node: ast.stmt, source: str, offsets: _Offsets) -> list[_Edit]:
    """Gap the solution part of one simple statement."""
    if isinstance(node, (ast.Assign, ast.AugAssign)) or (
        isinstance(node, ast.AnnAssign) and node.value is not None
    ):
        return _value_edits(node.value, source, offsets)  # type: ignore[arg-type]
    if isinstance(node, ast.Return) and node.value is not None:
        return _value_edits(node.value, source, offsets)
    return [_Edit(offsets.start(node), offsets.end(node), True)]


def _simple_statements(tree: ast.AST) -> list[ast.stmt]:
    compound = (
        ast.If, ast.For, ast.AsyncFor, ast.While, ast.With, ast.AsyncWith, ast.Try,
        ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
    )  # fmt: skip
    extra = tuple(getattr(ast, n) for n in ("TryStar", "Match") if hasattr(ast, n))
    return [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.stmt) and not isinstance(n, compound + extra)
    ]


def _marker_comments(source: str) -> list[tuple[int, int, int]]:
    """(line, start column, end column) of every ``# solution`` comment."""
    found = []
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    try:
        for token in tokens:
            if token.type == tokenize.COMMENT and MARKER.match(token.string):
                found.append((token.start[0], token.start[1], token.end[1]))
    except (tokenize.TokenError, IndentationError, SyntaxError) as error:
        raise MarkerError(f"cannot tokenize the cell: {error}") from None
    return found


# --------------------------------------------------------------------------- gapping code


def gap_marked_lines(source: str) -> tuple[str, list[str], list[str]]:
    """Replace every ``# solution`` line by its gapped form.

    Returns the student code, the fills (solution texts, one per ``???``) and
    a list of problems (markers the rules could not apply to; those lines are
    replaced whole by ``???``).
    """
    masked = _mask_magics(source)
    markers = _marker_comments(masked)
    if not markers:
        return source, [], []
    try:
        tree = ast.parse(masked)
    except SyntaxError as error:
        raise MarkerError(f"the cell is not valid Python: {error}") from None
    offsets = _Offsets(source)
    statements = _simple_statements(tree)
    edits: list[_Edit] = []
    problems: list[str] = []
    lines = source.split("\n")
    for lineno, col_start, col_end in markers:
        # Remove the marker and the blanks before it.
        line = lines[lineno - 1]
        code_end = len(line[:col_start].rstrip())
        comment = _Edit(offsets.starts[lineno - 1] + code_end, offsets.starts[lineno - 1] + col_end, False)
        ending = [s for s in statements if s.end_lineno == lineno]
        if ending:
            node = ending[-1]
            edits.extend(_statement_edits(node, source, offsets))
            edits.append(comment)
            continue
        inside = [s for s in statements if s.lineno <= lineno <= (s.end_lineno or s.lineno)]
        if inside:
            node = inside[-1]
            problems.append(
                f"line {lineno}: the marker is not on the last line of the statement "
                f"starting at line {node.lineno}; the whole statement became {GAP}"
            )
            edits.extend([_Edit(offsets.start(node), offsets.end(node), True), comment])
            continue
        problems.append(
            f"line {lineno}: the marker is on a line that is not a simple statement "
            f"({line.strip()!r}); the line became {GAP}"
        )
        indent = len(line) - len(line.lstrip())
        edits.append(_Edit(offsets.starts[lineno - 1] + indent, offsets.starts[lineno - 1] + col_end, True))
    student, fills = _apply_edits(source, edits)
    return student, fills, problems


def _body_edits(body: list[ast.stmt], source: str, offsets: _Offsets) -> list[_Edit]:
    """Skeleton of a block: keep targets, signatures and docstrings, gap the rest."""
    edits: list[_Edit] = []
    run: list[ast.stmt] = []  # consecutive statements that become one ???

    def flush() -> None:
        if run:
            edits.append(_Edit(offsets.start(run[0]), offsets.end(run[-1]), True))
            run.clear()

    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Pass)) or _is_docstring(node):
            flush()
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            flush()
            if getattr(node, "value", None) is not None:
                edits.extend(_statement_edits(node, source, offsets))
        elif isinstance(node, ast.ClassDef):
            flush()
            edits.extend(_body_edits(node.body, source, offsets))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            flush()
            rest = node.body[1:] if _is_docstring(node.body[0]) else node.body
            if rest:
                edits.append(_Edit(offsets.start(rest[0]), offsets.end(rest[-1]), True))
        else:
            run.append(node)
    flush()
    return edits


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def gap_solution_cell(source: str) -> tuple[str, list[str]]:
    """The student's skeleton of a cell tagged ``solution``, and the fills."""
    masked = _mask_magics(source)
    try:
        tree = ast.parse(masked)
    except SyntaxError:
        return f"# Your solution here\n{GAP}", [source]
    offsets = _Offsets(source)
    edits = _body_edits(tree.body, source, offsets)
    # Markers inside the cell are redundant: remove them with the rest.
    for lineno, col_start, col_end in _marker_comments(masked):
        position = offsets.starts[lineno - 1]
        line = source.split("\n")[lineno - 1]
        start = position + len(line[:col_start].rstrip())
        if not any(e.start <= start < e.end for e in edits):
            edits.append(_Edit(start, position + col_end, False))
    student, fills = _apply_edits(source, edits)
    if not fills:
        return f"# Your solution here\n{GAP}", [source]
    return "# Your solution here\n" + student, fills


def fill_gaps(source: str, fills: list[str]) -> str:
    """Put ``fills`` into the ``???`` of ``source``, in order."""
    parts = source.split(GAP)
    if len(parts) != len(fills) + 1:
        raise ValueError(f"{len(parts) - 1} gaps but {len(fills)} fills")
    out = [parts[0]]
    for fill, part in zip(fills, parts[1:]):
        out.extend([fill, part])
    return "".join(out)


def same_code(a: str, b: str) -> bool:
    """True if two cells are the same Python code, comments and layout aside."""
    try:
        return ast.dump(ast.parse(_mask_magics(a))) == ast.dump(ast.parse(_mask_magics(b)))
    except SyntaxError:
        return a.strip() == b.strip()


# --------------------------------------------------------------------------- markdown


_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|:{3,})\{(?P<name>[^}]+)\}\s*(?P<arg>.*)$")
# Dropdowns whose body answers a question: "Solution", "Answer", "Question: ...", "Why ...?"
_SOLUTION_TITLE = re.compile(r"^\s*(solution|answer|question)s?\b|\?\s*$", re.IGNORECASE)
_ADMONITIONS = {
    "note": "Note", "tip": "Tip", "hint": "Hint", "important": "Important",
    "warning": "Warning", "caution": "Caution", "attention": "Attention",
    "danger": "Danger", "error": "Error", "seealso": "See also",
}  # fmt: skip


def _split_options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    options: dict[str, str] = {}
    i = 0
    if body and body[0].strip() == "---":  # YAML-style options block
        end = next((j for j in range(1, len(body)) if body[j].strip() == "---"), None)
        if end is not None:
            for line in body[1:end]:
                key, _, value = line.partition(":")
                options[key.strip()] = value.strip()
            return options, body[end + 1 :]
    while i < len(body) and re.match(r"^\s*:[\w-]+:", body[i]):
        match = re.match(r"^\s*:([\w-]+):\s*(.*)$", body[i])
        assert match
        options[match.group(1)] = match.group(2)
        i += 1
    return options, body[i:]


def _pyobject_source(path: Path, name: str) -> str:
    source = path.read_text(encoding="utf-8")
    tree: Any = ast.parse(source)
    for part in name.split("."):
        tree = next(
            n
            for n in tree.body
            if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == part
        )
    lines = source.split("\n")
    start = min([tree.lineno] + [d.lineno for d in tree.decorator_list])
    return textwrap.dedent("\n".join(lines[start - 1 : tree.end_lineno]))


def _literalinclude(arg: str, options: dict[str, str], base: Path) -> str:
    path = (base / arg.strip()).resolve()
    try:
        if "pyobject" in options:
            text = _pyobject_source(path, options["pyobject"].strip())
        else:
            text = path.read_text(encoding="utf-8")
            if "start-after" in options:
                text = text.split(options["start-after"], 1)[-1]
            if "end-before" in options:
                text = text.split(options["end-before"], 1)[0]
            if "lines" in options:
                lines = text.split("\n")
                chosen: list[str] = []
                for piece in options["lines"].split(","):
                    lo, _, hi = piece.strip().partition("-")
                    first = int(lo) if lo else 1
                    last = int(hi) if hi else (first if not _ else len(lines))
                    chosen.extend(lines[first - 1 : last])
                text = "\n".join(chosen)
    except (OSError, StopIteration, ValueError, SyntaxError) as error:
        return f"*(Could not include `{arg.strip()}`: {error})*"
    language = options.get("language", "python" if path.suffix == ".py" else "")
    what = f"<code>{options['pyobject'].strip()}</code> from " if "pyobject" in options else ""
    # Folded: the package's code is often the solution of the exercise above it.
    return (
        f"<details><summary>Show the package's code: {what}<code>{arg.strip()}</code></summary>\n\n"
        f"```{language}\n{text.strip(chr(10))}\n```\n\n</details>"
    )


def _convert_roles(text: str) -> str:
    # Links to other chapters point at their notebooks, which sit side by side.
    text = re.sub(r"\]\((?![a-z]+:)([\w.-]+)\.md(#[^)]*)?\)", r"](\1.ipynb\2)", text)
    text = re.sub(r"\{(math)\}`([^`]*)`", r"$\2$", text)
    text = re.sub(r"\{[\w:+-]+\}`([^`<]*?)\s*<[^`>]*>`", r"\1", text)  # {ref}`title <label>`
    text = re.sub(r"\{(?:py:)?(?:func|class|meth|mod|attr|obj|data|exc)\}`~?([^`]*)`", r"`\1`", text)
    text = re.sub(r"\{[\w:+-]+\}`([^`]*)`", r"\1", text)
    return text


def convert_markdown(source: str, base: Path) -> str:
    """Make a MyST markdown cell readable in Jupyter.

    Dropdowns become a bold title and their text (solutions and answers are
    replaced by :data:`NO_ANSWER`), literalinclude becomes the included code,
    admonitions become block quotes, other directives their content; roles
    become plain text, labels and MyST comments disappear.
    """
    lines = source.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        match = _FENCE.match(line)
        if not match:
            if re.match(r"^\s*\([\w:.-]+\)=\s*$", line) or re.match(r"^\s*%", line):
                i += 1  # a label or a MyST comment
                continue
            out.append(re.sub(r"(\$\$)\s*\([\w:.-]+\)\s*$", r"\1", _convert_roles(line)))
            i += 1
            continue
        fence, name, arg = match.group("fence"), match.group("name").strip(), match.group("arg")
        # Find the closing fence: same character, at least as long, nothing else on the line.
        j = i + 1
        while j < len(lines) and not re.match(
            rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[j]
        ):
            j += 1
        body = lines[i + 1 : j]
        i = j + 1
        options, content = _split_options(body)
        inner = convert_markdown("\n".join(content), base).strip("\n")
        if name == "dropdown":
            title = arg.strip() or "Details"
            if _SOLUTION_TITLE.search(title):
                out.append(f"**{title}**\n\n{NO_ANSWER}")
            else:
                out.append(f"**{_convert_roles(title)}**\n\n{inner}")
        elif name == "literalinclude":
            out.append(_literalinclude(arg, options, base))
        elif name in _ADMONITIONS or name == "admonition":
            title = arg.strip() if name == "admonition" else _ADMONITIONS[name]
            quoted = "\n".join("> " + l if l else ">" for l in inner.split("\n"))
            out.append(f"> **{_convert_roles(title)}**\n>\n{quoted}")
        elif name in ("math",):
            out.append(f"$$\n{inner}\n$$")
        elif name in ("code-block", "code", "sourcecode"):
            out.append(f"```{arg.strip()}\n" + "\n".join(content) + "\n```")
        elif name in ("toctree", "contents", "glue:figure", "glue:any"):
            continue
        elif name in ("figure", "image"):
            if inner:
                out.append(f"*{inner}*")
        else:  # eval-rst, card, tab-set, ...: their content
            if arg.strip() and name not in ("eval-rst",):
                out.append(f"**{_convert_roles(arg.strip())}**\n")
            if inner:
                out.append(inner)
    return "\n".join(out)


# --------------------------------------------------------------------------- chapters


def is_notebook_chapter(path: Path) -> bool:
    """True for a MyST Markdown notebook: front matter with jupytext and kernelspec."""
    text = Path(path).read_text(encoding="utf-8")
    if not text.startswith("---"):
        return False
    front = text.split("\n---", 1)[0]
    return "kernelspec:" in front and "format_name: myst" in front


def chapter_title(notebook: nbformat.NotebookNode, default: str) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            match = re.search(r"^#\s+(.+)$", cell.source, re.MULTILINE)
            if match:
                return _convert_roles(match.group(1)).strip()
    return default


def _new_notebook(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
    }
    notebook.cells = cells
    return notebook


def _intro(title: str, chapter: str | None, has_gaps: bool) -> str:
    what = (
        f"This is the exercise edition of the chapter **{title}** of the book *{BOOK_TITLE}*."
        if chapter
        else f"**{title}**: the exercise notebook of the book *{BOOK_TITLE}*."
    )
    todo = (
        f"Every `{GAP}` is a gap for you to fill in. The cell after a gap checks your "
        "answer: run it, and it tells you whether the answer is right. (A cell that "
        f"still contains `{GAP}` stops with a `SyntaxError`; that only means the gap "
        "is not filled yet.)"
        if has_gaps
        else "This chapter has no gaps to fill in: run it, change it, experiment."
    )
    setup = (
        "**Setup.** The notebook imports the package `autodiff` that the book builds. "
        "In a clone of the book's repository run `pip install -e .` in the repository "
        "root (once), then start Jupyter from that environment. In Colab or another "
        "hosted Jupyter, upload or clone the repository and install it from a cell:\n\n"
        "```\n%pip install -e /path/to/the/repository\n```"
        if chapter
        else "**Setup.** Nothing to install beyond NumPy (and the `graphviz` package to "
        "draw graphs): the notebook contains everything it needs. It runs in Jupyter and in Colab."
    )
    return f"# {title}\n\n{what}\n\n{todo}\n\n{setup}"


def student_chapter(path: Path, name: str | None = None) -> StudentNotebook:
    """The student edition of one chapter (a MyST Markdown notebook)."""
    import jupytext

    path = Path(path)
    chapter = jupytext.read(path, fmt="md:myst")
    name = name or path.stem
    cells: list[nbformat.NotebookNode] = []
    gaps: list[CellGaps] = []
    problems: list[str] = []
    # Line numbers of the code cells in the chapter, for the problem reports.
    fences = iter(
        number
        for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1)
        if re.match(r"^\s*(`{3,}|:{3,})\{code-cell\}", line)
    )
    for cell in chapter.cells:
        tags = list(cell.get("metadata", {}).get("tags", []))
        if cell.cell_type == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(convert_markdown(cell.source, path.parent)))
            continue
        if cell.cell_type != "code":
            cells.append(nbformat.v4.new_raw_cell(cell.source))
            continue
        source = cell.source
        first = source.strip().splitlines()[0][:50] if source.strip() else ""
        where = f"{path.name}, the code cell at line {next(fences, '?')} ({first!r})"
        kind, fills, cell_problems = "", list[str](), list[str]()
        try:
            if SOLUTION_TAG in tags:
                student, fills = gap_solution_cell(source)
                kind = "cell"
            else:
                student, fills, cell_problems = gap_marked_lines(source)
                kind = "line"
        except MarkerError as error:
            problems.append(f"{where}: {error}")
            student, fills, kind = f"# Your solution here\n{GAP}", [source], "cell"
        problems.extend(f"{where}: {p}" for p in cell_problems)
        if fills and "hide-input" not in tags:
            what = "is tagged `solution`" if kind == "cell" else "has `# solution` lines"
            problems.append(f"{where}: {what} but no `hide-input` tag, so the book shows it unfolded")
        new_tags = [t for t in tags if t != "hide-input"]
        new = nbformat.v4.new_code_cell(student)
        if new_tags:
            new.metadata["tags"] = new_tags
        cells.append(new)
        if fills:
            gaps.append(CellGaps(len(cells), kind, fills, source, cell_problems))
    title = chapter_title(chapter, name)
    cells.insert(0, nbformat.v4.new_markdown_cell(_intro(title, name, bool(gaps))))
    # The gaps' cell numbers (len(cells) right after appending) already count this intro cell.
    return StudentNotebook(name, _new_notebook(cells), gaps, problems)


def fill_notebook(student: StudentNotebook, wrong: dict[tuple[int, int], str] | None = None) -> nbformat.NotebookNode:
    """The student notebook with every gap filled with its solution.

    ``wrong`` maps (cell index, gap number) to a text used instead of the solution.
    """
    notebook = copy.deepcopy(student.notebook)
    for record in student.gaps:
        fills = list(record.fills)
        for (cell, number), text in (wrong or {}).items():
            if cell == record.cell:
                fills[number] = text
        notebook.cells[record.cell].source = fill_gaps(notebook.cells[record.cell].source, fills)
    return notebook


# --------------------------------------------------------------------------- build your own


@dataclass
class _Module:
    path: Path
    source: str
    tree: ast.Module


def _load(path: Path) -> _Module:
    source = path.read_text(encoding="utf-8")
    return _Module(path, source, ast.parse(source))


def _segment(module: _Module, node: ast.stmt) -> str:
    """The source of a top-level statement, with its decorators and leading comments."""
    lines = module.source.split("\n")
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    while start > 1 and lines[start - 2].lstrip().startswith("#"):
        start -= 1
    return "\n".join(lines[start - 1 : node.end_lineno])


_EXAMPLES = re.compile(r"\n(\s*)Examples\n\1--------\n.*?(?=\n\s*\"\"\")", re.DOTALL)


def _given_code(module: _Module, skip: Collection[str] = ()) -> tuple[list[str], list[str]]:
    """Imports and definitions of a module, made standalone (no autodiff imports)."""
    imports, parts = [], []
    for node in module.tree.body:
        if _is_docstring(node):
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("autodiff", "__future__"):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append(ast.get_source_segment(module.source, node) or "")
            continue
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            continue  # imports for type checkers only
        name = getattr(node, "name", None)
        if name in skip:
            continue
        text = _segment(module, node)
        text = text.replace("_speed.", "")  # one namespace in the notebook
        text = _EXAMPLES.sub("", text)
        parts.append(text)
    return imports, parts


def _strip_docstring_to_summary(class_source: str) -> str:
    """Keep only the first line of a class docstring: the rest often gives the answer away."""
    tree = ast.parse(class_source)
    cls = tree.body[0]
    if not (isinstance(cls, ast.ClassDef) and cls.body and _is_docstring(cls.body[0])):
        return class_source
    node = cls.body[0]
    offsets = _Offsets(class_source)
    summary = str(node.value.value).strip().split("\n")[0].strip()  # type: ignore[attr-defined]
    prefix = "r" if class_source[offsets.start(node)] == "r" else ""
    return (
        class_source[: offsets.start(node)]
        + f'{prefix}"""{summary}"""'
        + class_source[offsets.end(node) :]
    )


def gap_operation(source: str) -> tuple[str, list[str]]:
    """Gap the ``apply`` and ``grad`` bodies of an operation class.

    In ``apply`` (outside ``grad``) every assignment that computes something
    becomes ``name = ???``. In ``grad`` the assignments to the names it
    returns (``gx = ???``) and every returned expression (``return ???, ???``)
    become gaps; names that ``grad`` computed itself stay in the ``return``,
    and helper lines (a reshaped ``gz``) stay. Structure lines
    (``def grad``, ``self.grad = grad``, ``return z``, ``if`` headers) stay.
    """
    tree = ast.parse(source)
    offsets = _Offsets(source)
    cls = tree.body[0]
    assert isinstance(cls, ast.ClassDef)
    apply = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "apply")
    edits: list[_Edit] = []

    def computes(value: ast.expr) -> bool:
        return not isinstance(value, (ast.Constant, ast.Name, ast.Attribute))

    def walk(body: list[ast.stmt], in_grad: bool, assigned: set[str]) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef):
                inner_assigned = {
                    t.id
                    for n in ast.walk(node)
                    if isinstance(n, (ast.Assign, ast.AugAssign))
                    for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                    if isinstance(t, ast.Name)
                } | {
                    e.id
                    for n in ast.walk(node)
                    if isinstance(n, ast.Assign)
                    for t in n.targets
                    if isinstance(t, ast.Tuple)
                    for e in t.elts
                    if isinstance(e, ast.Name)
                }
                returned = {
                    e.id
                    for n in ast.walk(node)
                    if isinstance(n, ast.Return) and n.value is not None
                    for e in (n.value.elts if isinstance(n.value, ast.Tuple) else [n.value])
                    if isinstance(e, ast.Name)
                }
                walk(node.body, True, inner_assigned & returned)
            elif isinstance(node, (ast.Assign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = {t.id for t in targets if isinstance(t, ast.Name)}
                if in_grad and not names & assigned:
                    continue  # a helper such as a reshaped gz: given
                if computes(node.value) and not (
                    isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Attribute) for t in node.targets)
                ):
                    edits.extend(_value_edits(node.value, source, offsets))
            elif isinstance(node, ast.Return) and node.value is not None and in_grad:
                value = node.value
                elements = (
                    value.elts
                    if isinstance(value, ast.Tuple) and not _is_parenthesized_tuple(value, source, offsets)
                    else [value]
                )
                for element in elements:
                    if isinstance(element, ast.Name) and element.id in assigned:
                        continue
                    if isinstance(element, ast.Constant) and element.value is None:
                        continue
                    edits.append(_Edit(offsets.start(element), offsets.end(element), True))
            elif isinstance(node, (ast.If, ast.For, ast.While, ast.With)):
                walk(node.body, in_grad, assigned)
                walk(getattr(node, "orelse", []), in_grad, assigned)
            # other statements (calls such as shape checks) stay

    walk(apply.body, False, set())
    return _apply_edits(source, edits)


def _md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip("\n"))


def _code(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(textwrap.dedent(text).strip("\n"))


# The exercise's checks for each operation (values from the original exercise).
_OP_CHECKS: dict[str, str] = {
    "Add": """
        x, y = Parameter(123.0), Parameter(-100.0)
        z = x + y
        np.testing.assert_allclose(z.value, 23.0, err_msg="Add.apply: 123 + (-100) should be 23.")
        numeric_test(z)  # compares Add.grad with finite differences
        print("Add is correct.")
        """,
    "Sub": """
        x, y = Parameter(123.0), Parameter(-100.0)
        z = x - y
        np.testing.assert_allclose(z.value, 223.0, err_msg="Sub.apply: 123 - (-100) should be 223.")
        numeric_test(z)
        print("Sub is correct.")
        """,
    "Mul": """
        x, y = Parameter(123.0), Parameter(-100.0)
        z = x * y
        np.testing.assert_allclose(z.value, -12300.0, err_msg="Mul.apply: 123 * (-100) should be -12300.")
        numeric_test(z)
        numeric_test(Parameter([1.0, -2.0, 3.0]) * Parameter([0.5, 4.0, -1.0]))  # elementwise
        print("Mul is correct.")
        """,
    "ReLU": """
        for value, expected in [(123.0, 123.0), (-123.0, 0.0), ([-123.0, 123.0], [0.0, 123.0])]:
            z = ReLU(Parameter(value))
            np.testing.assert_allclose(z.value, expected, err_msg=f"ReLU.apply({value}) should be {expected}.")
            numeric_test(z)
        gx, = ReLU(Parameter([-2.0, 0.0, 3.0])).operation.grad(np.ones(3))
        np.testing.assert_allclose(
            gx, [0.0, 1.0, 1.0],
            err_msg="ReLU.grad: the slope is 0 for x < 0 and 1 for x >= 0 (we take 1 at the kink x = 0).",
        )
        print("ReLU is correct.")
        """,
    "MSE": """
        z = MSE(Parameter(1.0), Parameter(-1.0))
        np.testing.assert_allclose(z.value, 4.0, err_msg="MSE.apply(1, -1) should be (1 - (-1))**2 = 4.")
        numeric_test(z)
        z = MSE(Parameter(np.ones(4)), Parameter([1.0, 1.0, 1.0, 0.0]))
        np.testing.assert_allclose(z.value, 0.25, err_msg="MSE.apply: the mean over 4 elements of (0, 0, 0, 1) is 0.25.")
        numeric_test(z)
        print("MSE is correct.")
        """,
    "Sum": """
        cases = [
            (1.0, {}, 1.0),
            (np.ones((3, 4)), {}, 12.0),
            (np.ones((3, 4)), {"axis": 1}, 4 * np.ones(3)),
            (np.ones((3, 4)), {"axis": 1, "keepdims": True}, 4 * np.ones((3, 1))),
            (np.arange(24.0).reshape(2, 3, 4), {"axis": (0, 2)}, np.arange(24.0).reshape(2, 3, 4).sum(axis=(0, 2))),
        ]
        for value, settings, expected in cases:
            z = Sum(Parameter(value), **settings)
            np.testing.assert_allclose(z.value, expected, err_msg=f"Sum.apply with {settings or 'no settings'}")
            numeric_test(z)
        print("Sum is correct.")
        """,
    "MatMul": """
        rng = np.random.default_rng(0)
        for x_shape, y_shape in [((2, 4), (4, 3)), ((4,), (4, 3)), ((2, 4), (4,)), ((4,), (4,)), ((5, 2, 4), (4, 3))]:
            x = Parameter(rng.normal(size=x_shape))
            y = Parameter(rng.normal(size=y_shape))
            z = x @ y
            np.testing.assert_allclose(
                z.value, x.value @ y.value, err_msg=f"MatMul.apply for shapes {x_shape} @ {y_shape}"
            )
            numeric_test(z)
        print("MatMul is correct.")
        """,
}

_OP_HINTS: dict[str, str] = {
    "Add": "Write `apply` (compute `z`) and `grad` (one gradient per input, as a tuple).",
    "Sub": "Like `Add`, but mind the sign of the second gradient.",
    "Mul": "Each factor's gradient depends on the *other* factor.",
    "ReLU": (
        "The rectified linear unit is not differentiable at 0. We take the slope 1 there, "
        "which is a valid subgradient. `np.maximum` (not `np.max`) computes it elementwise."
    ),
    "MSE": (
        "The mean squared error of two arrays: the mean of the squared differences. "
        "What are its partial derivatives for `x` and for `y`?"
    ),
    "Sum": (
        "`axis` and `keepdims` work as in `np.sum`. Each summed element contributes with "
        "slope 1, so it receives the gradient of the sum it went into: put the summed axes "
        "back (`np.expand_dims`) and broadcast (`np.broadcast_to`)."
    ),
    "MatMul": (
        "For matrices, $\\bar X = \\bar Z Y^\\top$ and $\\bar Y = X^\\top \\bar Z$. A 1-D `x` "
        "acts as one row, a 1-D `y` as one column; leading batch axes broadcast. The given "
        "structure handles `needed` (skip gradients nobody asked for)."
    ),
}

# The front matter that makes a Markdown file a MyST notebook (see TOOLCHAIN).
_MYST_FRONT_MATTER = """\
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

_FALLBACK_THEORY = {
    "exercise-1": """\
# Theory exercise 1

Build the graph of the first theory exercise, $J = \\operatorname{ReLU}(x) + x \\gamma$
at $x = 7$, $\\gamma = 5$, from `Parameter`s and operations, and backpropagate.

```{code-cell} ipython3
:tags: [hide-input]
x = Parameter(7.0)  # solution
gamma = Parameter(5.0)  # solution
h = ReLU(x)  # solution
z = x * gamma  # solution
J = h + z  # solution
```

```{code-cell} ipython3
np.testing.assert_allclose(J.value, 42.0, err_msg="J = ReLU(7) + 7 * 5 should be 42.")
gradients = backprop(J)
np.testing.assert_allclose(gradients[x], 6.0, err_msg="dJ/dx = 1 + gamma should be 6.")
np.testing.assert_allclose(gradients[gamma], 7.0, err_msg="dJ/dgamma = x should be 7.")
print("Exercise 1 is correct.")
```
""",
    "exercise-2": """\
# Theory exercise 2

Build the graph of the second theory exercise: $v = x w$, $z = v + b$, $h = \\operatorname{ReLU}(z)$,
$\\hat y = h + z$, $J = \\operatorname{MSE}(\\hat y, y)$ at $x = 5$, $w = 2$, $b = -1$, $y = 7$.
(The original exercise asserted $J = 49$, but $\\hat y = 18$ and $(18 - 7)^2 = 121$.)

```{code-cell} ipython3
:tags: [hide-input]
x = Parameter(5.0)  # solution
w = Parameter(2.0)  # solution
b = Parameter(-1.0)  # solution
y = Parameter(7.0)  # solution
v = x * w  # solution
z = v + b  # solution
h = ReLU(z)  # solution
y_hat = h + z  # solution
J = MSE(y_hat, y)  # solution
```

```{code-cell} ipython3
np.testing.assert_allclose(J.value, 121.0, err_msg="J = (y_hat - y)**2 = (18 - 7)**2 should be 121.")
gradients = backprop(J)
for name, variable, expected in [("x", x, 88.0), ("w", w, 220.0), ("b", b, 44.0), ("y", y, -22.0)]:
    np.testing.assert_allclose(gradients[variable], expected, err_msg=f"dJ/d{name} should be {expected}.")
print("Exercise 2 is correct.")
```
""",
}

# Gradients of the theory exercises, derived by hand (the chapters' graphs use these names).
_THEORY_GRADIENT_CHECKS = {
    "exercise-1": """
        gradients = backprop(J)
        np.testing.assert_allclose(gradients[x], 6.0, err_msg="dJ/dx = ReLU'(x) + gamma = 1 + 5 = 6")
        np.testing.assert_allclose(gradients[gamma], 7.0, err_msg="dJ/dgamma = x = 7")
        print("Theory exercise 1 is correct: J = 42, dJ/dx = 6, dJ/dgamma = 7.")
        """,
    "exercise-2": """
        gradients = backprop(J)
        # dJ/dy_hat = 2 (y_hat - y) = 22; dJ/dz = 22 * (ReLU'(z) + 1) = 44
        for name, variable, expected in [("x", x, 88.0), ("w", w, 220.0), ("b", b, 44.0), ("y", y, -22.0)]:
            np.testing.assert_allclose(
                gradients[variable], expected, err_msg=f"dJ/d{name} should be {expected}"
            )
        print("Theory exercise 2 is correct: J = 121, dJ/dx = 88, dJ/dw = 220, dJ/db = 44, dJ/dy = -22.")
        """,
}

def _strip_autodiff_imports(source: str) -> str:
    """Drop ``from autodiff import ...`` lines (also parenthesized, multi-line ones)."""
    try:
        tree = ast.parse(_mask_magics(source))
    except SyntaxError:
        return source
    lines = source.split("\n")
    drop: set[int] = set()
    for node in tree.body:
        if (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "autodiff") or (
            isinstance(node, ast.Import) and any(a.name.split(".")[0] == "autodiff" for a in node.names)
        ):
            drop.update(range(node.lineno - 1, node.end_lineno or node.lineno))
    return "\n".join(l for i, l in enumerate(lines) if i not in drop).strip("\n")


def _theory_cells(docs: Path, chapter: str) -> tuple[list[nbformat.NotebookNode], list[CellGaps], str]:
    """The marked cells of a theory chapter (with the markdown before and the check after)."""
    path = docs / f"{chapter}.md"
    source_note = f"docs/{chapter}.md"
    student: StudentNotebook | None = None
    if path.exists() and is_notebook_chapter(path):
        student = student_chapter(path)
        marked = [g for g in student.gaps if "class " not in g.original]
        if not marked:
            student = None
    if student is None:
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            fixture = Path(folder) / f"{chapter}.md"
            fixture.write_text(_MYST_FRONT_MATTER + _FALLBACK_THEORY[chapter], encoding="utf-8")
            student = student_chapter(fixture)
        source_note = "generated (the chapter has no marked solutions yet)"
    cells: list[nbformat.NotebookNode] = []
    gaps: list[CellGaps] = []
    chosen: list[int] = []
    for record in student.gaps:
        if "class " in record.original:
            continue
        index = record.cell
        if index - 1 >= 1 and student.notebook.cells[index - 1].cell_type == "markdown" and index - 1 not in chosen:
            chosen.append(index - 1)
        chosen.append(index)
        following = index + 1
        while following < len(student.notebook.cells) and student.notebook.cells[following].cell_type != "code":
            following += 1
        if following < len(student.notebook.cells) and following not in [g.cell for g in student.gaps]:
            chosen.append(following)
    by_cell = {g.cell: g for g in student.gaps}
    for index in sorted(set(chosen)):
        cell = copy.deepcopy(student.notebook.cells[index])
        if cell.cell_type == "code":
            cell.source = _strip_autodiff_imports(cell.source)
            if index in by_cell:
                record = by_cell[index]
                gaps.append(
                    CellGaps(-1, record.kind, record.fills, _strip_autodiff_imports(record.original))
                )
                gaps[-1].cell = len(cells)  # relative, shifted by the caller
        cells.append(cell)
    return cells, gaps, source_note


def _merge_imports(lines: list[str]) -> list[str]:
    """One import line per module, plain imports first."""
    plain: dict[str, None] = {}
    names: dict[str, dict[str, None]] = {}
    for line in lines:
        for node in ast.parse(line).body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    plain[alias.name + (f" as {alias.asname}" if alias.asname else "")] = None
            elif isinstance(node, ast.ImportFrom) and node.module:
                group = names.setdefault(node.module, {})
                for alias in node.names:
                    group[alias.name + (f" as {alias.asname}" if alias.asname else "")] = None
    out = [f"import {name}" for name in sorted(plain)]
    out += [f"from {module} import {', '.join(sorted(group))}" for module, group in sorted(names.items())]
    return out


def build_your_own(root: Path) -> StudentNotebook:
    """The build-it-yourself notebook, generated from the package and the exercise chapters."""
    root = Path(root)
    core = _load(root / "autodiff" / "core.py")
    machinery = [_load(root / "autodiff" / name) for name in ("_format.py", "_speed.py")]
    ops = _load(root / "autodiff" / "ops.py")
    check = _load(root / "autodiff" / "check.py")
    visualize = _load(root / "autodiff" / "visualize.py")

    imports: list[str] = []
    given_parts: dict[str, list[str]] = {}
    for label, module, skip in [
        ("machinery", machinery[0], set()),
        ("collector", machinery[1], set()),
        ("core", core, set()),
        ("ops", ops, set(EXERCISE_OPS)),
        ("check", check, set()),
        ("visualize", visualize, set()),
    ]:
        module_imports, parts = _given_code(module, skip)
        given_parts[label] = parts
        for line in module_imports:
            if line not in imports and "TYPE_CHECKING" not in line:
                imports.append(line)
    imports = _merge_imports(imports)
    header = "from __future__ import annotations\n\n"

    cells: list[nbformat.NotebookNode] = []
    gaps: list[CellGaps] = []
    title = "Build your own autodiff"
    cells.append(
        _md(
            """
            You write the operations of a reverse-mode automatic differentiation engine:
            their forward pass (`apply`) and their backward pass (`grad`). The machinery
            that records the graph and runs backpropagation is given, and so are the
            gradient checks. The code is taken from the package `autodiff` of the book,
            so when you are done you have rebuilt its core.

            Search for `???`. Each operation is followed by a check cell; run it after
            filling in the gaps. `numeric_test` compares your `grad` with finite
            differences and explains any mismatch.
            """
        )
    )
    cells[-1].source = _intro(title, None, True) + "\n\n" + cells[-1].source
    cells.append(_md("## Imports"))
    cells.append(_code(header + "\n".join(imports)))
    cells.append(
        _md(
            """
            ## The engine (given)

            `Variable` holds a value and the operation that made it. Calling an
            `Operation` subclass computes its value at once and returns a `Variable`.
            `backprop` visits the graph from the loss back to the leaves and calls
            each operation's `grad`. You do not need to change anything here, but
            read it: the operations you write plug into it.
            """
        )
    )
    engine = given_parts["machinery"] + given_parts["collector"] + given_parts["core"]
    cells.append(_code(header + "\n\n\n".join(engine)))
    cells.append(
        _md(
            """
            ## Gradient checks (given)

            `numeric_test(z)` re-runs the operation that produced `z` with each input
            element nudged by ±eps and compares the slopes with what your `grad` returns.
            """
        )
    )
    cells.append(_code(header + "\n\n\n".join(given_parts["check"])))
    cells.append(
        _md(
            """
            ## Operations you do not write (given)

            `Identity` is the template for all operations: `apply` computes `z` and
            defines the closure `grad(gz)`, which returns one gradient per input, as a
            tuple (mind the trailing comma in `return gx,`).
            """
        )
    )
    cells.append(_code(header + "\n\n\n".join(given_parts["ops"])))
    cells.append(_md("## Drawing graphs (given)\n\n`visualize(J)` draws the graph that computed `J` (it needs the `graphviz` package and program)."))
    cells.append(_code(header + "\n\n\n".join(given_parts["visualize"])))

    cells.append(_md("## The operations you write"))
    classes = {n.name: n for n in ops.tree.body if isinstance(n, ast.ClassDef)}
    for name in EXERCISE_OPS:
        node = classes[name]
        source = _strip_docstring_to_summary(_segment(ops, node))
        student, fills = gap_operation(source)
        cells.append(_md(f"### `{name}`\n\n{_OP_HINTS[name]}"))
        cells.append(_code(student))
        gaps.append(CellGaps(len(cells) - 1, "op", fills, source))
        cells.append(_code(_OP_CHECKS[name]))

    docs = root / "docs"
    notes = []
    for chapter, heading in [("exercise-1", "Theory exercise 1"), ("exercise-2", "Theory exercise 2")]:
        theory, theory_gaps, note = _theory_cells(docs, chapter)
        notes.append(f"{heading}: {note}")
        cells.append(_md(f"## {heading}"))
        offset = len(cells)
        for record in theory_gaps:
            record.cell += offset
        cells.extend(theory)
        gaps.extend(theory_gaps)
        cells.append(_md("Backpropagate through your graph and compare with the gradients derived by hand:"))
        cells.append(_code(_THEORY_GRADIENT_CHECKS[chapter]))
    notebook = _new_notebook(cells)
    return StudentNotebook(BUILD_YOUR_OWN, notebook, gaps, [], )


# --------------------------------------------------------------------------- all of them


def chapter_paths(docs: Path) -> list[Path]:
    """The chapters of ``docs`` that are notebooks, sorted by name."""
    return sorted(p for p in Path(docs).glob("*.md") if is_notebook_chapter(p))


def student_notebooks(docs: Path, root: Path | None = None) -> list[StudentNotebook]:
    """Every student notebook: one per chapter, then the build-it-yourself one."""
    docs = Path(docs)
    root = Path(root) if root else docs.parent
    notebooks = [student_chapter(path) for path in chapter_paths(docs)]
    notebooks.append(build_your_own(root))
    return notebooks


def write_notebooks(notebooks: list[StudentNotebook], outdir: Path) -> list[Path]:
    """Validate and write the notebooks, and a zip of all of them; return the paths."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for student in notebooks:
        nbformat.validate(student.notebook)
        path = outdir / student.filename
        text = nbformat.writes(student.notebook)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    archive = outdir / ZIP_NAME
    temporary = archive.with_suffix(".zip.tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in written:
            info = zipfile.ZipInfo(f"autodiff-student-notebooks/{path.name}", date_time=(2025, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    temporary.replace(archive)
    return written + [archive]
