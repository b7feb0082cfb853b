"""Convert a MyST Markdown notebook into the cells of a student notebook, with its gaps.

jupytext reads the file into cells. What it cannot do is done here:

* marked solutions in code cells become gaps (the rules are in :mod:`exercise_gaps`);
* MyST directives and roles become Markdown that Jupyter renders: a dropdown
  is folded, but the answer of a solution or a question is left out; an
  admonition is a block quote; a role is plain text or a link;
* ``literalinclude`` includes the code, read with Sphinx's own reader, so that
  every option means what it means in the book. Its ``:class:`` option says
  what the code becomes in the notebook:

  =================  ========================================================
  (none)             a folded code block (in a chapter the package's code is
                     often the solution of the exercise above it)
  ``code-cell``      a code cell that runs; includes with nothing between
                     them share one
  ``exercise``       a code cell with gaps (:func:`exercise_gaps.gap_exercise`)
  ``exercise-body``  a code cell whose bodies are gaps (the skeleton rule)
  =================  ========================================================
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jupytext
import nbformat
from docutils.parsers.rst.states import MarkupError
from markdown_it import MarkdownIt
from mdit_py_plugins.colon_fence import colon_fence_plugin
from myst_parser.parsers.directives import parse_directive_text
from sphinx.config import Config
from sphinx.directives.code import LiteralInclude, LiteralIncludeReader

import exercise_gaps

SOLUTION_TAG = "solution"
NO_ANSWER = "*(Answer this yourself; the book has the solution.)*"
#: The classes of a literalinclude that make it a code cell.
INCLUDE_CELLS = ("code-cell", "exercise", "exercise-body")

_FENCES = MarkdownIt("commonmark").use(colon_fence_plugin)
_DIRECTIVE = re.compile(r"^\{(?P<name>[\w:-]+)\}\s*(?P<argument>.*)$")
# Dropdowns whose body answers something: "Solution", "Answer", "Question: ...", "Why ...?"
_ANSWERS = re.compile(r"^\s*(solution|answer|question)s?\b|\?\s*$", re.IGNORECASE)
_ADMONITIONS = {"note", "tip", "hint", "important", "warning", "caution", "attention", "danger", "error", "seealso"}


@dataclass
class CellGaps:
    """The gaps of one code cell: ``fills`` are the solution texts, one per ``???`` in order."""

    cell: int
    kind: str  # "line" (# solution), "cell" (tagged solution) or "include" (an included exercise)
    fills: list[str]
    original: str  # the code the filled-in cell must equal


@dataclass
class _Include:
    """A literalinclude that becomes a code cell; ``rule`` is its class."""

    code: str
    rule: str


@dataclass
class Converted:
    """The cells of a student notebook as they are added, with their gaps and the problems met."""

    name: str
    cells: list[nbformat.NotebookNode] = field(default_factory=list)
    gaps: list[CellGaps] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add_markdown(self, text: str) -> None:
        if text.strip() or not self.cells:  # the first cell is markdown, even if empty
            self.cells.append(nbformat.v4.new_markdown_cell(text.strip("\n")))

    def add_code(
        self, student: str, tags: list[str], kind: str = "", fills: Sequence[str] = (), original: str = ""
    ) -> None:
        """A code cell; if ``fills`` are given, it has gaps, and the record gets the cell's index."""
        if fills:
            self.gaps.append(CellGaps(len(self.cells), kind, list(fills), original))
        cell = nbformat.v4.new_code_cell(student)
        if tags:
            cell.metadata["tags"] = tags
        self.cells.append(cell)

    def add_code_cell(self, cell: Any, line: int | str) -> None:
        """A code cell of the chapter, with its marked solutions gapped."""
        tags, source = list(cell.metadata.get("tags", [])), cell.source
        where = f"{self.name}, the code cell at line {line} ({source.strip()[:40]!r})"
        kind = "cell" if SOLUTION_TAG in tags else "line"
        problems: list[str] = []
        try:
            if kind == "cell":
                student, fills = exercise_gaps.gap_solution_cell(source)
            else:
                student, fills, problems = exercise_gaps.gap_marked_lines(source)
        except exercise_gaps.MarkerError as error:  # then the whole cell is the gap
            kind, student, fills = "cell", f"# Your solution here\n{exercise_gaps.GAP}", [source]
            problems = [str(error)]
        self.problems += [f"{where}: {problem}" for problem in problems]
        if fills and "hide-input" not in tags:
            what = "is tagged `solution`" if kind == "cell" else "has `# solution` lines"
            self.problems.append(f"{where}: {what} but no `hide-input` tag, so the book shows it unfolded")
        self.add_code(student, [t for t in tags if t != "hide-input"], kind, fills, source)

    def add_include(self, include: _Include) -> None:
        """Included code: given as it is, or an exercise with gaps."""
        if include.rule == "code-cell":
            self.add_code(include.code, [])
            return
        original = exercise_gaps.docstring_summary(include.code)
        try:
            student, fills = exercise_gaps.gap_exercise(original, whole_body=include.rule == "exercise-body")
        except exercise_gaps.MarkerError as error:
            self.problems.append(f"{self.name}, an included exercise: {error}")
            student, fills = exercise_gaps.GAP, [original]
        self.add_code(student, [], "include", fills, original)


def convert(path: Path) -> Converted:
    """The cells of the student edition of the MyST notebook at ``path``.

    The first cell is always markdown (the title), so that the edition can put
    its note there without moving a cell.
    """
    text = path.read_text(encoding="utf-8")
    notebook = jupytext.reads(text, fmt="md:myst")
    code_lines = iter(t.map[0] + 1 for t in _FENCES.parse(text) if t.map and t.info.startswith("{code-cell}"))
    out = Converted(path.name)
    if not notebook.cells or notebook.cells[0].cell_type != "markdown":
        out.add_markdown("")
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            problems: list[str] = []
            for piece in _markdown(cell.source, path.parent, problems):
                if isinstance(piece, str):
                    out.add_markdown(piece)
                else:
                    out.add_include(piece)
            out.problems += [f"{path.name}: {problem}" for problem in problems]
        elif cell.cell_type == "code":
            out.add_code_cell(cell, next(code_lines, "?"))
        else:
            out.cells.append(nbformat.v4.new_raw_cell(cell.source))
    return out


def _markdown(source: str, base: Path, problems: list[str], top: bool = True) -> list[str | _Include]:
    """Markdown for Jupyter, split where an included code cell comes (only at the ``top`` level)."""
    lines = source.split("\n")
    pieces: list[str | _Include] = []
    position = 0
    for token in _FENCES.parse(source):
        if token.type not in ("fence", "colon_fence") or not token.map:
            continue
        start, end = token.map
        pieces.append(_plain("\n".join(lines[position:start])))
        position = end
        directive = _DIRECTIVE.match(token.info.strip())
        if directive is None:  # a plain code block: as it is
            pieces.append("\n".join(lines[start:end]))
            continue
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        piece = _directive(directive["name"], directive["argument"].strip(), token.content, base, problems, top)
        pieces.append(piece if isinstance(piece, _Include) else re.sub("^", indent, piece, flags=re.MULTILINE))
    pieces.append(_plain("\n".join(lines[position:])))
    # Neighbouring texts are one text; given code included with nothing between is one code cell.
    merged: list[str | _Include] = []
    for piece in (p for p in pieces if not isinstance(p, str) or p.strip()):
        last = merged[-1] if merged else None
        if isinstance(piece, str) and isinstance(last, str):
            merged[-1] = last.rstrip("\n") + "\n\n" + piece.lstrip("\n")
        elif isinstance(piece, _Include) and isinstance(last, _Include) and piece.rule == last.rule == "code-cell":
            last.code += f"\n\n\n{piece.code}"
        else:
            merged.append(piece)
    return merged


def _plain(text: str) -> str:
    """Text outside directives: no labels or MyST comments, roles made plain."""
    text = re.sub(r"^[ \t]*(\([\w:.-]+\)=|%.*)\n?", "", text, flags=re.MULTILINE)
    text = re.sub(r"(\$\$)\s*\([\w:.-]+\)\s*$", r"\1", text, flags=re.MULTILINE)  # $$ (label)
    return convert_roles(text)


def convert_roles(text: str) -> str:
    """MyST roles as Markdown: math, links between chapters, code names, plain text."""
    # Links to other chapters point at their notebooks, which sit side by side.
    text = re.sub(r"\]\((?![a-z]+:)(?:[\w.-]+/)*([\w.-]+)\.md(#[^)]*)?\)", r"](\1.ipynb\2)", text)
    text = re.sub(r"\{math\}`([^`]*)`", r"$\1$", text)
    text = re.sub(r"\{doc\}`([^`<]*?)\s*<(?:[\w.-]+/)*([\w.-]+)>`", r"[\1](\2.ipynb)", text)
    text = re.sub(r"\{doc\}`(?:[\w.-]+/)*([\w.-]+)`", r"[\1](\1.ipynb)", text)
    text = re.sub(r"\{[\w:+-]+\}`([^`<]*?)\s*<[^`>]*>`", r"\1", text)  # {ref}`title <label>`
    text = re.sub(r"\{(?:py:)?(?:func|class|meth|mod|attr|obj|data|exc)\}`~?([^`]*)`", r"`\1`", text)
    return re.sub(r"\{[\w:+-]+\}`([^`]*)`", r"\1", text)


def _directive(name: str, argument: str, body: str, base: Path, problems: list[str], top: bool) -> str | _Include:
    if name == "literalinclude":
        return _literalinclude(argument, body, base, problems, top)
    # The content: the body without its options (":key: value" lines or a "---" block).
    content = re.sub(r"\A(---\n.*?\n---\n|(\s*:[\w-]+:.*\n)+)", "", body + "\n", flags=re.DOTALL)
    inner = "\n\n".join(p for p in _markdown(content, base, problems, top=False) if isinstance(p, str))
    title = convert_roles(argument)
    if name == "dropdown" and _ANSWERS.search(argument):
        return f"**{title}**\n\n{NO_ANSWER}"
    if name == "dropdown":
        return f"<details><summary>{title or 'Details'}</summary>\n\n{inner}\n\n</details>"
    if name in _ADMONITIONS or name == "admonition":
        heading = title if name == "admonition" else name.replace("seealso", "see also").capitalize()
        return f"> **{heading}**\n>\n" + re.sub("^", "> ", inner, flags=re.MULTILINE)
    return f"**{title}**\n\n{inner}" if title else inner  # any other directive: its content


def _literalinclude(argument: str, body: str, base: Path, problems: list[str], top: bool) -> str | _Include:
    """The included code, as Sphinx's literalinclude reads it."""
    try:
        parsed = parse_directive_text(LiteralInclude, argument, body)
        problems += [f"literalinclude {argument}: {warning.msg}" for warning in parsed.warnings]
        options = parsed.options
        code, _ = LiteralIncludeReader(base / argument, options, Config()).read()
    except (MarkupError, OSError, ValueError) as error:
        problems.append(f"literalinclude {argument}: {error}")
        return f"*(Could not include `{argument}`.)*"
    code = code.strip("\n")
    cells = [c for c in options.get("class", []) if c in INCLUDE_CELLS]
    if cells and top:
        return _Include(code, cells[0])
    if cells:
        problems.append(f"literalinclude {argument}: a code cell cannot be nested in a directive")
    what = f"<code>{options['pyobject']}</code> from " if "pyobject" in options else ""
    language = options.get("language", "python" if argument.endswith(".py") else "")
    return (
        f"<details><summary>Show the package's code: {what}<code>{argument}</code></summary>\n\n"
        f"```{language}\n{code}\n```\n\n</details>"
    )
