"""PCI: after payments with every test card, neither the database files nor the server's
logs hold a full card number or a CVC."""
import json
import sqlite3
from pathlib import Path


TEST_CARDS = [
    "4242424242424242", "5555555555554444", "4000000000000002", "4000000000009995", "4000000000000069",
    "4000000000000127", "4000000000000119", "4000002760003184", "4000000000005126",
]
CVC = "913"  # distinctive, so a stray copy could be found


def _spaced(number: str) -> str:
    return " ".join(number[i:i + 4] for i in range(0, len(number), 4))


async def test_no_card_number_or_cvc_is_stored_or_logged(server, merchant):
    _, key = merchant
    async with server.async_client(key) as client:
        for number in TEST_CARDS:
            created = await client.post("/v1/checkout/sessions", json={
                "order": {"currency": "usd", "line_items": [{"name": "Tea", "quantity": 1, "unit_amount": 900}]},
                "mode": "hosted", "success_url": "https://shop.example/thanks"})
            session = created.json()
            buyer = {"Authorization": f"Bearer {session['client_token']}"}
            body = {"card": {"number": _spaced(number), "exp_month": 11, "exp_year": 2033, "cvc": CVC}}
            paid = await client.post(f"/v1/checkout/sessions/{session['id']}/confirm", json=body, headers=buyer)
            assert paid.status_code in (200, 402), paid.text
            assert number not in paid.text and CVC not in paid.text.replace(session["id"], "")
            if paid.status_code == 200 and paid.json()["status"] == "requires_action":
                done = await client.post(f"/v1/checkout/sessions/{session['id']}/challenge",
                                         json={"payment": paid.json()["id"], "result": "approve"}, headers=buyer)
                assert done.json()["status"] == "succeeded"
            if number == "4000000000005126":
                refund = await client.post("/v1/refunds", json={"order": session["order_id"]})
                assert refund.json()["status"] == "failed"
        # A rejected card (bad Luhn) must not leak through the error either.
        bad = await client.post(f"/v1/checkout/sessions/{session['id']}/confirm",
                                json={"card": {"number": "4242424242424241", "exp_month": 1, "exp_year": 2030,
                                               "cvc": CVC}}, headers=buyer)
        assert "4242424242424241" not in bad.text

    db_path = Path(server.db_url[len("sqlite:///"):])
    raw = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    logs = server.logs()
    for number in TEST_CARDS + ["4242424242424241"]:
        for form in (number, _spaced(number)):
            assert form.encode() not in raw, f"{form} in the database files"
            assert form not in logs, f"{form} in the logs"
    # The CVC: no stored value equals it and no log line names a cvc field.
    with sqlite3.connect(db_path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):
                for value in row:
                    assert str(value) != CVC
                    if isinstance(value, str) and value.startswith("{"):
                        assert '"cvc"' not in value and '"number"' not in value
    assert '"cvc"' not in logs and "cvc=" not in logs
    assert len([line for line in logs.splitlines() if line.startswith("{")]) > 10  # the logs were really captured
    for line in logs.splitlines():
        if line.startswith("{"):
            json.loads(line)  # structured, one JSON object per line
