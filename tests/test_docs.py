"""The README stays a short front page, and everything moved out of it is one link away."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RELATIVE_LINK = re.compile(r"\]\((?!https?://|mailto:|#)([^)#\s]+)(?:#[^)]*)?\)")


def _relative_links(page: Path) -> list[Path]:
    return [(page.parent / target).resolve() for target in RELATIVE_LINK.findall(page.read_text())]


def test_readme_is_at_most_200_lines() -> None:
    assert len(README.read_text().splitlines()) <= 200


def test_every_doc_is_linked_from_the_readme() -> None:
    linked = set(_relative_links(README))
    pages = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
    unlinked = [str(page.relative_to(ROOT)) for page in pages if page.resolve() not in linked]
    assert not unlinked, f"not reachable from README.md: {unlinked}"


def test_every_relative_link_in_the_docs_resolves() -> None:
    pages = [README, *(ROOT / "docs").glob("*.md"), *(ROOT / "bench").glob("*.md")]
    broken = [
        f"{page.relative_to(ROOT)} -> {target}"
        for page in pages
        for target in _relative_links(page)
        if not target.exists()
    ]
    assert not broken, "broken links:\n" + "\n".join(broken)
