"""Flint as an app developer meets it through an SDK: a client generated from the live server's
/v1/openapi.json by openapi-python-client (offline, from the saved document), imported from a
temporary directory, pays a checkout, refunds it and reads what happened, with the generated
functions and classes named after the API (create_order, Order), errors parsed as Problem.

Every object the client parses is checked whole: a field the server sends but the document does not
declare lands in the generated model's ``additional_properties`` instead of a typed attribute, and
a declared field the server leaves out fails the parse; the second test walks every resource so each
response model meets a real answer."""
from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import httpx
import pytest
from openapi_python_client.strings import snake_case

from flint.merchants import service as merchants

from support.oauth import PASSWORD, REDIRECT, install
from support.receiver import Receiver
from support.server import LiveServer

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
CARD = {"number": "4242 4242 4242 4242", "exp_month": 12, "exp_year": 2034, "cvc": "123"}


class SDK:
    """The generated package, imported under a name of its own."""

    def __init__(self, name: str, root: Path, base_url: str) -> None:
        self.name, self.root, self.base_url = name, root, base_url
        self.models = importlib.import_module(f"{name}.models")
        self.errors = importlib.import_module(f"{name}.errors")
        self._client = importlib.import_module(f"{name}.client")

    def client(self, token: str):
        # Unexpected statuses raise instead of parsing as None: every answer here is documented.
        return self._client.AuthenticatedClient(base_url=self.base_url, token=token, raise_on_unexpected_status=True)

    def __getattr__(self, operation: str) -> ModuleType:
        """An operation's module by its generated name, wherever its tag put it (orders.create_order)."""
        found = list(self.root.glob(f"api/*/{operation}.py"))
        assert len(found) == 1, f"no generated function named {operation}"
        return importlib.import_module(f"{self.name}.api.{found[0].parent.name}.{operation}")


@pytest.fixture(scope="module")
def sdk(server: LiveServer, tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("sdk")
    document = workdir / "openapi.json"
    document.write_text(httpx.get(f"{server.url}/v1/openapi.json", timeout=30).text)
    config = workdir / "config.yaml"
    config.write_text("package_name_override: flint_client\npost_hooks: []\n")  # no formatter to look for
    root = workdir / "flint_client"
    # Offline: any network access would go to a proxy that is not there.
    env = dict(os.environ, HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="")
    done = subprocess.run([str(GENERATOR), "generate", "--path", str(document), "--output-path", str(root),
                           "--meta", "none", "--config", str(config), "--fail-on-warning"],
                          cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    name = f"flint_client_{secrets.token_hex(4)}"
    spec = importlib.util.spec_from_file_location(name, root / "__init__.py", submodule_search_locations=[str(root)])
    assert spec and spec.loader
    sys.modules[name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules[name])
    yield SDK(name, root, server.url)
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


@pytest.fixture
async def connect(sdk: SDK):
    """``connect(token)``: an AuthenticatedClient for this test, its connections closed at the end."""
    made = []

    def connect(token: str):
        made.append(sdk.client(token))
        return made[-1]
    yield connect
    for client in made:
        await client.get_async_httpx_client().aclose()


def unknown_fields(value: Any, where: str = "") -> list[str]:
    """What the server sent that a generated model has no attribute for (kept aside, untyped)."""
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in unknown_fields(item, f"{where}[{i}]")]
    if not attrs.has(type(value)):
        return []
    declared = [f.name for f in attrs.fields(type(value)) if f.name != "additional_properties"]
    if not declared:
        return []  # a free-form object (metadata, event data, messages): its keys are the data
    found = [f"{where}.{key}" for key in getattr(value, "additional_properties", {})]
    for name in declared:
        found += unknown_fields(getattr(value, name), f"{where}.{name}")
    return found


def whole(value: Any, cls: type) -> Any:
    assert isinstance(value, cls), value
    assert unknown_fields(value, cls.__name__) == [], "fields the document does not declare"
    return value


def test_the_generated_names_are_the_apis(server: LiveServer, sdk: SDK):
    document = httpx.get(f"{server.url}/v1/openapi.json", timeout=30).json()
    ids = {(method, path): op.get("operationId") for path, item in document["paths"].items()
           for method, op in item.items()}
    assert [key for key, i in ids.items() if not i] == [], "operations an SDK would name after their path"
    functions = {path.stem for path in sdk.root.glob("api/*/*.py")} - {"__init__"}
    assert functions == {snake_case(i) for i in ids.values()}
    assert {"create_order", "retrieve_order", "confirm_checkout_session", "create_refund",
            "list_order_events"} <= functions
    assert (sdk.root / "api" / "orders" / "create_order.py").exists()
    assert (sdk.root / "api" / "checkout_sessions" / "confirm_checkout_session.py").exists()
    for cls in ("Order", "CheckoutSession", "Problem", "PaymentProblem", "Payment", "Refund", "EventList",
                "CreateOrderRequest", "ConfirmCheckoutSessionRequest", "CardDetails"):
        assert isinstance(getattr(sdk.models, cls), type), cls
    # No name made from a handler (get_get_order, PostPostOrderOrderFields) or inlined per operation.
    generated = [path.stem for path in sdk.root.rglob("*.py")]
    assert not [n for n in generated if re.match(r"(get|post|delete)_(get|post|delete)_", n)], generated
    assert not [n for n in generated if re.search(r"_out(_|$)|order_fields", n)], generated


async def test_a_paid_checkout_through_the_generated_client(server: LiveServer, merchant, sdk: SDK, connect):
    _, key = merchant
    m = sdk.models
    shop = connect(key)
    order = whole(await sdk.create_order.asyncio(client=shop, body=m.CreateOrderRequest(
        currency=m.CreateOrderRequestCurrency.USD, reference="SDK-1",
        line_items=[m.CreateOrderLineItem(name="Mug", quantity=2, unit_amount=1200)])), m.Order)
    assert order.status == m.OrderStatus.OPEN and order.amount_total == 2400
    assert order.line_items[0].amount_total == 2400 and order.created_by.type_ == m.CreatedByType.MERCHANT

    session = whole(await sdk.create_checkout_session.asyncio(client=shop, body=m.CreateCheckoutSessionRequest(
        order=order.id, mode=m.CreateCheckoutSessionRequestMode.EMBEDDED, success_url="https://shop.example/thanks",
        recovery=m.CreateCheckoutSessionRecovery(enabled=True))), m.CheckoutSession)
    assert session.status == m.CheckoutSessionStatus.OPEN and session.client_token
    assert session.recovery.enabled and session.recovery.dropped_off_at is None

    # The buyer's page, with the session's client_token.
    buyer = connect(session.client_token)
    view = whole(await sdk.retrieve_client_session.asyncio(client=buyer), m.ClientSession)
    assert view.payable and view.amount_total == 2400 and view.unavailable is None
    paid = whole(await sdk.confirm_checkout_session.asyncio(
        session.id, client=buyer, idempotency_key=f"pay-{session.id}",
        body=m.ConfirmCheckoutSessionRequest(card=m.CardDetails(**CARD))), m.PaymentConfirmation)
    assert paid.status == m.PaymentConfirmationStatus.SUCCEEDED and paid.next_action is None
    assert paid.card.last4 == "4242" and paid.amount == 2400 and paid.checkout_session_id == session.id

    order = whole(await sdk.retrieve_order.asyncio(order.id, client=shop), m.Order)
    assert order.status == m.OrderStatus.PAID and order.amount_paid == 2400
    events = whole(await sdk.list_order_events.asyncio(order.id, client=shop), m.EventList)
    types = [event.type_ for event in events.data]
    assert {"order.created", "checkout.session.created", "payment.succeeded", "order.paid"} <= set(types), types
    assert [event.sequence for event in events.data] == sorted(event.sequence for event in events.data)
    assert whole(await sdk.retrieve_checkout_session.asyncio(session.id, client=shop),
                 m.CheckoutSession).status == m.CheckoutSessionStatus.COMPLETE

    refund = whole(await sdk.create_refund.asyncio(client=shop, body=m.CreateRefundRequest(
        payment=paid.id, amount=400, reason=m.CreateRefundRequestReasonType0.REQUESTED_BY_CUSTOMER)), m.Refund)
    assert refund.status == m.RefundStatus.SUCCEEDED and refund.amount == 400 and refund.order_id == order.id
    order = whole(await sdk.retrieve_order.asyncio(order.id, client=shop), m.Order)
    assert order.status == m.OrderStatus.PARTIALLY_REFUNDED and order.amount_refundable == 2000

    # Errors parse as problems: the status, the stable code, the request id to quote.
    missing = await sdk.retrieve_order.asyncio_detailed("ord_doesnotexist", client=shop)
    problem = whole(missing.parsed, m.Problem)
    assert missing.status_code == 404 and problem.status == 404 and problem.code == "order_not_found"
    assert problem.request_id.startswith("req_")
    refused = await sdk.create_refund.asyncio_detailed(client=shop, body=m.CreateRefundRequest(payment=paid.id,
                                                                                                amount=5000))
    problem = whole(refused.parsed, m.Problem)
    assert refused.status_code == 400 and problem.code == "refund_exceeds_refundable" and problem.param == "amount"

    # A decline is a 402 whose problem carries the failed payment, typed.
    inline = whole(await sdk.create_checkout_session.asyncio(client=shop, body=m.CreateCheckoutSessionRequest(
        order=m.CreateOrderRequest(currency=m.CreateOrderRequestCurrency.EUR,
                                   line_items=[m.CreateOrderLineItem(name="Tea", quantity=1, unit_amount=900)]),
        mode=m.CreateCheckoutSessionRequestMode.HOSTED, success_url="https://shop.example/thanks")),
        m.CheckoutSession)
    declined = await sdk.confirm_checkout_session.asyncio_detailed(
        inline.id, client=connect(inline.client_token),
        body=m.ConfirmCheckoutSessionRequest(card=m.CardDetails(**dict(CARD, number="4000 0000 0000 0002"))))
    problem = whole(declined.parsed, m.PaymentProblem)
    assert declined.status_code == 402 and problem.code == "card_declined"
    assert problem.payment.status == m.PaymentStatus.FAILED and problem.payment.failure_code == "card_declined"


@pytest.fixture
def receiver():
    running = Receiver().start()
    yield running
    running.stop()


async def test_every_resource_parses_whole_through_the_generated_client(server: LiveServer, server_rt, merchant,
                                                                        sdk: SDK, connect, receiver: Receiver):
    _, key = merchant
    m = sdk.models
    me = connect(key)

    # The merchant and its keys.
    whole(await sdk.retrieve_merchant.asyncio(client=me), m.Merchant)
    updated = whole(await sdk.update_merchant.asyncio(client=me, body=m.UpdateMerchantRequest(
        allowed_origins=["https://shop.example"], brand_color="#112233")), m.Merchant)
    assert updated.brand_color == "#112233"
    spare = whole(await sdk.create_api_key.asyncio(client=me), m.ApiKey)
    assert spare.secret_key
    whole(await sdk.list_api_keys.asyncio(client=me), m.ApiKeyList)
    assert whole(await sdk.delete_api_key.asyncio(spare.id, client=me), m.ApiKey).revoked_at

    # A webhook endpoint, its delivery and the delivery's attempts.
    endpoint = whole(await sdk.create_webhook_endpoint.asyncio(client=me, body=m.CreateWebhookEndpointRequest(
        url=receiver.script("/events"), events=["order.*"])), m.WebhookEndpoint)
    assert endpoint.secret
    order = whole(await sdk.create_order.asyncio(client=me, body=m.CreateOrderRequest(
        currency=m.CreateOrderRequestCurrency.USD, line_items=[m.CreateOrderLineItem(name="Cup", quantity=1,
                                                                                        unit_amount=500)])), m.Order)
    receiver.wait_for("/events", 1)
    whole(await sdk.list_webhook_endpoints.asyncio(client=me), m.WebhookEndpointList)
    whole(await sdk.retrieve_webhook_endpoint.asyncio(endpoint.id, client=me), m.WebhookEndpoint)
    whole(await sdk.update_webhook_endpoint.asyncio(endpoint.id, client=me, body=m.UpdateWebhookEndpointRequest(
        description="the shop's events")), m.WebhookEndpoint)
    assert whole(await sdk.rotate_webhook_endpoint_secret.asyncio(endpoint.id, client=me), m.WebhookEndpoint).secret
    deliveries = whole(await sdk.list_webhook_deliveries.asyncio(endpoint.id, client=me), m.WebhookDeliveryList)
    delivery = deliveries.data[0]
    attempts = None
    for _ in range(100):  # the attempt is written once the receiver's answer is read
        attempts = whole(await sdk.list_webhook_delivery_attempts.asyncio(delivery.id, client=me),
                         m.WebhookAttemptList)
        if attempts.data:
            break
        await asyncio.sleep(0.05)
    assert attempts and attempts.data[0].status_code == 200
    whole(await sdk.retrieve_webhook_delivery.asyncio(delivery.id, client=me), m.WebhookDelivery)
    whole(await sdk.retry_webhook_delivery.asyncio(delivery.id, client=me), m.WebhookDelivery)
    whole(await sdk.list_events.asyncio(client=me), m.EventList)
    whole(await sdk.retrieve_event.asyncio(delivery.event_id, client=me), m.Event)

    # Payment links and the recovery summary; canceling an order.
    link = whole(await sdk.create_payment_link.asyncio(client=me, body=m.CreatePaymentLinkRequest(order=order.id)),
                 m.PaymentLink)
    whole(await sdk.list_payment_links.asyncio(client=me, order=order.id), m.PaymentLinkList)
    whole(await sdk.retrieve_payment_link.asyncio(link.id, client=me), m.PaymentLink)
    assert not whole(await sdk.deactivate_payment_link.asyncio(link.id, client=me), m.PaymentLink).active
    whole(await sdk.retrieve_recovery_summary.asyncio(client=me), m.RecoverySummary)
    session = whole(await sdk.create_checkout_session.asyncio(client=me, body=m.CreateCheckoutSessionRequest(
        order=order.id, mode=m.CreateCheckoutSessionRequestMode.EMBEDDED, success_url="https://shop.example/ok")),
        m.CheckoutSession)
    buyer = connect(session.client_token)
    timeout = m.ReportCheckoutSessionFallbackRequestReason.TIMEOUT
    whole(await sdk.report_checkout_session_fallback.asyncio(
        session.id, client=buyer, body=m.ReportCheckoutSessionFallbackRequest(reason=timeout)), m.ClientSession)
    whole(await sdk.send_checkout_session_beacon.asyncio(
        session.id, client=buyer, body=m.SendCheckoutSessionBeaconRequest(type_="left")),
        m.CheckoutSessionBeacon)
    fell_back = whole(await sdk.retrieve_checkout_session.asyncio(session.id, client=me), m.CheckoutSession)
    assert fell_back.fallback.reason == m.CheckoutSessionFallbackReason.TIMEOUT
    whole(await sdk.expire_checkout_session.asyncio(session.id, client=me), m.CheckoutSession)
    whole(await sdk.list_checkout_sessions.asyncio(client=me), m.CheckoutSessionList)
    assert whole(await sdk.cancel_order.asyncio(order.id, client=me), m.Order).status == m.OrderStatus.CANCELED
    whole(await sdk.list_orders.asyncio(client=me), m.OrderList)

    # A partner app of this merchant, with a hook and webhooks.
    app = whole(await sdk.create_app.asyncio(client=me, body=m.CreateAppRequest(
        name="Loyalty Points", redirect_uris=[REDIRECT],
        scopes=[m.CreateAppRequestScopesItem.ORDERSREAD, m.CreateAppRequestScopesItem.PAYMENTSREAD],
        webhook_url=receiver.script("/app-events"), webhook_events=["order.*"],
        hook_url=receiver.script("/hook", body=json.dumps({"actions": [
            {"type": "annotate", "data": {"points": 12}}]}).encode()),
        hooks=[m.CreateAppRequestHooksItem.CHECKOUT_BEFORE_PAYMENT])), m.App)
    assert app.client_secret and app.webhook_secret
    whole(await sdk.list_apps.asyncio(client=me), m.AppList)
    whole(await sdk.retrieve_app.asyncio(app.id, client=me), m.App)
    client_secret = whole(await sdk.rotate_app_secret.asyncio(app.id, client=me), m.App).client_secret
    whole(await sdk.rotate_app_webhook_secret.asyncio(app.id, client=me), m.App)

    # A shop installs it; a payment there asks the app's hook.
    shop, shop_key = await merchants.create_merchant(server_rt, name="Acme Coffee", password=PASSWORD,
                                                     email=f"owner{secrets.token_hex(4)}@acme.example")
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30) as browser:
        await install(server, browser, app, client_secret, shop.email)
    owner = connect(shop_key)
    installations = whole(await sdk.list_installations.asyncio(client=owner), m.InstallationList)
    installation = installations.data[0]
    assert installation.app_id == app.id and installation.status == m.InstallationStatus.ACTIVE
    checkout = whole(await sdk.create_checkout_session.asyncio(client=owner, body=m.CreateCheckoutSessionRequest(
        order=m.CreateOrderRequest(currency=m.CreateOrderRequestCurrency.USD,
                                   line_items=[m.CreateOrderLineItem(name="Beans", quantity=1, unit_amount=1800)]),
        mode=m.CreateCheckoutSessionRequestMode.EMBEDDED, success_url="https://acme.example/thanks")),
        m.CheckoutSession)
    # The 3-D Secure card: requires_action, then the buyer approves the challenge.
    challenged = whole(await sdk.confirm_checkout_session.asyncio(
        checkout.id, client=connect(checkout.client_token),
        body=m.ConfirmCheckoutSessionRequest(card=m.CardDetails(**dict(CARD, number="4000 0027 6000 3184")))),
        m.PaymentConfirmation)
    assert challenged.status == m.PaymentConfirmationStatus.REQUIRES_ACTION
    assert challenged.next_action.payment_id == challenged.id
    approved = whole(await sdk.answer_checkout_session_challenge.asyncio(
        checkout.id, client=connect(checkout.client_token), body=m.AnswerCheckoutSessionChallengeRequest(
            payment=challenged.id, result=m.AnswerCheckoutSessionChallengeRequestResult.APPROVE)),
        m.PaymentConfirmation)
    assert approved.status == m.PaymentConfirmationStatus.SUCCEEDED
    calls = whole(await sdk.list_hook_calls.asyncio(client=owner), m.HookCallList)
    assert calls.data and calls.data[0].outcome == m.HookCallOutcome.ANSWERED
    paid = whole(await sdk.retrieve_order.asyncio(checkout.order_id, client=owner), m.Order)
    assert paid.extension_data.additional_properties  # the app's annotation
    whole(await sdk.list_payments.asyncio(client=owner), m.PaymentList)
    whole(await sdk.retrieve_payment.asyncio(approved.id, client=owner), m.Payment)
    refund = whole(await sdk.create_refund.asyncio(client=owner, body=m.CreateRefundRequest(order=paid.id)), m.Refund)
    whole(await sdk.list_refunds.asyncio(client=owner), m.RefundList)
    whole(await sdk.retrieve_refund.asyncio(refund.id, client=owner), m.Refund)

    # The developer widens the app: the shop's installation waits for approval, then uninstalls.
    whole(await sdk.update_app.asyncio(app.id, client=me, body=m.UpdateAppRequest(scopes=[
        m.UpdateAppRequestScopesType0Item.ORDERSREAD, m.UpdateAppRequestScopesType0Item.PAYMENTSREAD,
        m.UpdateAppRequestScopesType0Item.EVENTSREAD])), m.App)
    waiting = whole(await sdk.retrieve_installation.asyncio(installation.id, client=owner), m.Installation)
    assert waiting.pending_update is not None
    approved_update = whole(await sdk.approve_installation_update.asyncio(installation.id, client=owner),
                            m.Installation)
    assert approved_update.pending_update is None and "events:read" in approved_update.consented.scopes
    gone = whole(await sdk.delete_installation.asyncio(installation.id, client=owner), m.Installation)
    assert gone.status == m.InstallationStatus.UNINSTALLED

    whole(await sdk.delete_webhook_endpoint.asyncio(endpoint.id, client=me), m.WebhookEndpoint)
