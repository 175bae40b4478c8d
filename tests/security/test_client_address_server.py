"""The client address a buyer's attempts count against is the socket's peer unless the request came
through a proxy listed in FLINT_TRUSTED_PROXIES (docs/security.md). The ASGI server must not decide it
first: Uvicorn, which `flint serve` runs on since issue 19, believes any X-Forwarded-For sent from
loopback by default. A card tester sending a new X-Forwarded-For with each attempt would then escape the
per-address limit."""
from __future__ import annotations

import httpx
import pytest

from support.server import start_server, stop_server

PER_ADDRESS = 2
CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}
ORDER = {"currency": "usd", "line_items": [{"name": "Thing", "quantity": 1, "unit_amount": 1000}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """flint serve with no trusted proxy and a low per-address limit."""
    live = start_server(tmp_path_factory.mktemp("no_proxy"), extra_env={"FLINT_ATTEMPTS_PER_ADDRESS": str(PER_ADDRESS)})
    yield live
    stop_server(live)


def test_a_forwarded_for_header_from_an_untrusted_peer_does_not_change_whose_attempt_it_is(server, merchant):
    _, merchant_key = merchant  # tests/conftest.py: a merchant in this module's server's database
    statuses = []
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {merchant_key}"}) as merchant:
        for n in range(PER_ADDRESS + 1):
            session = merchant.post("/v1/checkout/sessions", json={
                "order": ORDER, "mode": "embedded", "success_url": "https://shop.example/thanks"}).json()
            with httpx.Client(base_url=server.url,
                              headers={"Authorization": f"Bearer {session['client_token']}"}) as buyer:
                answer = buyer.post(f"/v1/checkout/sessions/{session['id']}/confirm", json={"card": CARD},
                                    headers={"X-Forwarded-For": f"198.18.0.{n + 1}"})  # a new "address" each time
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert answer.json()["code"] == "too_many_attempts"
    # Every attempt came from 127.0.0.1, whatever the header said: the limit holds.
    assert statuses == [200] * PER_ADDRESS + [429]
