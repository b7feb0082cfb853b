"""Sphinx extension: the student edition of the book, built with the HTML.

At the end of an HTML build it writes into ``<outdir>/notebooks/``

* one student notebook per chapter (``<chapter>.ipynb``): every marked
  solution replaced by ``???``, outputs cleared (see :mod:`student_edition`);
* one per exercise notebook of ``docs/_exercises/``, such as
  ``build-your-own-autodiff.ipynb`` (that folder is not part of the book:
  ``conf.py`` excludes it);
* ``autodiff-student-notebooks.zip`` with all of them.

Each chapter page gets a note under its title linking its notebook and the zip.
Everything is local: no network requests.

Enable it in ``conf.py``::

    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    extensions += ["student_notebooks"]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

import student_edition
from exercise_gaps import GAP

logger = logging.getLogger(__name__)


def _chapter_path(app: Sphinx, docname: str) -> Path | None:
    """The source of ``docname`` if it is a notebook chapter at the top of the source folder."""
    path = Path(app.env.doc2path(docname))
    if "/" in docname or path.suffix != ".md" or not student_edition.is_notebook_source(path):
        return None
    return path


def _add_download_note(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    if app.builder.format != "html":
        return
    path = _chapter_path(app, docname)
    if path is None:
        return
    folder = app.config.student_notebooks_folder
    paragraph = nodes.paragraph()
    paragraph += nodes.Text("Download this chapter as a Jupyter notebook")
    paragraph += nodes.Text(
        f" with gaps ({GAP}) where the solutions are, for you to fill in: "
        if student_edition.has_exercises(path)
        else ", to run and change the code yourself: "
    )
    paragraph += nodes.reference("", f"{docname}.ipynb", refuri=f"{folder}/{docname}.ipynb", internal=False)
    paragraph += nodes.Text(
        ". It opens in Jupyter and in Colab. All chapters and the build-it-yourself notebook in one file: "
    )
    archive = student_edition.ZIP_NAME
    paragraph += nodes.reference("", archive, refuri=f"{folder}/{archive}", internal=False)
    paragraph += nodes.Text(".")
    note = nodes.admonition("", nodes.title(text="Exercise notebook"), paragraph)
    note["classes"] += ["tip", "student-notebook"]
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is not None and section.children and isinstance(section[0], nodes.title):
        section.insert(1, note)
    else:
        doctree.insert(0, note)


def _write_notebooks(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    chapters = [_chapter_path(app, docname) for docname in sorted(app.env.found_docs)]
    exercises = student_edition.notebook_sources(Path(app.srcdir) / app.config.student_notebooks_exercises)
    notebooks = [student_edition.student_notebook(path) for path in chapters if path is not None]
    notebooks += [student_edition.student_notebook(path, in_book=False) for path in exercises]
    for student in notebooks:
        for problem in student.problems:
            logger.warning("student notebook %s: %s", student.filename, problem, type="student_notebooks")
    outdir = Path(app.outdir) / app.config.student_notebooks_folder
    written = student_edition.write_notebooks(notebooks, outdir)
    logger.info("student notebooks: wrote %d files to %s", len(written), outdir)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("student_notebooks_folder", "notebooks", "html", types=[str])
    # Exercise notebooks that are not chapters; relative to the source folder, which excludes it.
    app.add_config_value("student_notebooks_exercises", student_edition.EXERCISES_FOLDER, "html", types=[str])
    app.connect("doctree-resolved", _add_download_note)
    app.connect("build-finished", _write_notebooks)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
