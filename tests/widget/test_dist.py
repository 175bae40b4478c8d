"""widget/dist is committed, so a wheel serves /widget/v1/flint.js without a Node build: it must be
exactly what widget/src builds to with the repository's esbuild (widget/node_modules, from `npm ci`),
and within the size goals a buyer's browser downloads."""
from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
WIDGET = ROOT / "widget"
DIST = WIDGET / "dist"
FILES = ["flint.js", "frame.js"]
GZIP_LIMITS = {"flint.js": 4 * 1024, "frame.js": 15 * 1024}  # frame.js alone; with its page, see test_widget_server
SOURCES = ["widget/src", "widget/build.mjs", "widget/package.json", "widget/package-lock.json"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (WIDGET / "node_modules" / "esbuild").is_dir() or shutil.which("node") is None:
        pytest.fail("the widget's esbuild is missing: run `npm ci --prefix widget` (make test does)", pytrace=False)
    out = tmp_path_factory.mktemp("widget-dist")
    subprocess.run(["node", "build.mjs", "--outdir", str(out)], cwd=WIDGET, check=True, capture_output=True, timeout=120)
    return out


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, timeout=60, check=False)


def test_the_dist_in_the_tree_is_what_the_sources_build(built):
    assert sorted(p.name for p in built.iterdir()) == FILES
    assert sorted(p.name for p in DIST.iterdir()) == FILES
    for name in FILES:
        assert (built / name).read_bytes() == (DIST / name).read_bytes(), \
            f"widget/dist/{name} is not what widget/src builds to: run `make widget` and commit widget/dist"


def test_the_committed_dist_is_what_the_committed_sources_build(built):
    """`make test` rebuilds widget/dist before the tests, which would hide a stale commit from the test
    above: so, wherever the sources are as committed, the committed dist must match their build too."""
    if _git("rev-parse", "--is-inside-work-tree").returncode != 0:
        pytest.fail("not a git checkout: this check needs the repository's history", pytrace=False)
    if _git("diff", "--quiet", "HEAD", "--", *SOURCES).returncode != 0:
        return  # the sources are being edited: only the tree's own build can be compared (above)
    for name in FILES:
        committed = _git("show", f"HEAD:widget/dist/{name}")
        assert committed.returncode == 0, f"widget/dist/{name} is not committed"
        assert committed.stdout == (built / name).read_bytes(), \
            f"the committed widget/dist/{name} is stale: rebuild it (`make widget`) and commit it with widget/src"


def test_the_builds_are_within_their_size_goals(built):
    for name in FILES:
        zipped = len(gzip.compress((built / name).read_bytes(), compresslevel=9))
        assert zipped <= GZIP_LIMITS[name], f"{name}: {zipped} bytes gzipped, the goal is {GZIP_LIMITS[name]}"


def test_the_build_is_repeatable(built, tmp_path):
    # Another folder, another working directory: no path, time or order may leak into the output.
    subprocess.run(["node", str(WIDGET / "build.mjs"), "--outdir", "again"], cwd=tmp_path, check=True,
                   capture_output=True, timeout=120)
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (built / name).read_bytes()
