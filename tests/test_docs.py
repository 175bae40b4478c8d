"""The docs stand on their own and keep up with the API.

A clone holds nothing outside the repository, so a link out of it (the contract Flint was built
from, say) is a dead link for every reader; docs/api.md is the whole reference, so an operation the
server serves, an event type it records or a scope it grants that the page does not name is a gap a
reader falls into. These tests make both a failing build instead of a surprise.
"""
from __future__ import annotations

import re
import subprocess
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import httpx

from flint.event_types import EVENT_TYPES
from flint.scopes import SCOPES

from support import ROOT
from support.server import LiveServer

API_DOC = ROOT / "docs" / "api.md"
SKIPPED_DIRS = {".venv", "node_modules"}
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target "title") and ![alt](target); the target may be <wrapped> and hold balanced parentheses.
_INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|(?:[^()\s]|\([^()\s]*\))*)(?:\s+[\"'(][^)]*)?\)")
_REFERENCE_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
_HTML_ANCHOR = re.compile(r"<a\s[^>]*(?:id|name)=[\"']([^\"']+)[\"']", re.IGNORECASE)
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def markdown_files() -> list[Path]:
    """Every Markdown file of the repository: tracked, or new and not ignored (outside .venv and
    node_modules, whatever git thinks of them)."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "*.md"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    files = {ROOT / name for name in listed if name}
    return sorted(path for path in files
                  if path.is_file() and not SKIPPED_DIRS & set(path.relative_to(ROOT).parts))


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code spans blanked: a link shown
    as code is an example, not a link."""
    out, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            out.append((number, _CODE_SPAN.sub(lambda m: " " * len(m.group()), line)))
    return out


def link_targets(text: str) -> list[tuple[int, str]]:
    found = []
    for number, line in prose_lines(text):
        for match in _INLINE_LINK.finditer(line):
            found.append((number, match.group(1)))
        if (definition := _REFERENCE_DEF.match(line)) is not None:
            found.append((number, definition.group(1)))
    return [(number, target.strip("<>").strip()) for number, target in found]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, punctuation other than '-' and '_'
    dropped, spaces as hyphens (as github-slugger does it)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading: its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    kept = "".join(ch for ch in text
                   if ch in " -_" or unicodedata.category(ch)[0] in "LNM")
    return kept.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    names: set[str] = set()
    seen: dict[str, int] = {}
    text = path.read_text(encoding="utf-8")
    for _, line in prose_lines(text):
        names.update(_HTML_ANCHOR.findall(line))
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced or (heading := _HEADING.match(line)) is None:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        names.add(base if count == 0 else f"{base}-{count}")
    return names


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """What is wrong with each local link of one Markdown file of the repository at ``root``."""
    problems = []
    for number, target in link_targets(path.read_text(encoding="utf-8")):
        where = f"{path.relative_to(root)}:{number}: {target}"
        if target.startswith(("http://", "https://", "mailto:")) or not target:
            continue
        if target.startswith("#"):
            if unquote(target[1:]) not in anchors(path):
                problems.append(f"{where}: no heading or anchor of that name in this file")
            continue
        if _SCHEME.match(target):
            problems.append(f"{where}: not a path inside the repository")
            continue
        raw_path, _, fragment = target.partition("#")
        raw_path = raw_path.split("?", 1)[0]
        base = root if raw_path.startswith("/") else path.parent
        resolved = (base / unquote(raw_path.lstrip("/"))).resolve()
        if not resolved.is_relative_to(root):
            problems.append(f"{where}: points outside the repository (a clone does not have it)")
        elif not resolved.exists():
            problems.append(f"{where}: no such file in the repository")
        elif fragment and resolved.suffix == ".md" and unquote(fragment) not in anchors(resolved):
            problems.append(f"{where}: {resolved.relative_to(root)} has no heading or anchor '{fragment}'")
    return problems


def documented_operations(text: str) -> set[tuple[str, str]]:
    """Every `METHOD /v1/...` the page names, path parameters written as {} (so {id} and
    {session_id} are the same), query strings left out."""
    pattern = re.compile(rf"\b({'|'.join(HTTP_METHODS)})\s+(/v1/[A-Za-z0-9_./{{}}-]*)")
    return {(method, normalise(path)) for method, path in pattern.findall(text)}


def normalise(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path.rstrip("/.").rstrip("/"))


def served_operations(server: LiveServer) -> set[tuple[str, str]]:
    document = httpx.get(f"{server.url}/v1/openapi.json", timeout=30).json()
    return {(method.upper(), normalise(path))
            for path, item in document["paths"].items() if path.startswith("/v1/")
            for method in item if method.upper() in HTTP_METHODS}


# -- the tests ----------------------------------------------------------------------------------------

def test_every_local_link_in_the_docs_resolves_inside_the_repository():
    files = markdown_files()
    assert ROOT / "README.md" in files and API_DOC in files and ROOT / "docs" / "README.md" in files
    problems = [problem for path in files for problem in broken_links(path)]
    assert problems == [], "broken Markdown links:\n" + "\n".join(problems)


def test_the_link_check_sees_what_it_must(tmp_path: Path):
    # The checker itself, on a repository of two pages: a link out of the clone, a missing file and a
    # missing heading are each caught; links in code are not links; and GitHub's anchors for the
    # headings this repository uses are computed as GitHub does.
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "api.md").write_text("# Flint API reference\n\n## 10. Partner apps\n", encoding="utf-8")
    page = root / "docs" / "README.md"
    page.write_text("# Title\n[out](../../shared/API.md) [gone](nowhere.md) [bad anchor](api.md#no-such-section)\n"
                    "[fine](api.md#10-partner-apps) [self](#title) [root](/docs/api.md) [web](https://example.com/x)\n"
                    "`[code](../../not-a-link.md)`\n```\n[fenced](../../also-not.md)\n```\n", encoding="utf-8")
    problems = broken_links(page, root)
    assert [p.split(": ", 2)[1] for p in problems] == ["../../shared/API.md", "nowhere.md",
                                                      "api.md#no-such-section"], problems
    assert slug("5. Rotating `FLINT_SECRET_KEY`") == "5-rotating-flint_secret_key"
    assert slug("5. Buyer surfaces (widget, hosted pages)") == "5-buyer-surfaces-widget-hosted-pages"
    assert slug("The checkout.before_payment hook") == "the-checkoutbefore_payment-hook"


def test_every_operation_the_server_serves_is_in_the_reference(server: LiveServer):
    served = served_operations(server)
    documented = documented_operations(API_DOC.read_text(encoding="utf-8"))
    assert len(served) > 40  # the whole /v1 surface, not an empty document
    missing = sorted(served - documented)
    assert missing == [], f"docs/api.md does not name these operations: {missing}"
    # And the other way round: the reference describes no operation the server does not have
    # (a planned feature written up as if it existed).
    invented = sorted(documented - served)
    assert invented == [], f"docs/api.md names operations the server does not serve: {invented}"


def test_every_event_type_and_scope_is_in_the_reference():
    text = API_DOC.read_text(encoding="utf-8")
    missing = [name for name in (*EVENT_TYPES, *SCOPES) if f"`{name}`" not in text]
    assert missing == [], f"docs/api.md does not name these event types or scopes: {missing}"
