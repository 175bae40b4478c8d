"""A real Flint for a merchant's test run: ``flint serve`` as its own process (its own process group) on a
free loopback port, with a fresh SQLite file in a temporary directory, in development mode, and one
merchant created for the run through the ``flint merchants create`` command, as an operator would.

Standard library and httpx only (both already Flint's); the process is stopped by ``stop()``, and by an
``atexit`` hook should the test run end without it (an interrupted session, a crashed fixture)."""
from __future__ import annotations

import atexit
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

# Every buyer in a browser test comes from 127.0.0.1: Flint's per-address attempt limit (docs/api.md 13)
# would refuse an ordinary suite after 30 payments. A test of that limit sets it lower (``env``).
DEFAULT_ENV = {"FLINT_ATTEMPTS_PER_ADDRESS": "100000"}
START_TIMEOUT = 30.0  # seconds for /healthz to answer once the process is started
STOP_TIMEOUT = 10.0  # seconds between SIGTERM (a graceful stop) and SIGKILL

_running: set[FlintServer] = set()
_running_lock = threading.Lock()


class FlintError(AssertionError):
    """Flint answered a kit call with an error (its problem+json detail is in the message), or did not start.
    An AssertionError, so pytest shows it as a test failure with its text rather than a crash."""


class Merchant(dict):
    """The merchant created for the run: a dict ``{id, secret_key, email, password}`` whose keys also read
    as attributes (``merchant["secret_key"]`` or ``merchant.secret_key``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class FlintServer:
    """One running ``flint serve``. ``url`` is its base URL (http://127.0.0.1:PORT), ``merchant`` the
    merchant created for it, ``home`` the directory holding its database and log."""

    def __init__(self, home: Path, *, env: dict[str, str] | None = None, name: str = "QA Shop",
                 email: str = "qa@example.com") -> None:
        self.home = Path(home)
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_path = self.home / "flint.log"
        self.url = ""
        self.merchant = Merchant()
        self.process: subprocess.Popen | None = None
        self._env = env or {}
        self._name, self._email = name, email
        # One key per server: the merchant command and the server must sign alike.
        self._key = secrets.token_urlsafe(32)

    # -- life ------------------------------------------------------------------------------------------

    def start(self) -> FlintServer:
        """Creates the merchant (which migrates the fresh database), then serves; returns once /healthz
        answers. Raises FlintError with the end of the log if Flint does not come up."""
        self.merchant = self._create_merchant()
        for attempt in range(3):  # a port taken between choosing and binding (another worker) is retried
            port = _free_port()
            self.url = f"http://127.0.0.1:{port}"
            self._spawn(["serve", "--host", "127.0.0.1", "--port", str(port)])
            if self._wait_ready():
                return self
            self.stop()
            if "address already in use" not in self.logs().lower() or attempt == 2:
                break
        raise FlintError(f"flint serve did not start ({self.log_path}):\n{self.logs()[-3000:]}")

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL after STOP_TIMEOUT; safe to call twice."""
        process, self.process = self.process, None
        with _running_lock:
            _running.discard(self)
        if process is None or process.poll() is not None:
            return
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def logs(self) -> str:
        """Everything the server has logged so far (JSON lines), to print when a test fails."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- the merchant's side -----------------------------------------------------------------------------

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx.Client on ``url`` with the merchant's secret key (close it, or use it in ``with``)."""
        headers = {"Authorization": f"Bearer {self.merchant['secret_key']}", **kwargs.pop("headers", {})}
        return httpx.Client(base_url=self.url, headers=headers, timeout=kwargs.pop("timeout", 30), **kwargs)

    def allow_origin(self, origin: str) -> list[str]:
        """Adds ``origin`` (scheme://host:port of the page embedding the widget) to the merchant's
        allowed_origins, keeping the others; returns the list Flint now holds."""
        with self.client() as api:
            current = _ok(api.get("/v1/merchant"))["allowed_origins"]
            if origin.rstrip("/") in current:
                return current
            return _ok(api.post("/v1/merchant", json={"allowed_origins": [*current, origin]}))["allowed_origins"]

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Moves the server's clock forward (POST /v1/test_helpers/advance_clock): session expiry, drop-off,
        recovery links and their emails, authorization expiry and webhook retries happen before it returns.
        Returns Flint's answer: ``{now, offset_seconds, swept, webhooks_delivered, mail_sent, ...}``."""
        with self.client() as api:
            return _ok(api.post("/v1/test_helpers/advance_clock", json={"seconds": seconds}))

    # -- inside ------------------------------------------------------------------------------------------

    def _environment(self) -> dict[str, str]:
        # Only this run's settings: a FLINT_* variable of the developer's shell (a production database
        # URL, FLINT_ENV=production, a Stripe key) must not reach the test server unless asked for.
        env = {name: value for name, value in os.environ.items() if not name.startswith("FLINT_")}
        env.update(DEFAULT_ENV)
        env.update(FLINT_ENV="development", FLINT_DATABASE_URL=f"sqlite:///{self.home / 'flint.sqlite3'}",
                   FLINT_SECRET_KEY=self._key)
        if self.url:
            env["FLINT_PUBLIC_URL"] = self.url
        env.update(self._env)
        return env

    def _create_merchant(self) -> Merchant:
        password = secrets.token_urlsafe(18)
        command = [sys.executable, "-m", "flint.cli", "merchants", "create", "--name", self._name,
                   "--email", self._email, "--password-stdin", "--json"]
        done = subprocess.run(command, check=False, input=password + "\n", capture_output=True, text=True,
                              cwd=self.home, env=self._environment(), timeout=START_TIMEOUT)
        if done.returncode != 0:
            raise FlintError(f"`flint merchants create` failed ({done.returncode}):\n{done.stderr[-3000:]}")
        created = json.loads(done.stdout.strip().splitlines()[-1])
        return Merchant(id=created["id"], secret_key=created["secret_key"], email=self._email, password=password)

    def _spawn(self, args: list[str]) -> None:
        with open(self.log_path, "ab") as log:
            # The death signal follows the thread that started the child: only the main thread's last.
            guarded = threading.current_thread() is threading.main_thread()
            command = ["-c", GUARDED, str(os.getpid())] if guarded else ["-m", "flint.cli"]
            self.process = subprocess.Popen(
                [sys.executable, *command, *args], cwd=self.home, env=self._environment(),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # Its own process group, so stop() reaches anything it starts (Uvicorn's workers) and a
                # Ctrl-C in the terminal reaches pytest alone, which then stops the server in order.
                start_new_session=True)
        with _running_lock:
            _running.add(self)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.alive():
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        return False

    def __repr__(self) -> str:
        return f"<FlintServer {self.url or 'not started'} merchant={self.merchant.get('id')}>"


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise FlintError(f"{response.request.method} {response.request.url.path}: {response.status_code} {response.text}")
    return response.json()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the group's id is the server's pid (start_new_session)
    except ProcessLookupError:
        pass


# How the server is started: ``python -c GUARDED <parent pid> serve ...``. On Linux it first asks for SIGTERM
# when the test process dies outright (SIGKILL, an OOM kill: no finalizer nor atexit runs then), then runs
# the ``flint`` command in the same process. Not preexec_fn: that runs Python between fork and exec, unsafe
# in a test process with threads.
GUARDED = """
import os, runpy, signal, sys
parent = int(sys.argv[1])
if sys.platform.startswith("linux"):
    import ctypes
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
if os.getppid() != parent:  # the test process died before that took effect
    sys.exit(1)
sys.argv = ["flint", *sys.argv[2:]]
runpy.run_module("flint.cli", run_name="__main__")
"""


@atexit.register
def _stop_all() -> None:
    with _running_lock:
        left = list(_running)
    for server in left:
        server.stop()
