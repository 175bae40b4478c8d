"""The QA kit as a merchant gets it (issue 20, docs/testing.md): Flint's built wheel installed into a fresh
virtualenv outside the source tree, with pytest, Playwright and pytest-playwright and nothing else; a new
merchant project written there from the guide's own code (a tiny shop server whose page carries the widget's
script tag, its conftest.py, and a test file that uses only the kit: ``flint_server``, ``flint_webhooks``,
``FlintCheckout``); pytest run in it as its own process. Green, including a drop-off recovered through its
payment link after ``advance_clock`` and verified webhooks: every run of Flint's suite shows the installed
kit working, not the source tree's, and the guide's ten minutes holding."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from support import ROOT
from support.browser import CHROMIUM, CHROMIUM_ARGS

GUIDE = ROOT / "docs" / "testing.md"
# The merchant's browser: this machine's Chromium, after the guide's own conftest.py (a later fixture of the
# same name wins), with every flag Flint's own browser tests use.
BROWSER = """

@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": %r, "args": %r}
"""


def guide_files() -> dict[str, str]:
    """The merchant's project exactly as docs/testing.md writes it: its shop.py, conftest.py and
    test_checkout.py from "Ten minutes to a green test", and the recovery test of "Drop-off and recovery"
    added to the test file. The guide is what is tested: a change that breaks it fails here."""
    blocks = re.findall(r"^```python\n(.*?)^```", GUIDE.read_text(), re.DOTALL | re.MULTILINE)
    def one(marker: str) -> str:
        found = [block for block in blocks if marker in block]
        assert len(found) == 1, f"docs/testing.md: {len(found)} python blocks hold {marker!r}"
        return found[0]
    return {"shop.py": one("ThreadingHTTPServer"),
            "conftest.py": one("def shop(flint_server)") + BROWSER % (CHROMIUM, CHROMIUM_ARGS),
            "test_checkout.py": one("def test_a_buyer_pays(") + "\n\n" + one("def test_a_buyer_who_left")}


def _run(args: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    assert done.returncode == 0, f"{' '.join(args)}: {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def test_a_merchant_tests_their_own_page_with_the_installed_kit(tmp_path_factory: pytest.TempPathFactory):
    started = time.monotonic()
    home = tmp_path_factory.mktemp("qa-kit-wheel")
    assert ROOT not in home.parents  # outside the source tree: nothing of it is importable there
    # Built from a copy: setuptools builds in the source folder (build/, *.egg-info), and tests/test_packaging.py
    # may be building the same tree on another pytest-xdist worker.
    source = home / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "node_modules", "build", "*.egg-info", "__pycache__", ".pytest_cache", "test-results", "var"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(home / "dist"), str(source)],
         timeout=300)
    wheel = next((home / "dist").glob("flint_checkout-*.whl"))
    _run([sys.executable, "-m", "venv", str(home / "venv")], timeout=120)
    python = home / "venv" / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-compile", str(wheel), "pytest", "playwright",
          "pytest-playwright"], timeout=600)
    installed = time.monotonic()

    project = home / "teashop"
    project.mkdir()
    for name, text in guide_files().items():
        (project / name).write_text(text)
    # Only what a merchant's shell has: none of Flint's settings, no path into this checkout.
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("FLINT_", "PYTHON", "VIRTUAL_ENV", "PYTEST_", "SHOP_"))}
    env["PATH"] = f"{home / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    done = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error::ResourceWarning"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    # All three ran and passed (pytest-playwright's own deprecation warning under pytest 9 may come too).
    assert re.search(r"^3 passed(, 1 warning)? in ", output, re.MULTILINE), output[-3000:]
    # The kit the run loaded was the installed wheel's.
    where = _run([str(python), "-c", "import flint.testing; print(flint.testing.__file__)"], timeout=60,
                 cwd=project, env=env).stdout
    assert str(home / "venv") in where and str(ROOT) not in where, where
    print(f"wheel and virtualenv: {installed - started:.1f} s; the merchant's suite: {time.monotonic() - installed:.1f} s")
