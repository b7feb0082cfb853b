"""Collect the ``>>>`` examples in the chapters as pytest tests (``make pytest``).

Tested here: fenced ``python`` or ``pycon`` blocks that start with ``>>>`` and
``{doctest}`` directives. The ``{code-cell}`` blocks are tested by executing the
book (``make html-strict``); other fenced Python blocks are illustrations.
Skip an example with a ``% skip: next`` comment above it.
"""

from collections.abc import Iterator
from doctest import ELLIPSIS, NORMALIZE_WHITESPACE

from sybil import Document, Region, Sybil
from sybil.evaluators.doctest import DocTestEvaluator
from sybil.parsers.myst import DocTestDirectiveParser, PythonCodeBlockParser, SkipParser

OPTIONFLAGS = ELLIPSIS | NORMALIZE_WHITESPACE


class DocTestsInCodeBlocks:
    """The doctest examples in fenced code blocks of one language, nothing else."""

    def __init__(self, language: str) -> None:
        self.parser = PythonCodeBlockParser(doctest_optionflags=OPTIONFLAGS)
        self.parser.codeblock_parser.language = language

    def __call__(self, document: Document) -> Iterator[Region]:
        for region in self.parser(document):
            if isinstance(region.evaluator, DocTestEvaluator):
                yield region


pytest_collect_file = Sybil(
    parsers=[
        DocTestsInCodeBlocks("python"),
        DocTestsInCodeBlocks("pycon"),
        DocTestDirectiveParser(optionflags=OPTIONFLAGS),
        SkipParser(),
    ],
    patterns=["*.md"],
).pytest()
