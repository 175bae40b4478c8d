"""Finding 13: `FLINT_ENV` defaulted to `development`, which allows loopback webhook and hook targets and
generates a signing key. Now `flint serve` without FLINT_ENV runs as production and refuses to start
without FLINT_SECRET_KEY; development is chosen explicitly and says so in its log."""
from __future__ import annotations

import os
import subprocess
import sys

import httpx

from support import ROOT, TEST_SECRET, free_port
from support.server import start_server, stop_server


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLINT_")}
    env.update(FLINT_DATABASE_URL=f"sqlite:///{tmp_path / 'prod.sqlite3'}", **extra)
    return env


def test_serve_without_flint_env_or_key_refuses_to_start(tmp_path):
    done = subprocess.run([sys.executable, "-m", "flint.cli", "serve", "--port", str(free_port())],
                          cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "FLINT_SECRET_KEY is required in production" in done.stderr
    assert not (tmp_path / "flint-dev-secret-key").exists()  # no key generated behind anyone's back


def test_serve_without_flint_env_is_production(tmp_path):
    port = free_port()
    log = open(tmp_path / "prod.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "flint.cli", "serve", "--port", str(port)], cwd=ROOT,
                               env=_env(tmp_path, FLINT_SECRET_KEY=TEST_SECRET), stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            process.poll()
            assert process.returncode is None, (tmp_path / "prod.log").read_text()
            import time
            time.sleep(0.1)
        created = subprocess.run([sys.executable, "-m", "flint.cli", "merchants", "create", "--name", "P",
                                  "--email", "p@prod.example", "--password-stdin", "--json"], input="long password\n",
                                 cwd=ROOT, env=_env(tmp_path, FLINT_SECRET_KEY=TEST_SECRET), capture_output=True,
                                 text=True, timeout=60)
        key = __import__("json").loads(created.stdout)["secret_key"]
        refused = httpx.post(f"{url}/v1/webhook_endpoints", headers={"Authorization": f"Bearer {key}"},
                             json={"url": "http://127.0.0.1:9/hook", "events": ["*"]}, timeout=10)
        assert refused.status_code == 400 and refused.json()["code"] in ("url_insecure", "url_not_allowed")
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
    assert "FLINT_ENV=development" not in (tmp_path / "prod.log").read_text()


def test_development_is_explicit_and_says_so(tmp_path):
    live = start_server(tmp_path)  # the tests' servers choose FLINT_ENV=development
    try:
        assert "FLINT_ENV=development" in live.logs()
    finally:
        stop_server(live)
