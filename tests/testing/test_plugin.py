"""The QA kit's pytest plugin as a merchant's suite meets it: loaded from the installed package's ``pytest11``
entry point with no conftest, a test using ``flint_server`` passes, the server process is gone after a
session where a test failed, and under pytest-xdist each worker has a server of its own. Each case is a
real pytest run in a subprocess (pytester), in a directory outside this repository."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def merchant_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A directory with nothing of Flint's in it: no conftest, no pytest options, not inside another xdist
    run. Without the two plugins of Flint's own test tools a merchant's suite would not have (1.3 s a run)."""
    for name in [name for name in os.environ if name.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS"))]:
        monkeypatch.delenv(name)
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider -p no:schemathesis -p no:hypothesispytest\n")
    return pytester


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # Still there: a zombie only if nobody reaped it yet (its parent, the inner pytest, has exited).
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] == "Z"


def test_the_plugin_loads_from_the_entry_point_and_its_server_is_gone_after_a_failed_test(
        merchant_suite: pytest.Pytester):
    merchant_suite.makepyfile(test_shop="""
        import json
        import os
        import httpx

        def test_flint_is_up_with_its_merchant(request, flint_server):
            plugin = request.config.pluginmanager.get_plugin("flint")
            assert plugin.__name__ == "flint.testing.plugin"
            dists = {dist.metadata["name"] for _, dist in request.config.pluginmanager.list_plugin_distinfo()}
            assert "flint-checkout" in dists
            assert flint_server.pid != os.getpid() and flint_server.url.startswith("http://127.0.0.1:")
            assert httpx.get(flint_server.url + "/healthz").status_code == 200
            with flint_server.client() as api:
                assert api.get("/v1/merchant").json()["id"] == flint_server.merchant["id"]
            assert set(flint_server.merchant) == {"id", "secret_key", "email", "password"}

        def test_fails(flint_server):
            with open("server.json", "w") as out:
                json.dump({"pid": flint_server.pid}, out)
            assert False, "the merchant's test fails"
    """)
    result = merchant_suite.runpytest_subprocess("-q")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*flint server log*"])  # the failed test's report carries the log
    pid = json.loads((merchant_suite.path / "server.json").read_text())["pid"]
    assert gone(pid)


def test_two_xdist_workers_get_two_servers(merchant_suite: pytest.Pytester):
    merchant_suite.makepyfile(test_workers="""
        import json, os

        def test_which_server(flint_server, worker_id):
            with open(f"{worker_id}.json", "w") as out:
                json.dump({"url": flint_server.url, "pid": flint_server.pid, "merchant": flint_server.merchant["id"]}, out)
    """)
    result = merchant_suite.runpytest_subprocess("-q", "-n", "2", "--dist", "each")
    result.assert_outcomes(passed=2)
    seen = [json.loads((merchant_suite.path / f"gw{n}.json").read_text()) for n in (0, 1)]
    assert len({s["url"] for s in seen}) == 2 and len({s["pid"] for s in seen}) == 2
    assert len({s["merchant"] for s in seen}) == 2
    assert all(gone(s["pid"]) for s in seen)


def test_the_server_goes_when_the_test_run_is_killed_outright(merchant_suite: pytest.Pytester):
    """SIGKILL leaves no finalizer or atexit hook to run: the server asked Linux for SIGTERM on its parent's death."""
    merchant_suite.makepyfile(test_killed="""
        import json, os, signal

        def test_killed(flint_server):
            with open("server.json", "w") as out:
                json.dump({"pid": flint_server.pid}, out)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = merchant_suite.runpytest_subprocess("-q")
    assert result.ret == -signal.SIGKILL
    pid = json.loads((merchant_suite.path / "server.json").read_text())["pid"]
    deadline = time.monotonic() + 15
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(pid)


def test_loading_the_plugin_imports_neither_playwright_nor_flint():
    """What every pytest run pays for the plugin (Flint's own suite included): importing it and pytest."""
    probe = ("import sys; before = set(sys.modules); import flint.testing.plugin; "
             "print(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in ('playwright', 'httpx', 'flint')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['flint', 'flint.testing', 'flint.testing.plugin']"
