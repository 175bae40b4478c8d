async def test_healthz_and_a_paid_order(server, merchant):
    _, key = merchant
    async with server.async_client(key) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        created = await client.post("/v1/checkout/sessions", json={
            "order": {"currency": "usd", "line_items": [{"name": "Mug", "quantity": 2, "unit_amount": 1200}]},
            "mode": "embedded", "success_url": "https://shop.example/thanks"})
        assert created.status_code == 200, created.text
        session = created.json()
        paid = await client.post(f"/v1/checkout/sessions/{session['id']}/confirm",
                                 json={"card": {"number": "4242 4242 4242 4242", "exp_month": 12,
                                                "exp_year": 2034, "cvc": "123"}},
                                 headers={"Authorization": f"Bearer {session['client_token']}"})
        assert paid.status_code == 200, paid.text
        assert paid.json()["status"] == "succeeded"
        order = (await client.get(f"/v1/orders/{session['order_id']}")).json()
        assert order["status"] == "paid" and order["amount_paid"] == 2400
