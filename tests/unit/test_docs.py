"""The docs cannot drift from the code: every setting documented, every documented one real."""

from __future__ import annotations

import re
from pathlib import Path

from exchange.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]


def test_settings_page_lists_exactly_the_settings():
    text = (ROOT / "docs" / "settings.md").read_text()
    documented = set(re.findall(r"^\| `(EXCHANGE_[A-Z0-9_]+)`", text, re.M))
    actual = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.__struct_fields__}
    assert documented == actual


def test_docs_links_resolve():
    for page in [ROOT / "README.md", ROOT / "deploy" / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_reason_codes_page_lists_exactly_the_codes():
    from exchange.reasons import REASONS

    text = (ROOT / "docs" / "reason-codes.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_:<>]+)` \|", text, re.M))
    assert documented == set(REASONS)
