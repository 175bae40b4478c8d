"""/v1/openapi.json as an SDK generator reads it: every operation has a resource-style id (the
function name an SDK gives it) and one tag (the module it lands in), every object is one named
component referenced by ``$ref`` (the class an SDK gives it), and the problem responses each
operation can answer are documented, each a component of its own."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, create_model
from quart import Quart
from quart_schema import document_response

from flint.app import create_app
from flint.http.auth import public
from flint.http.openapi import install, operation

from support.server import LiveServer

HTTP_METHODS = {"get", "post", "delete", "put", "patch"}

# The ids SDKs build on: renaming one breaks every client generated before, so they are pinned here.
OPERATION_IDS = {
    ("post", "/v1/orders"): "createOrder",
    ("get", "/v1/orders"): "listOrders",
    ("get", "/v1/orders/{order_id}"): "retrieveOrder",
    ("post", "/v1/orders/{order_id}/cancel"): "cancelOrder",
    ("get", "/v1/orders/{order_id}/events"): "listOrderEvents",
    ("post", "/v1/checkout/sessions"): "createCheckoutSession",
    ("get", "/v1/checkout/sessions"): "listCheckoutSessions",
    ("get", "/v1/checkout/sessions/client"): "retrieveClientSession",
    ("get", "/v1/checkout/sessions/{session_id}"): "retrieveCheckoutSession",
    ("post", "/v1/checkout/sessions/{session_id}/expire"): "expireCheckoutSession",
    ("post", "/v1/checkout/sessions/{session_id}/confirm"): "confirmCheckoutSession",
    ("post", "/v1/checkout/sessions/{session_id}/challenge"): "answerCheckoutSessionChallenge",
    ("post", "/v1/checkout/sessions/{session_id}/fallback"): "reportCheckoutSessionFallback",
    ("post", "/v1/checkout/sessions/{session_id}/beacon"): "sendCheckoutSessionBeacon",
    ("get", "/v1/payments"): "listPayments",
    ("get", "/v1/payments/{payment_id}"): "retrievePayment",
    ("post", "/v1/payment_links"): "createPaymentLink",
    ("get", "/v1/payment_links"): "listPaymentLinks",
    ("get", "/v1/payment_links/{link_id}"): "retrievePaymentLink",
    ("post", "/v1/payment_links/{link_id}/deactivate"): "deactivatePaymentLink",
    ("post", "/v1/payment_links/{link_id}/send"): "sendPaymentLink",
    ("get", "/v1/emails"): "listEmails",
    ("get", "/v1/emails/{email_id}"): "retrieveEmail",
    ("get", "/v1/recovery/summary"): "retrieveRecoverySummary",
    ("post", "/v1/refunds"): "createRefund",
    ("get", "/v1/refunds"): "listRefunds",
    ("get", "/v1/refunds/{refund_id}"): "retrieveRefund",
    ("get", "/v1/events"): "listEvents",
    ("get", "/v1/events/{event_id}"): "retrieveEvent",
    ("post", "/v1/webhook_endpoints"): "createWebhookEndpoint",
    ("get", "/v1/webhook_endpoints"): "listWebhookEndpoints",
    ("get", "/v1/webhook_endpoints/{endpoint_id}"): "retrieveWebhookEndpoint",
    ("post", "/v1/webhook_endpoints/{endpoint_id}"): "updateWebhookEndpoint",
    ("delete", "/v1/webhook_endpoints/{endpoint_id}"): "deleteWebhookEndpoint",
    ("post", "/v1/webhook_endpoints/{endpoint_id}/rotate_secret"): "rotateWebhookEndpointSecret",
    ("get", "/v1/webhook_endpoints/{endpoint_id}/deliveries"): "listWebhookDeliveries",
    ("get", "/v1/webhook_deliveries/{delivery_id}"): "retrieveWebhookDelivery",
    ("get", "/v1/webhook_deliveries/{delivery_id}/attempts"): "listWebhookDeliveryAttempts",
    ("post", "/v1/webhook_deliveries/{delivery_id}/retry"): "retryWebhookDelivery",
    ("post", "/v1/apps"): "createApp",
    ("get", "/v1/apps"): "listApps",
    ("get", "/v1/apps/{app_id}"): "retrieveApp",
    ("post", "/v1/apps/{app_id}"): "updateApp",
    ("post", "/v1/apps/{app_id}/rotate_secret"): "rotateAppSecret",
    ("post", "/v1/apps/{app_id}/rotate_webhook_secret"): "rotateAppWebhookSecret",
    ("get", "/v1/installations"): "listInstallations",
    ("get", "/v1/installations/{installation_id}"): "retrieveInstallation",
    ("post", "/v1/installations/{installation_id}/approve_update"): "approveInstallationUpdate",
    ("delete", "/v1/installations/{installation_id}"): "deleteInstallation",
    ("get", "/v1/hook_calls"): "listHookCalls",
    ("get", "/v1/merchant"): "retrieveMerchant",
    ("post", "/v1/merchant"): "updateMerchant",
    ("get", "/v1/merchant/keys"): "listApiKeys",
    ("post", "/v1/merchant/keys"): "createApiKey",
    ("delete", "/v1/merchant/keys/{key_id}"): "deleteApiKey",
    ("get", "/v1/openapi.json"): "retrieveOpenAPIDocument",
}
# The objects an SDK user handles, each one class.
COMPONENTS = {
    "Order", "OrderList", "LineItem", "CreateOrderRequest", "CreateOrderLineItem",
    "CheckoutSession", "CheckoutSessionList", "CheckoutSessionRecovery", "CheckoutSessionFallback",
    "CreateCheckoutSessionRequest", "ClientSession", "ConfirmCheckoutSessionRequest", "CardDetails",
    "PaymentConfirmation", "NextAction", "AnswerCheckoutSessionChallengeRequest",
    "Payment", "PaymentList", "Card", "PaymentLink", "PaymentLinkList", "CreatePaymentLinkRequest", "RecoverySummary",
    "Refund", "RefundList", "CreateRefundRequest", "Event", "EventList", "EventActor",
    "WebhookEndpoint", "WebhookEndpointList", "CreateWebhookEndpointRequest", "UpdateWebhookEndpointRequest",
    "WebhookDelivery", "WebhookDeliveryList", "WebhookAttempt", "WebhookAttemptList",
    "App", "AppList", "CreateAppRequest", "UpdateAppRequest", "Installation", "InstallationList",
    "InstallationConsent", "HookCall", "HookCallList", "Merchant", "UpdateMerchantRequest", "ApiKey", "ApiKeyList",
    "CreatedBy", "Problem", "ProblemError", "PaymentProblem",
}


@pytest.fixture(scope="module")
def document(server: LiveServer) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v1/openapi.json", timeout=30)
    assert response.status_code == 200
    return response.json()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                yield method, path, op


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def nodes(value: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    yield where, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from nodes(child, f"{where}/{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from nodes(child, f"{where}/{i}")


def test_every_v1_route_has_a_stable_operation_id_and_one_tag(server: LiveServer, document):
    app = create_app(server.runtime_config(), run_sweeper=False)
    routes = {(method.lower(), re.sub(r"<(?:[^<>:]+:)?([^<>]+)>", r"{\1}", rule.rule))
              for rule in app.url_map.iter_rules() if rule.rule.startswith("/v1/")
              for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    documented = {(method, path): op for method, path, op in operations(document)}
    assert routes == set(documented)
    unnamed = sorted(f"{m.upper()} {p}" for (m, p), op in documented.items()
                     if not op.get("operationId") or len(op.get("tags") or ()) != 1)
    assert unnamed == [], f"give these routes @operation(id, tag) (flint.http.openapi): {unnamed}"
    ids = [op["operationId"] for op in documented.values()]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert all(re.fullmatch(r"[a-z]+[A-Z][A-Za-z]*", i) for i in ids), ids
    # Stable: the pinned ids are unchanged (a route added later only needs a name of its own).
    assert {key: documented[key]["operationId"] for key in OPERATION_IDS if key in documented} == OPERATION_IDS
    # Tags are listed at the top, each described, each used.
    listed = {tag["name"]: tag.get("description") for tag in document["tags"]}
    assert all(listed.values()), listed
    assert {op["tags"][0] for op in documented.values()} == set(listed)
    assert {"Orders", "Checkout sessions", "Payments", "Payment links", "Refunds", "Events", "Webhook endpoints",
            "Webhook deliveries", "Apps", "Installations", "Hook calls", "Merchant", "Recovery"} <= set(listed)


def test_every_object_is_one_named_component(document):
    schemas = document["components"]["schemas"]
    assert COMPONENTS <= set(schemas), sorted(COMPONENTS - set(schemas))
    # Every reference resolves.
    refs = [(where, node["$ref"]) for where, node in nodes(document) if isinstance(node, dict) and "$ref" in node]
    assert refs
    for where, ref in refs:
        assert ref.startswith("#/components/"), (where, ref)
        resolve(document, ref)
    # Bodies and answers are references, never inline objects.
    for method, path, op in operations(document):
        media = [m for m in op.get("requestBody", {}).get("content", {}).values()]
        media += [m for status, r in op["responses"].items() if status.startswith("2") for m in r["content"].values()]
        for m in media:
            if path != "/v1/openapi.json":
                assert set(m["schema"]) == {"$ref"}, f"{method} {path}: {m['schema']}"
    # An object's properties are declared once, at the top of its component; "contains" and
    # if/then/else state constraints over a component's own fields, not objects of their own.
    constraint = re.compile(r"/(contains|if|then|else|oneOf)(/|$)")
    inline = [where for where, node in nodes(document) if isinstance(node, dict) and "properties" in node
              and not re.fullmatch(r"/components/schemas/[A-Za-z]+", where) and not constraint.search(where)]
    assert inline == [], inline
    # The same object is the same component wherever it appears.
    order = "#/components/schemas/Order"
    for key in (("post", "/v1/orders"), ("get", "/v1/orders/{order_id}"), ("post", "/v1/orders/{order_id}/cancel")):
        assert document["paths"][key[1]][key[0]]["responses"]["200"]["content"]["application/json"]["schema"] == {
            "$ref": order}
    assert schemas["OrderList"]["properties"]["data"]["items"] == {"$ref": order}
    assert {"$ref": "#/components/schemas/CreateOrderRequest"} in \
        schemas["CreateCheckoutSessionRequest"]["properties"]["order"]["oneOf"]
    # Names are the API's nouns, not the code's (an SDK calls the class OrderOut otherwise).
    assert [name for name in schemas if re.search(r"(Out|In)$", name)] == []


def test_every_operation_documents_its_problem_responses(document):
    responses = document["components"]["responses"]
    for name, response in responses.items():
        assert list(response["content"]) == ["application/problem+json"], name
        schema = resolve(document, response["content"]["application/problem+json"]["schema"]["$ref"])
        assert {"type", "title", "status", "detail", "code"} <= set(schema["required"]), name
    problem = {"$ref": "#/components/schemas/Problem"}
    assert responses["PaymentFailed"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/PaymentProblem"}
    assert "Retry-After" in responses["TooManyRequests"]["headers"]

    for method, path, op in operations(document):
        where = f"{method.upper()} {path}"
        statuses = {int(s) for s in op["responses"] if s.isdigit() and int(s) >= 400}
        for status in statuses:
            ref = op["responses"][str(status)].get("$ref", "")
            assert ref.startswith("#/components/responses/"), (where, status)
        assert op["responses"]["default"]["content"]["application/problem+json"]["schema"] == problem, where
        if path == "/v1/openapi.json":
            continue
        assert {400, 401, 404} <= statuses, where
        scheme = next(iter(op["security"][0]))
        # A secret key may be an app's token without the scope; a client_token has no scopes.
        assert (403 in statuses) == (scheme == "secretKey"), where
        if method == "post":
            assert {409, 413, 415, 422} <= statuses, where
        if method == "delete":
            assert 409 in statuses, where

    confirm = document["paths"]["/v1/checkout/sessions/{session_id}/confirm"]["post"]["responses"]
    challenge = document["paths"]["/v1/checkout/sessions/{session_id}/challenge"]["post"]["responses"]
    assert confirm["402"] == challenge["402"] == {"$ref": "#/components/responses/PaymentFailed"}
    assert confirm["429"] == {"$ref": "#/components/responses/TooManyRequests"}
    assert confirm["503"] == challenge["503"] == {"$ref": "#/components/responses/ServiceUnavailable"}
    paying = {"/v1/checkout/sessions/{session_id}/confirm", "/v1/checkout/sessions/{session_id}/challenge"}
    assert {path for _, path, op in operations(document) if "402" in op["responses"]} == paying


def test_two_different_models_of_one_name_fail_the_document():
    # Quart-Schema merges each operation's components into one dict: without the check, the second
    # "Thing" would silently replace the first and the document would lie about one of the routes.
    first = create_model("Thing", a=(int, ...))
    second = create_model("Thing", b=(str, ...))
    app = Quart(__name__)
    install(app)

    @app.get("/v1/first")
    @operation("retrieveFirst", "Orders")
    @public
    @document_response(first)
    async def get_first():
        return {}

    @app.get("/v1/second")
    @operation("retrieveSecond", "Orders")
    @public
    @document_response(second)
    async def get_second():
        return {}

    with pytest.raises(ValueError, match="'Thing'"):
        app.extensions["QUART_SCHEMA"].openapi_provider.schema()


def test_a_route_without_an_operation_has_no_name_in_the_document():
    # What the first test catches on the real app: an undecorated route gets no operationId (not a
    # made-up one like "get_get_thing") and no tag.
    class Thing(BaseModel):
        a: int

    app = Quart(__name__)
    install(app)

    @app.get("/v1/thing")
    @public
    @document_response(Thing)
    async def get_thing():
        return {}

    op = app.extensions["QUART_SCHEMA"].openapi_provider.schema()["paths"]["/v1/thing"]["get"]
    assert "operationId" not in op and "tags" not in op
    assert op["responses"]["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Thing"}
