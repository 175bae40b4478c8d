"""localstripe, the runnable Python imitation of Stripe's API, as a separate process on loopback: the Stripe
connector's tests talk to it (tests/processors/conftest.py) and the benchmark measures it as Flint's peer
(bench/peer.py). A test-time tool, GPL-3.0: never imported by Flint, never shipped with it."""
from __future__ import annotations

import base64
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

# localstripe's own start() listens on '::' (every interface); this starts the same app on loopback only,
# on a port the OS picks, and prints it for the parent. It runs in its own interpreter.
LAUNCH = """
import socket
from aiohttp import web
from localstripe.server import app
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
web.run_app(app, sock=sock, print=None, access_log=None)
"""


class LocalStripe:
    """Started on construction (in ``folder``, its log in ``localstripe.log`` there); ``url``, ``port``,
    ``stop()``. Ready once ``GET /v1/balance`` answers with ``secret_key``."""

    def __init__(self, folder: Path, secret_key: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.secret_key = secret_key
        self.log_path = folder / "localstripe.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-c", LAUNCH], cwd=folder, stdout=subprocess.PIPE,
                                            stderr=log, text=True)
        port = self.process.stdout.readline().strip()
        if not port.isdigit():
            self.stop()
            raise RuntimeError(f"localstripe did not start:\n{self.log()[-2000:]}")
        self.port = int(port)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while not self._answers():
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"localstripe did not answer:\n{self.log()[-2000:]}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        auth = base64.b64encode(f"{self.secret_key}:".encode()).decode()
        request = urllib.request.Request(f"{self.url}/v1/balance", headers={"Authorization": f"Basic {auth}"})
        try:
            with urllib.request.urlopen(request, timeout=1) as answer:
                return answer.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
