"""A real ``flint serve`` process on a free loopback port, with its own database and its log in a file."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from flint.config import Config

from support import ROOT, TEST_SECRET, free_port


@dataclass
class LiveServer:
    url: str
    db_url: str
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen = field(repr=False)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def client(self, token: str | None = None, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)

    def async_client(self, token: str | None = None, **kwargs) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        limits = httpx.Limits(max_connections=100)
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, limits=limits, **kwargs)

    def alive(self) -> bool:
        return self.process.poll() is None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def runtime_config(self) -> Config:
        """A Runtime's configuration for this server's database and secret (to seed or look inside)."""
        return Config(database_url=self.db_url, secret_keys=(self.env["FLINT_SECRET_KEY"],), env="development",
                      public_url=self.url)


def launch_server(tmp: Path, extra_env: dict[str, str] | None = None, db_url: str | None = None,
                  args: tuple[str, ...] = (), command: list[str] | None = None) -> LiveServer:
    """Starts ``flint serve`` (plus ``args``) on a free loopback port without waiting for it; ``command``
    replaces ``python -m flint.cli serve`` by a wrapper that serves the same way (the bench's profiled
    serve)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db_url = db_url or f"sqlite:///{tmp / 'flint.sqlite3'}"
    env = dict(os.environ, FLINT_DATABASE_URL=db_url, FLINT_SECRET_KEY=TEST_SECRET, FLINT_PUBLIC_URL=url,
               FLINT_ENV="development", FLINT_SWEEP_INTERVAL="0.5", FLINT_LOG_LEVEL="INFO")
    # Every test buyer comes from 127.0.0.1: the per-address attempt limit (docs/api.md 13) would soon refuse
    # ordinary tests. Its own tests lower it again through the environment or extra_env.
    env.setdefault("FLINT_ATTEMPTS_PER_ADDRESS", os.environ.get("FLINT_ATTEMPTS_PER_ADDRESS", "100000"))
    env.update(extra_env or {})
    log_path = tmp / f"server-{port}.log"
    log = open(log_path, "wb")
    program = command or [sys.executable, "-m", "flint.cli", "serve"]
    process = subprocess.Popen([*program, "--host", "127.0.0.1", "--port", str(port), *args],
                               cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return LiveServer(url=url, db_url=db_url, log_path=log_path, env=env, process=process)


def wait_ready(server: LiveServer, ready_path: str = "/healthz", deadline: float | None = None) -> None:
    """Returns once ``ready_path`` answers 200; kills the server and raises with its log if it exits or
    ``deadline`` (monotonic; default 30 s from now) passes first."""
    deadline = deadline or time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{server.url}{ready_path}", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if server.process.poll() is not None or time.monotonic() > deadline:
            server.process.kill()
            server.process.wait()
            raise RuntimeError(f"flint serve did not start:\n{server.logs()[-3000:]}")
        time.sleep(0.1)


def start_server(tmp: Path, extra_env: dict[str, str] | None = None, db_url: str | None = None,
                 args: tuple[str, ...] = (), ready_path: str = "/healthz") -> LiveServer:
    """``flint serve`` (plus ``args``) on a free loopback port, once ``ready_path`` answers 200."""
    server = launch_server(tmp, extra_env, db_url, args)
    wait_ready(server, ready_path)
    return server


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM (a graceful stop), then SIGKILL after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_server(server: LiveServer) -> None:
    stop_process(server.process)
