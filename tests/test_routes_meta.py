"""Meta-tests over the URL map: every route declares how it authenticates (fail closed)."""
from flint.http.auth import SCOPES, declaration
from flint.app import create_app
from flint.config import Config


def test_every_route_declares_its_credentials():
    app = create_app(Config(database_url="sqlite:///unused.sqlite3"), run_sweeper=False)
    undeclared, v1_public = [], []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        declared = declaration(app.view_functions[rule.endpoint])
        if declared is None:
            undeclared.append(rule.rule)
        elif rule.rule.startswith("/v1/") and declared[0] == "public" and rule.rule != "/v1/openapi.json":
            v1_public.append(rule.rule)
        elif declared[0] == "scope":
            assert declared[1] in SCOPES + ("merchant",), (rule.rule, declared)
    assert undeclared == []
    assert v1_public == []


def test_capture_and_void_need_payments_write():
    """Authorize now, capture later (docs/api.md 17): moving held money is its own scope, not payments:read."""
    app = create_app(Config(database_url="sqlite:///unused.sqlite3"), run_sweeper=False)
    found = {}
    for rule in app.url_map.iter_rules():
        if rule.rule in ("/v1/payments/<payment_id>/capture", "/v1/payments/<payment_id>/void"):
            found[rule.rule] = declaration(app.view_functions[rule.endpoint])
    assert found == {"/v1/payments/<payment_id>/capture": ("scope", "payments:write"),
                     "/v1/payments/<payment_id>/void": ("scope", "payments:write")}
