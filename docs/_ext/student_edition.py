"""The student edition of the book: notebooks with ``???`` gaps instead of solutions.

One notebook per chapter (every MyST notebook in ``docs/``), one per exercise
notebook in ``docs/_exercises/`` (not part of the book, such as
``build-your-own-autodiff.md``), and a zip of all of them. The Sphinx extension
:mod:`student_notebooks`, the script ``scripts/make_student_notebooks.py`` and
the tests use this module; it needs no Sphinx application.

How a chapter marks its solutions, and what the student sees instead, is in
:mod:`exercise_gaps`; how a MyST file becomes notebook cells, in
:mod:`myst_to_notebook`.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from exercise_gaps import GAP
from myst_to_notebook import CellGaps, convert, convert_roles

BOOK_TITLE = "Autodiff from Scratch"
ZIP_NAME = "autodiff-student-notebooks.zip"
#: Exercise notebooks that are not chapters of the book, relative to ``docs/``.
EXERCISES_FOLDER = "_exercises"
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


@dataclass
class StudentNotebook:
    name: str  # the file stem, e.g. "exercise-1"
    notebook: nbformat.NotebookNode
    gaps: list[CellGaps]
    problems: list[str]

    @property
    def filename(self) -> str:
        return f"{self.name}.ipynb"


def is_notebook_source(path: Path) -> bool:
    """True for a MyST Markdown notebook: front matter with jupytext's format and a kernelspec."""
    text = Path(path).read_text(encoding="utf-8")
    front = text.split("\n---", 1)[0] if text.startswith("---") else ""
    return "kernelspec:" in front and "format_name: myst" in front


def notebook_sources(folder: Path) -> list[Path]:
    """The MyST notebooks in ``folder``, sorted by name: the chapters in ``docs/``, the
    exercise notebooks in ``docs/_exercises/``."""
    return sorted(p for p in Path(folder).glob("*.md") if is_notebook_source(p))


def student_notebook(path: Path, in_book: bool = True) -> StudentNotebook:
    """The student edition of one MyST notebook: a chapter, or (``in_book=False``) not one."""
    path = Path(path)
    converted = convert(path)
    title_cell = converted.cells[0]  # always markdown, usually the title
    title, rest = _split_title(title_cell.source)
    note = _note(title or path.stem, in_book, bool(converted.gaps))
    title_cell.source = "\n\n".join(part for part in (title, note, rest) if part)
    name = path.stem
    for number, cell in enumerate(converted.cells):
        cell.id = f"{name}-{number}"  # not random: the same chapter gives the same notebook
    metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    notebook = nbformat.v4.new_notebook(cells=converted.cells, metadata=metadata)
    return StudentNotebook(name, notebook, converted.gaps, converted.problems)


def has_exercises(path: Path) -> bool:
    """True if the chapter at ``path`` has gaps for the student: the one test for it."""
    return bool(student_notebook(path).gaps)


def _split_title(markdown: str) -> tuple[str, str]:
    """The first line if it is a heading, and the rest."""
    first, _, rest = markdown.partition("\n")
    return (first, rest.strip("\n")) if re.match(r"^#\s+\S", first) else ("", markdown)


def _note(title: str, in_book: bool, has_gaps: bool) -> str:
    """The note under the title: what this notebook is, and how to use it."""
    title = convert_roles(title.lstrip("# ").strip())
    what = (
        f"This is the exercise edition of the chapter *{title}* of the book *{BOOK_TITLE}*."
        if in_book
        else f"It comes with the book *{BOOK_TITLE}*."
    )
    todo = (
        f"Every `{GAP}` is a gap for you to fill in. The cell after a gap checks your answer: "
        f"run it, and it tells you whether the answer is right. (A cell that still contains "
        f"`{GAP}` stops with a `SyntaxError`; that only means the gap is not filled yet.)"
        if has_gaps
        else "This chapter has no gaps to fill in: run it, change it, experiment."
    )
    lines = [f"**Exercise notebook.** {what} {todo}"]
    if in_book:  # an exercise notebook says itself what it needs
        lines.append(
            "**Setup.** The notebook imports the package `autodiff` that the book builds. In a "
            "clone of the book's repository run `pip install -e .` in the repository root (once), "
            "then start Jupyter from that environment. In Colab or another hosted Jupyter, upload "
            "or clone the repository and install it from a cell: "
            "`%pip install -e /path/to/the/repository`."
        )
    return "\n>\n".join(f"> {line}" for line in lines)


def student_notebooks(docs: Path) -> list[StudentNotebook]:
    """Every student notebook: the chapters, then the exercise notebooks."""
    chapters = [student_notebook(path) for path in notebook_sources(docs)]
    exercises = notebook_sources(Path(docs) / EXERCISES_FOLDER)
    return chapters + [student_notebook(path, in_book=False) for path in exercises]


def write_notebooks(notebooks: list[StudentNotebook], outdir: Path) -> list[Path]:
    """Validate and write the notebooks, and a zip of all of them; return the paths."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    written = []
    for student in notebooks:
        nbformat.validate(student.notebook)
        path = outdir / student.filename
        text = nbformat.writes(student.notebook)
        if not path.exists() or path.read_text(encoding="utf-8") != text:  # keep the date of unchanged files
            path.write_text(text, encoding="utf-8")
        written.append(path)
    archive = outdir / ZIP_NAME
    temporary = archive.with_suffix(".zip.tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in written:
            # A fixed date: the same notebooks give the same zip.
            info = zipfile.ZipInfo(f"autodiff-student-notebooks/{path.name}", date_time=(2025, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    temporary.replace(archive)
    return written + [archive]
