"""`.ci/run` is the README's test command, run on a clean clone, and it fails when a test
fails or when no test runs (pytest's exit code 5)."""
import os
import re
import shutil
import subprocess

import pytest

from support import ROOT


def test_ci_runs_the_readme_test_command():
    readme_top = (ROOT / "README.md").read_text().split("\n## ", 1)[0]
    test_command = re.search(r"^(make \S+)\s+# set everything up on a fresh machine and run every test", readme_top, re.M)
    assert test_command, "the README's first lines must give the test command"
    script = (ROOT / ".ci" / "run").read_text()
    commands = [line.strip() for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert test_command.group(1) in commands
    assert "set -euo pipefail" in commands  # a failing command fails CI
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


@pytest.fixture(scope="module")
def clean_clone(tmp_path_factory):
    """A fresh clone of the committed tree, as CI gets it."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("the CI test needs the git checkout")
    target = tmp_path_factory.mktemp("ci") / "flint"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(target)], check=True, timeout=120)
    return target


def _ci(clone, addopts, extra_file=None):
    if extra_file:
        (clone / "tests" / extra_file[0]).write_text(extra_file[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "VIRTUAL_ENV"))}
    env["PYTEST_ADDOPTS"] = addopts  # narrow the suite so the check stays quick; the command is unchanged
    return subprocess.run(["bash", ".ci/run"], cwd=clone, env=env, capture_output=True, text=True, timeout=900)


def test_ci_on_a_clean_clone_passes_fails_and_refuses_an_empty_run(clean_clone):
    passing = _ci(clean_clone, "tests/test_routes_meta.py")
    assert passing.returncode == 0, passing.stdout[-2000:] + passing.stderr[-2000:]
    assert re.search(r"\b[1-9][0-9]* passed\b", passing.stdout) and "failed" not in passing.stdout

    failing = _ci(clean_clone, "tests/test_zz_must_fail.py",
                  ("test_zz_must_fail.py", "def test_fails():\n    assert 1 + 1 == 3\n"))
    assert failing.returncode != 0
    assert "1 failed" in failing.stdout

    empty = _ci(clean_clone, "-k no_test_has_this_name_zz tests/test_routes_meta.py")
    assert empty.returncode != 0  # pytest's exit code 5 must not count as success
    assert "no tests ran" in empty.stdout or "deselected" in empty.stdout  # xdist's words, or pytest's own
