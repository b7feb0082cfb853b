"""Sphinx extension: the student edition of the book, built with the HTML.

At the end of an HTML build it writes into ``<outdir>/notebooks/``

* one student notebook per chapter (``<chapter>.ipynb``): every marked
  solution replaced by ``???``, outputs cleared (see :mod:`student_edition`);
* the build-it-yourself notebook ``build-your-own-autodiff.ipynb``;
* ``autodiff-student-notebooks.zip`` with all of them.

Each chapter page gets a note under its title linking its notebook and the zip.
Everything is local: no network requests.

Enable it in ``conf.py``::

    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    extensions += ["student_notebooks"]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

# conf.py puts this folder on sys.path; pytest --doctest-modules does not.
if str(Path(__file__).resolve().parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import student_edition  # noqa: E402

logger = logging.getLogger(__name__)


def _chapter_path(app: Sphinx, docname: str) -> Path | None:
    """The source of ``docname`` if it is a notebook chapter at the top of the source folder."""
    if "/" in docname:
        return None
    path = Path(app.env.doc2path(docname))
    if path.suffix != ".md" or not path.exists():
        return None
    cache: dict[str, bool] = app.env.__dict__.setdefault("_student_notebook_chapters", {})
    if docname not in cache:
        cache[docname] = student_edition.is_notebook_chapter(path)
    return path if cache[docname] else None


def _add_download_note(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    if app.builder.format != "html":
        return
    path = _chapter_path(app, docname)
    if path is None:
        return
    folder = app.config.student_notebooks_folder
    notebook = f"{folder}/{docname}.ipynb"
    archive = f"{folder}/{student_edition.ZIP_NAME}"
    text = path.read_text(encoding="utf-8")
    has_gaps = re.search(r"#\s*solution\s*$", text, re.MULTILINE) or re.search(
        r"^:tags:.*\bsolution\b", text, re.MULTILINE
    )
    paragraph = nodes.paragraph()
    paragraph += nodes.Text("Download this chapter as a Jupyter notebook")
    paragraph += nodes.Text(
        f" with gaps ({student_edition.GAP}) where the solutions are, for you to fill in: "
        if has_gaps
        else ", to run and change the code yourself: "
    )
    paragraph += nodes.reference("", f"{docname}.ipynb", refuri=notebook, internal=False)
    paragraph += nodes.Text(
        ". It opens in Jupyter and in Colab. All chapters and the build-it-yourself "
        "notebook in one file: "
    )
    paragraph += nodes.reference("", student_edition.ZIP_NAME, refuri=archive, internal=False)
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
    srcdir = Path(app.srcdir)
    root = Path(app.config.student_notebooks_root or srcdir.parent)
    outdir = Path(app.outdir) / app.config.student_notebooks_folder
    notebooks = []
    for docname in sorted(app.env.found_docs):
        path = _chapter_path(app, docname)
        if path is not None:
            notebooks.append(student_edition.student_chapter(path, docname))
    notebooks.append(student_edition.build_your_own(root))
    for student in notebooks:
        for problem in student.problems:
            logger.warning("student notebook %s: %s", student.filename, problem, type="student_notebooks")
    written = student_edition.write_notebooks(notebooks, outdir)
    logger.info("student notebooks: wrote %d files to %s", len(written), outdir)


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_config_value("student_notebooks_folder", "notebooks", "html", types=[str])
    app.add_config_value("student_notebooks_root", "", "html", types=[str])
    app.connect("doctree-resolved", _add_download_note)
    app.connect("build-finished", _write_notebooks)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
