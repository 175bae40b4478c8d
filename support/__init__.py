"""What the tests, the browser tests and the benchmark share, owned by none of them (and not shipped in
the wheel): a live ``flint serve`` (``support.server``), a webhook and hook receiver
(``support.receiver``), factories over Flint's services (``support.factories``), the OAuth install
as a merchant does it (``support.oauth``), the merchant's shop on another origin (``support.shop``) and
the browser's settings (``support.browser``).

This module itself is standard library only: the benchmark's load-generator processes import it.
"""
from __future__ import annotations

import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_SECRET = "test-secret-key-for-flint-tests-only"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
