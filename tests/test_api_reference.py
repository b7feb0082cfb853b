"""The API reference (docs/api.md) lists every public name of autodiff.ops, once."""

from __future__ import annotations

import re
from pathlib import Path

import autodiff.ops

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_every_name_of_ops_has_one_entry_in_the_reference() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    text = text[text.index("## Operations: `autodiff.ops`"):]
    text = text[: text.index("\n## ", 1)]  # up to the next module's section
    listed = re.findall(r"^\.\. auto(?:class|function):: (\w+)\s*$", text, flags=re.MULTILINE)
    missing = sorted(set(autodiff.ops.__all__) - set(listed))
    twice = sorted({name for name in listed if listed.count(name) > 1})
    assert not missing, f"docs/api.md has no entry for {missing}: add it to its section"
    assert not twice, f"docs/api.md lists {twice} more than once"
