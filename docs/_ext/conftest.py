"""pytest's doctest collection imports these modules, which import each other by
name as Sphinx does (conf.py puts this folder on sys.path): so does this file."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
