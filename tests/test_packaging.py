"""The package installs whole (issue 14, point 8): the built wheel, installed into a fresh virtualenv
outside the source tree, serves a hosted checkout page, the card frame and /widget/v1/flint.js from its
own package data, under the one import name `flint`, without the examples."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from support import ROOT, TEST_SECRET, free_port


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """(the wheel, the virtualenv) in a temporary folder: nothing from the source tree is importable."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp / "dist"),
                    str(ROOT)], check=True, capture_output=True, timeout=600)
    wheel = next((tmp / "dist").glob("flint_checkout-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True, timeout=120)
    subprocess.run([str(tmp / "venv" / "bin" / "pip"), "install", "--quiet", str(wheel)], check=True,
                   capture_output=True, timeout=900)
    return {"wheel": wheel, "venv": tmp / "venv", "home": tmp}


def _env(installed: dict, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLINT_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(FLINT_DATABASE_URL=f"sqlite:///{installed['home'] / 'flint.sqlite3'}", FLINT_SECRET_KEY=TEST_SECRET,
               FLINT_ENV="development", FLINT_LOG_LEVEL="WARNING", **extra)
    return env


def test_the_wheel_holds_flint_its_pages_and_its_widget_and_nothing_generic(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    top = {name.split("/")[0] for name in names if not name.startswith("flint_checkout-")}
    assert top == {"flint"}, top  # no `server`, no `examples` in site-packages
    for shipped in ("flint/hosted_pages/templates/checkout/page.html",
                    "flint/hosted_pages/translations/de/LC_MESSAGES/messages.po",
                    "flint/widget_dist/flint.js", "flint/widget_dist/frame.js",
                    "flint/db/migrations/0001_core.sql"):
        assert shipped in names, shipped
    python = installed["venv"] / "bin" / "python"
    where = subprocess.run([str(python), "-c", "import flint; print(flint.__file__)"], cwd=installed["home"],
                           env=_env(installed), capture_output=True, text=True, check=True).stdout
    assert "site-packages" in where and str(ROOT) not in where


def test_an_installed_flint_serves_pages_and_the_widget(installed):
    bin_ = installed["venv"] / "bin"
    env = _env(installed)
    created = subprocess.run([str(bin_ / "flint"), "merchants", "create", "--name", "Wheel Shop", "--email",
                              "wheel@shop.example", "--password-stdin", "--json"], input="a long password\n",
                             cwd=installed["home"], env=env, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["secret_key"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(installed["home"] / "serve.log", "wb")
    server = subprocess.Popen([str(bin_ / "flint"), "serve", "--port", str(port)], cwd=installed["home"],
                              env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, (installed["home"] / "serve.log").read_text()
            time.sleep(0.2)
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as api:
            session = api.post("/v1/checkout/sessions", json={
                "order": {"currency": "eur", "line_items": [{"name": "Tea", "quantity": 1, "unit_amount": 1250}]},
                "mode": "embedded", "success_url": "https://shop.example/thanks"}).json()
        page = httpx.get(session["url"], headers={"Accept-Language": "de"}, timeout=30)
        assert page.status_code == 200 and "Kartennummer" in page.text, page.text[:500]  # its catalogues too
        assert "default-src 'none'" in page.headers["content-security-policy"]
        frame = httpx.get(f"{url}/widget/v1/frame/{session['id']}", timeout=30)
        assert frame.status_code == 200 and "frame.js" in frame.text
        loader = httpx.get(f"{url}/widget/v1/flint.js", timeout=30)
        assert loader.status_code == 200 and loader.content == (ROOT / "widget" / "dist" / "flint.js").read_bytes()
        manifest = httpx.get(f"{url}/widget/v1/manifest.json", timeout=30).json()
        assert {f["path"] for f in manifest["files"]} >= {"/widget/v1/flint.js"}
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def test_the_demo_says_it_needs_the_source_checkout(installed):
    done = subprocess.run([str(installed["venv"] / "bin" / "flint"), "demo", "--port", str(free_port())],
                          cwd=installed["home"], env=_env(installed), capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "source checkout" in done.stderr and "Traceback" not in done.stderr
