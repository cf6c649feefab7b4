"""Every relative link in README.md and docs/ resolves: the file exists, and so does the #anchor.

Anchors follow GitHub's rule: the heading in lower case, punctuation other than
``-`` and ``_`` dropped, spaces turned into ``-``, repeats numbered ``-1``, ``-2``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support import ROOT

DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
#: [text](target) outside code; images too. Reference-style links are not used in these docs.
LINK = re.compile(r"(?<!\\)\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")
#: a Markdown file named in prose without a link, e.g. "(see delivery.md)"
MENTION = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)\b")


def prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code spans (links there are not links)."""
    kept, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced and not line.startswith("    "):
            kept.append(re.sub(r"`[^`\n]*`", "", line))
    return "\n".join(kept)


def anchors(path: Path) -> set[str]:
    """The heading anchors GitHub generates for the Markdown file ``path``."""
    seen: dict[str, int] = {}
    found = set()
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
        if fenced or not (match := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)):
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(path: Path) -> list[str]:
    """Links of ``path`` that point inside the repository (no scheme, no mailto)."""
    return [t for t in LINK.findall(prose(path.read_text())) if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def broken(path: Path, root: Path = ROOT) -> list[str]:
    """Links of ``path`` to a file or heading that does not exist (or outside ``root``)."""
    problems = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.is_relative_to(root):
            problems.append(f"{target}: outside the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file {resolved.relative_to(root)}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no heading #{anchor} in {resolved.relative_to(root)}")
    for name in MENTION.findall(LINK.sub("", prose(path.read_text()))):
        if not any((base / name).exists() for base in (path.parent, root, root / "docs")):
            problems.append(f"{name}: named in the text, but no such file")
    return problems


@pytest.mark.parametrize("path", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_relative_link_resolves(path: Path) -> None:
    problems = broken(path)
    assert not problems, f"{path.relative_to(ROOT)}:\n  " + "\n  ".join(problems)


def test_the_checker_sees_what_it_should(tmp_path: Path) -> None:
    """Control: a dead file, a dead anchor and a good anchor, in a file written here."""
    (tmp_path / "other.md").write_text("# Title\n\n## Tags and cardinality\n\n## Tags and cardinality\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](other.md#tags-and-cardinality) [ok too](other.md#tags-and-cardinality-1) [dead](missing.md)\n"
        "[bad anchor](other.md#nope) [web](https://example.com/x.md) `[code](nope.md)` (see delivery.md)\n"
        "```\n[fenced](nope.md)\n```\n"
    )
    assert relative_links(page) == [
        "other.md#tags-and-cardinality", "other.md#tags-and-cardinality-1", "missing.md", "other.md#nope",
    ]  # fmt: skip
    assert anchors(tmp_path / "other.md") == {"title", "tags-and-cardinality", "tags-and-cardinality-1"}
    assert broken(page, root=tmp_path) == [
        "missing.md: no such file missing.md", "other.md#nope: no heading #nope in other.md",
        "delivery.md: named in the text, but no such file",
    ]  # fmt: skip
