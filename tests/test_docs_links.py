"""Every relative link and image in README.md and docs/*.md points to a file git tracks.

A link into an ignored or uncommitted folder works on the machine that wrote it and nowhere else
(docs/runs/ was once ignored by a bare `runs/` pattern: the README's headline figure was never committed).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[1]
# [text](target) and ![alt](target), target up to the first space or ')'; also <img src="...">.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|<img[^>]*\ssrc=\"([^\"]+)\"")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)


def tracked_files() -> set[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: nothing to compare the links with")
    return {p for p in out.decode().split("\0") if p}


def relative_links(markdown: str) -> list[str]:
    text = CODE.sub("", markdown)  # commands in code blocks are not links
    targets = [a or b for a, b in LINK.findall(text)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:|^#", t)]


def resolve(doc: Path, target: str) -> str:
    path = (doc.parent / target.split("#", 1)[0]).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)  # outside: never tracked


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_link_pattern_finds_links_and_images_and_skips_code_and_urls():
    text = ("see [a](docs/a.md#part) and ![fig](runs/x/plot.png \"title\") and <img src=\"img/b.png\" width=3>\n"
            "`[not](code.md)` [web](https://example.org) [here](#anchor)\n```\n[no](block.md)\n```\n")
    assert relative_links(text) == ["docs/a.md#part", "runs/x/plot.png", "img/b.png"]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves_to_a_tracked_file(doc: Path):
    tracked = tracked_files()
    folders = {q.as_posix() for f in tracked for q in PurePosixPath(f).parents}
    broken = []
    for target in relative_links(doc.read_text(encoding="utf-8")):
        path = resolve(doc, target)
        if path not in tracked and path.rstrip("/") not in folders:
            broken.append(target)
    assert not broken, f"{doc.relative_to(ROOT)} links to files git does not track: {broken}"
