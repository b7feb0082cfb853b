"""The gap rules: what a student sees in place of a solution.

A solution is marked in one of three ways, and each has its rule:

* a line ending in ``# solution`` (:func:`gap_marked_lines`): an assignment
  keeps its target (``z = ???``), a ``return`` keeps one gap per returned
  element (``return ???, ???``), any other statement becomes ``???``;
* a code cell tagged ``solution`` (:func:`gap_solution_cell`), and an included
  object marked ``:class: exercise-body``: the skeleton stays (assignment
  targets, signatures, docstrings), everything else becomes ``???``;
* an included object marked ``:class: exercise`` (:func:`gap_exercise`): in an
  operation class, every value that ``apply`` computes and what its ``grad``
  returns; in a function, every assignment to a name it returns.

Each rule gives the student's code and the fills: the solution texts, one per
``???`` in order, so that :func:`fill_gaps` restores the solution exactly.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass

GAP = "???"
#: The comment that marks a one-line solution.
MARKER = re.compile(r"^#\s*solution\s*$")
_ASSIGNMENTS = (ast.Assign, ast.AugAssign, ast.AnnAssign)


class MarkerError(ValueError):
    """A solution marker that the rules cannot apply to."""


@dataclass
class _Edit:
    start: int
    end: int
    gap: bool  # True: the text becomes ??? and is a fill; False: it is removed


class _Code:
    """One cell's code, parsed; converts the ast's (line, byte column) positions to offsets."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = text.split("\n")
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line) + 1)
        try:
            self.tree = ast.parse(_mask_magics(text))
        except SyntaxError as error:
            raise MarkerError(f"the cell is not valid Python: {error}") from None

    def offset(self, lineno: int, col_bytes: int) -> int:
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode()[:col_bytes].decode(errors="ignore"))

    def gap(self, first: ast.AST, last: ast.AST | None = None) -> _Edit:
        """A gap from the start of ``first`` to the end of ``last`` (default: ``first``)."""
        last = last or first
        start = self.offset(first.lineno, first.col_offset)  # type: ignore[attr-defined]
        return _Edit(start, self.offset(last.end_lineno, last.end_col_offset), True)  # type: ignore[attr-defined]

    def apply(self, edits: list[_Edit]) -> tuple[str, list[str]]:
        """The code with the edits made, and the texts that became gaps."""
        edits = sorted(edits, key=lambda e: (e.start, e.end))
        if any(after.start < before.end for before, after in zip(edits, edits[1:])):
            raise MarkerError("overlapping solution gaps")
        out, fills, position = [], [], 0
        for edit in edits:
            out.append(self.text[position : edit.start])
            if edit.gap:
                out.append(GAP)
                fills.append(self.text[edit.start : edit.end])
            position = edit.end
        out.append(self.text[position:])
        return "".join(out), fills


def _mask_magics(text: str) -> str:
    """IPython magics and shell escapes (``%...``, ``!...``) as comments of the same length."""
    return re.sub(r"^(\s*)[%!]", r"\1#", text, flags=re.MULTILINE)


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements of a block, inside if/for/while/with/try too, not inside nested definitions."""
    for node in body:
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            blocks = [getattr(node, name, []) for name in ("body", "orelse", "finalbody")]
            blocks += [part.body for part in getattr(node, "handlers", []) + getattr(node, "cases", [])]
            for block in blocks:
                yield from _statements(block)


def _value_gaps(code: _Code, value: ast.expr) -> list[_Edit]:
    """An expression becomes ???; a tuple gets one ??? per element."""
    elements = value.elts if isinstance(value, ast.Tuple) and value.elts else [value]
    return [code.gap(element) for element in elements]


def _is_docstring(node: ast.stmt) -> bool:
    value = node.value if isinstance(node, ast.Expr) else None
    return isinstance(value, ast.Constant) and isinstance(value.value, str)


def _marker_comments(text: str) -> list[tuple[int, int, int]]:
    """(line, start column, end column) of every ``# solution`` comment."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(_mask_magics(text)).readline))
    except (tokenize.TokenError, SyntaxError) as error:
        raise MarkerError(f"cannot tokenize the cell: {error}") from None
    comments = [t for t in tokens if t.type == tokenize.COMMENT and MARKER.match(t.string)]
    return [(t.start[0], t.start[1], t.end[1]) for t in comments]


# ---------------------------------------------------------------- the three rules


def gap_marked_lines(text: str) -> tuple[str, list[str], list[str]]:
    """Gap every line that ends in ``# solution``; the marker itself goes.

    Returns the student's code, the fills and the problems: markers that do not
    end a simple statement (their line becomes ``???`` whole).
    """
    markers = _marker_comments(text)
    if not markers:
        return text, [], []
    code = _Code(text)
    statements = [n for n in ast.walk(code.tree) if isinstance(n, ast.stmt)]
    simple = [n for n in statements if not hasattr(n, "body") and not hasattr(n, "cases")]
    edits: list[_Edit] = []
    problems: list[str] = []
    for lineno, col_start, col_end in markers:
        line, line_start = code.lines[lineno - 1], code.starts[lineno - 1]
        ending = [s for s in simple if s.end_lineno == lineno]
        if not ending:
            problems.append(f"line {lineno}: the marker does not end a simple statement; the line became {GAP}")
            edits.append(_Edit(line_start + len(line) - len(line.lstrip()), line_start + col_end, True))
            continue
        # The marker goes, with the blanks before it.
        edits.append(_Edit(line_start + len(line[:col_start].rstrip()), line_start + col_end, False))
        statement = ending[-1]
        if isinstance(statement, (*_ASSIGNMENTS, ast.Return)) and statement.value is not None:
            edits.extend(_value_gaps(code, statement.value))
        else:
            edits.append(code.gap(statement))
    student, fills = code.apply(edits)
    return student, fills, problems


def _skeleton_edits(code: _Code, body: list[ast.stmt]) -> list[_Edit]:
    """Keep assignment targets, signatures, docstrings and imports; gap the rest."""
    edits: list[_Edit] = []
    run: list[ast.stmt] = []  # consecutive statements that become one ???

    def flush() -> None:
        if run:
            edits.append(code.gap(run[0], run[-1]))
            run.clear()

    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Pass)) or _is_docstring(node):
            flush()
        elif isinstance(node, _ASSIGNMENTS):
            flush()
            edits.extend(_value_gaps(code, node.value) if node.value is not None else [])
        elif isinstance(node, ast.ClassDef):
            flush()
            edits.extend(_skeleton_edits(code, node.body))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            flush()
            rest = node.body[1:] if _is_docstring(node.body[0]) else node.body
            edits.extend([code.gap(rest[0], rest[-1])] if rest else [])
        else:
            run.append(node)
    flush()
    return edits


def gap_solution_cell(text: str) -> tuple[str, list[str]]:
    """The student's skeleton of a code cell tagged ``solution``, and the fills."""
    code = _Code(text)
    edits = _skeleton_edits(code, code.tree.body)
    # Markers in a tagged cell are redundant: they go with the rest.
    for lineno, col_start, col_end in _marker_comments(text):
        start = code.starts[lineno - 1] + len(code.lines[lineno - 1][:col_start].rstrip())
        if not any(e.start <= start < e.end for e in edits):
            edits.append(_Edit(start, code.starts[lineno - 1] + col_end, False))
    student, fills = code.apply(edits)
    if not fills:  # nothing to keep: the whole cell is the answer
        return f"# Your solution here\n{GAP}", [text]
    return "# Your solution here\n" + student, fills


def _computes(node: ast.stmt) -> bool:
    """An assignment of a computed value (not a constant, a name or an attribute)."""
    return isinstance(node, _ASSIGNMENTS) and not isinstance(
        node.value, (ast.Constant, ast.Name, ast.Attribute, type(None))
    )


def _assigned_names(node: ast.stmt) -> set[str]:
    """The names an assignment binds or changes: ``a = ...``, ``a, b = ...``, ``a[k] = ...``."""
    targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target")]
    names = set()
    for target in targets:
        for part in target.elts if isinstance(target, ast.Tuple) else [target]:
            while isinstance(part, ast.Subscript):
                part = part.value
            names.update([part.id] if isinstance(part, ast.Name) else [])
    return names


def _result_gaps(code: _Code, function: ast.FunctionDef, gap_returns: bool) -> list[_Edit]:
    """Gap the assignments to the names that ``function`` computes and returns.

    With ``gap_returns``, every other returned element (not one of those names,
    not ``None``) is a gap too: ``return gz, gz`` becomes ``return ???, ???``.
    """
    statements = list(_statements(function.body))
    returned = [
        element
        for node in statements
        if isinstance(node, ast.Return) and node.value is not None
        for element in (node.value.elts if isinstance(node.value, ast.Tuple) else [node.value])
    ]
    assigned = set().union(*[_assigned_names(n) for n in statements if isinstance(n, _ASSIGNMENTS)])
    results = {e.id for e in returned if isinstance(e, ast.Name) and e.id in assigned}
    edits = []
    for node in statements:
        if _computes(node) and _assigned_names(node) & results:
            edits += _value_gaps(code, node.value)  # type: ignore[attr-defined]
    if gap_returns:
        for element in returned:
            result = isinstance(element, ast.Name) and element.id in results
            if not result and not (isinstance(element, ast.Constant) and element.value is None):
                edits.append(code.gap(element))
    return edits


def docstring_summary(text: str) -> str:
    """The code of a class or function with only the first line of its docstring.

    An exercise shows no more: the rest of a docstring often gives the answer away.
    """
    code = _Code(text)
    body = getattr(code.tree.body[0], "body", [])
    if not body or not _is_docstring(body[0]):
        return text
    docstring = code.gap(body[0])
    summary = body[0].value.value.strip().split("\n")[0].strip()
    prefix = "r" if text[docstring.start] in "rR" else ""
    return f'{text[: docstring.start]}{prefix}"""{summary}"""{text[docstring.end :]}'


def gap_exercise(text: str, whole_body: bool = False) -> tuple[str, list[str]]:
    """Gap an included class or function marked as an exercise.

    ``whole_body``: the skeleton rule (``:class: exercise-body``). Otherwise
    (``:class: exercise``): in a class, every computed value in ``apply`` and,
    in its nested ``grad``, what it returns; in a function, every assignment to
    a name it returns (``gradients = ???``, ``gradients[x] = ???``). Structure
    lines (``def grad``, ``self.grad = grad``, ``return z``, ``if`` headers)
    and helper lines (a reshaped ``gz``) stay.
    """
    code = _Code(text)
    definition = code.tree.body[0]
    edits: list[_Edit] = []
    if whole_body:
        edits = _skeleton_edits(code, [definition])
    elif isinstance(definition, ast.ClassDef):
        methods = [n for n in definition.body if isinstance(n, ast.FunctionDef) and n.name == "apply"]
        for node in _statements(methods[0].body if methods else []):
            if isinstance(node, ast.FunctionDef):  # the grad closure
                edits += _result_gaps(code, node, gap_returns=True)
            elif _computes(node):
                edits += _value_gaps(code, node.value)  # type: ignore[attr-defined]
    elif isinstance(definition, ast.FunctionDef):
        edits = _result_gaps(code, definition, gap_returns=False)
    if not edits:
        name = getattr(definition, "name", text[:40])
        raise MarkerError(f"the rule for exercises finds nothing to gap in {name}: mark a class or a function")
    return code.apply(edits)


# ---------------------------------------------------------------- filling in


def fill_gaps(text: str, fills: list[str]) -> str:
    """Put ``fills`` into the ``???`` of ``text``, in order."""
    parts = text.split(GAP)
    if len(parts) != len(fills) + 1:
        raise ValueError(f"{len(parts) - 1} gaps but {len(fills)} fills")
    return parts[0] + "".join(fill + part for fill, part in zip(fills, parts[1:]))
