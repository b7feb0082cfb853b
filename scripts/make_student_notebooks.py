"""Write the student notebooks of the book without building it.

    python scripts/make_student_notebooks.py docs OUTDIR

writes one notebook per chapter of DOCS (every ``*.md`` that is a notebook),
one per exercise notebook in DOCS/_exercises (``build-your-own-autodiff.ipynb``)
and ``autodiff-student-notebooks.zip`` into OUTDIR. The book build (extension
``student_notebooks``) does the same into ``<html>/notebooks``. Problems with
solution markers and includes are printed; the exit status is 1 if there are any.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import student_edition  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("docs", type=Path, help="the folder of the chapters (docs)")
    parser.add_argument("outdir", type=Path, help="where to write the notebooks")
    args = parser.parse_args(argv)
    notebooks = student_edition.student_notebooks(args.docs)
    written = student_edition.write_notebooks(notebooks, args.outdir)
    problems = 0
    for student in notebooks:
        gaps = sum(len(g.fills) for g in student.gaps)
        print(f"{student.filename}: {gaps} gaps in {len(student.gaps)} cells")
        for problem in student.problems:
            print(f"  problem: {problem}", file=sys.stderr)
            problems += 1
    print(f"wrote {len(written)} files to {args.outdir}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
