"""Sphinx configuration for the book.

Build with ``make html`` (or ``sphinx-build -c . docs _build/html``): this file
sits at the repository root, the chapters are in ``docs/``. Paths below such as
``html_static_path`` are relative to this file; ``exclude_patterns`` is relative
to ``docs/``.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
# The book's own Sphinx extensions live in docs/_ext: list them in `extensions` by module name.
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

# An inherited MPLBACKEND=agg would make every matplotlib figure vanish from the
# book without an error; the notebook kernels inherit this process's environment.
os.environ.pop("MPLBACKEND", None)
# The notebook kernels inherit this environment. One BLAS thread per kernel keeps the
# chapters' timings steady and the build fast on small, busy machines: idle OpenBLAS
# threads spin while they wait for a core. A reader's own run uses all threads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# -- Project -------------------------------------------------------------------

project = "Autodiff from Scratch"
author = "The autodiff authors"
copyright = "2026, The autodiff authors"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx_autodoc_typehints",  # after napoleon, which it builds on
    "sphinx.ext.viewcode",
    "sphinx_copybutton",
    "sphinx_design",
    "sphinx-mathjax-offline",  # MathJax served from _static: math renders without a network
    "student_notebooks",  # docs/_ext: writes the student notebooks and links them from each chapter
]

exclude_patterns = [
    "_build",
    ".venv",
    "**/.ipynb_checkpoints",
    "**/jupyter_execute",
    "README.md",
    "**/README.md",
    "conftest.py",
    "_ext",
]
templates_path: list[str] = []

# -- MyST and notebook execution ---------------------------------------------------

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3


def _package_sources_hash() -> str:
    """A hash of autodiff/**/*.py (names and contents) and of the MNIST folder's name."""
    digest = hashlib.sha256()
    # The MNIST chapter's outputs depend on the data it finds (the full set or a subset).
    digest.update(os.environ.get("AUTODIFF_MNIST_DIR", "").encode() + b"\0")
    for path in sorted((ROOT / "autodiff").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


# "cache" for `make html` (re-execute only what changed), "force" for `make html-strict`.
nb_execution_mode = os.environ.get("AUTODIFF_NB_EXECUTION_MODE", "cache")
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_timeout = 300
nb_merge_streams = True

# jupyter-cache keys on the code of a notebook only, so after a change to the package
# (or to the MNIST folder) it would hand back stale outputs. One cache folder per
# version of the package sources and MNIST folder avoids that; and since a changed
# nb_execution_cache_path makes Sphinx re-read every chapter, no page keeps outputs
# computed with the old code or data.
_sources_hash = _package_sources_hash()
_cache_root = ROOT / ".jupyter_cache"
nb_execution_cache_path = str(_cache_root / _sources_hash)
if nb_execution_mode == "cache":
    # Folders for earlier versions of the package can never be hit again.
    for _old in _cache_root.glob("*"):
        if re.fullmatch(r"[0-9a-f]{16}", _old.name) and _old.name != _sources_hash:
            shutil.rmtree(_old, ignore_errors=True)

# -- API documentation ----------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Keep NumPy's private typing names (_NestedSequence, ...) out of the signatures.
autodoc_type_aliases = {
    "ArrayLike": "autodiff.core.ArrayLike",
    "DTypeLike": "autodiff.core.DTypeLike",
}
# Show defaults as written in the source (`np.float32`, `cross_entropy`), not as the
# repr of the object, which for a function contains a memory address.
autodoc_preserve_defaults = True
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False  # sphinx-autodoc-typehints adds the return type
typehints_defaults = "comma"
typehints_document_rtype_none = False  # no "Return type: None" lines

# No intersphinx: the inventories cannot be fetched offline, and a failed fetch is an
# error under -W. Names from outside the package therefore stay unresolved: ignore them.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(numpy|np|npt|numpy\.typing|numpy\._typing)(\..*)?"),
    (r"py:.*", r"(typing|typing_extensions|collections\.abc|types|abc)\..*"),
    (r"py:.*", r"(graphviz|tqdm|matplotlib)(\..*)?"),
    (r"py:.*", r"(Any|Callable|Iterable|Iterator|Sequence|Mapping|Union|Optional|Self|Literal)"),
    (r"py:.*", r"(NDArray|ndarray|ArrayLike|DTypeLike|dtype|floating|float64)(\[.*\])?"),
    (r"py:.*", r"(int|float|bool|str|complex|object|None|type|dict|list|tuple|set|frozenset)"),
    (r"py:data", r"Ellipsis"),  # the `...` in tuple[int, ...]
    # The standard library (no intersphinx, see above).
    (r"py:.*", r"(os|pathlib|io|gzip|json|hashlib|urllib|shutil|tempfile|dataclasses|collections|contextlib|functools|itertools|zipfile|struct)\..*"),
]

# -- HTML -----------------------------------------------------------------------------------

html_theme = "sphinx_book_theme"
html_title = project
html_static_path = ["docs/_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = True
# Without a default the theme logs "Got invalid theme mode" on a reader's first visit.
html_context = {"default_mode": "auto"}
html_theme_options = {
    # No repository, launch or analytics buttons: nothing on a page loads from outside.
    "home_page_in_toc": True,
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": True,
    "use_repository_button": False,
    "use_issues_button": False,
    "use_edit_page_button": False,
    "navigation_with_keys": False,
}

# Copy only the code of `>>> ` examples, and shell commands without the `$ `.
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True



def _resolve_public_name(app, env, node, contnode):  # noqa: ANN001, ANN202 - Sphinx event handler
    """Resolve ``autodiff.backprop`` to ``autodiff.core.backprop``, and the like.

    The API page documents every object in the module that defines it, while the
    chapters cite the names readers import (``autodiff.backprop``,
    ``autodiff.nn.Module.named_parameters``). Look the object up and retry with
    the name of its defining module.
    """
    target = node.get("reftarget", "")
    module_of_docstring = node.get("py:module") or ""
    if node.get("refdomain") != "py":
        return None
    if not target.startswith("autodiff.") and module_of_docstring.startswith("autodiff"):
        # A bare name in a docstring: a name visible in that module (maybe imported).
        target = f"{module_of_docstring}.{target}"
    if not target.startswith("autodiff."):
        return None
    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            module = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        obj = getattr(module, parts[i], None)
        defined_in = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        if not defined_in or not qualname:
            return None
        canonical = ".".join([defined_in, qualname, *parts[i + 1 :]])
        if canonical == target:
            return None
        return env.get_domain("py").resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], canonical, node, contnode
        )
    return None


def setup(app):  # noqa: ANN001, ANN201 - Sphinx's extension hook
    app.connect("missing-reference", _resolve_public_name)
    return {"parallel_read_safe": True}
