# Build the book and run the tests.
#
#   make html         build the book incrementally into _build/html (open _build/html/index.html)
#   make html-strict  fresh build, every notebook re-executed, warnings are errors -> _build/strict/html
#   make test         pytest (tests, docstring examples, `>>>` examples in the chapters), mypy,
#                     the strict book build and a headless-browser check of every page
#   make bench        run the benchmarks in bench/
#   make clean        remove build outputs and caches (keeps .venv); `make distclean` removes it too
#
# Every target installs what it needs: a virtual environment in .venv (re-installed
# only when pyproject.toml changes) and the system programs `dot` (Graphviz) and
# `chromium` (the latter only for `make test`).

SHELL := /bin/bash
.DEFAULT_GOAL := html

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Touched after a successful install; older than pyproject.toml means "install again".
STAMP  := $(VENV)/.installed

SPHINXBUILD := $(BIN)/sphinx-build
SPHINXOPTS  ?=
BUILDDIR    := _build
STRICTDIR   := $(BUILDDIR)/strict

# The MNIST chapter reads the data from AUTODIFF_MNIST_DIR (there is no network to
# download it). Default to the copy beside the repository when there is one: the
# full set (../shared/mnist-full) if present, else the subset (../shared/mnist).
# tests/conftest.py makes the same choice for a bare `pytest`.
ifeq ($(strip $(AUTODIFF_MNIST_DIR)),)
ifneq ($(wildcard ../shared/mnist-full),)
export AUTODIFF_MNIST_DIR := $(abspath ../shared/mnist-full)
else ifneq ($(wildcard ../shared/mnist),)
export AUTODIFF_MNIST_DIR := $(abspath ../shared/mnist)
endif
endif

# conf.py keys the Jupyter cache folder (.jupyter_cache/<hash>) on a hash of autodiff/**/*.py,
# so cached notebook outputs are never reused after the package changes.

.PHONY: help venv install sysdeps sysdeps-test notebooks html html-strict \
        pytest mypy browser-check test bench clean distclean

help:
	@sed -n '1,15p' Makefile

# ---------------------------------------------------------------- environment

venv install: $(STAMP)

$(STAMP): pyproject.toml
	@# A venv whose pip does not run (a half-made one) is made again.
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || { \
	  rm -rf $(VENV); \
	  $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	    echo "Could not create a virtual environment with $(PYTHON)." \
	         "Install Python's venv module (Debian/Ubuntu: sudo apt-get install python3-venv)" \
	         "or run make PYTHON=/path/to/python3.10+." >&2; exit 1; }; }
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[test,docs]'
	@touch $@

sysdeps:
	@bash scripts/ensure-system-deps.sh dot

sysdeps-test:
	@bash scripts/ensure-system-deps.sh dot chromium

# ---------------------------------------------------------------- the book

# The student notebooks are written by the Sphinx extension docs/_ext/student_notebooks.py
# during every build (into <site>/notebooks/). Without building the book:
notebooks: $(STAMP)
	$(BIN)/python scripts/make_student_notebooks.py docs $(BUILDDIR)/notebooks

html: $(STAMP) sysdeps
	AUTODIFF_NB_EXECUTION_MODE=cache \
	  $(SPHINXBUILD) -b html -c . docs $(BUILDDIR)/html -d $(BUILDDIR)/doctrees $(SPHINXOPTS)
	@echo "The book is in $(BUILDDIR)/html/index.html"

# A separate output folder, so the strict build never disturbs the incremental one.
html-strict: $(STAMP) sysdeps
	rm -rf $(STRICTDIR)
	AUTODIFF_NB_EXECUTION_MODE=force \
	  $(SPHINXBUILD) -E -W --keep-going -n -b html -c . docs $(STRICTDIR)/html \
	  -d $(STRICTDIR)/doctrees $(SPHINXOPTS)
	@echo "The strict build is in $(STRICTDIR)/html/index.html"

# ---------------------------------------------------------------- tests

# Unit tests, the docstring examples of the package, and the `>>>` examples in the
# chapters (collected by Sybil, see docs/conftest.py): testpaths in pyproject.toml.
pytest: $(STAMP)
	$(BIN)/python -m pytest -q

mypy: $(STAMP)
	$(BIN)/python -m mypy autodiff

# Loads every page of the strict build in headless Chromium (run html-strict first).
browser-check: $(STAMP) sysdeps-test
	$(BIN)/python scripts/check_book_in_browser.py $(STRICTDIR)/html

# Runs every part even when one fails, then fails if any part failed.
test: $(STAMP) sysdeps-test
	@failed=""; \
	for part in pytest mypy html-strict browser-check; do \
	  echo "==== make $$part"; \
	  $(MAKE) --no-print-directory $$part || failed="$$failed $$part"; \
	done; \
	if [ -n "$$failed" ]; then echo "==== FAILED:$$failed"; exit 1; fi; \
	echo "==== all checks passed"

# ---------------------------------------------------------------- benchmarks

# OpenBLAS settings that may be exported on a machine are dropped for the benchmark run only.
bench: $(STAMP)
	@for f in bench/*.py; do \
	  echo "==== $$f"; \
	  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python "$$f" || exit 1; \
	done

# ---------------------------------------------------------------- cleaning

clean:
	rm -rf $(BUILDDIR) .jupyter_cache .pytest_cache .mypy_cache .hypothesis *.egg-info
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
