"""What a merchant or an app asks for (docs/api.md 14): ``collect`` and field specs, refused with the
exact param, and stored as JSON that reads back the same."""
from __future__ import annotations

import json

import pytest

from flint.buyers import service
from flint.buyers.models import Collect, FieldSpec, ShippingRule
from flint.errors import FlintError

TEXT = {"key": "gift_note", "label": "Gift note", "type": "text"}
DROPDOWN = {"key": "wrap", "label": "Wrapping", "type": "dropdown", "required": True,
            "options": [{"value": "paper", "label": "Paper"}, {"value": "box", "label": "Box"}]}


def refused(call, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(FlintError) as error:
        call(*args, **kwargs)
    assert error.value.status == 400
    return error.value.code, error.value.param


def test_no_collect_is_what_checkouts_asked_before():
    assert service.parse_collect(None) == Collect.DEFAULT
    assert Collect.DEFAULT.to_dict() == {"email": "optional", "name": "optional", "phone": "off",
                                         "billing_address": "off", "shipping_address": None, "terms_url": None}


def test_a_collect_is_read_with_countries_upper_cased_in_the_merchants_order():
    collect = service.parse_collect({"email": "required", "phone": "optional", "billing_address": "full",
                                     "shipping_address": {"allowed_countries": ["us", "DE", "Fr"]},
                                     "terms_url": "https://shop.example/terms"})
    assert collect == Collect(email="required", name="optional", phone="optional", billing_address="full",
                              shipping_address=ShippingRule(("US", "DE", "FR")), terms_url="https://shop.example/terms")
    # Members left out (or null, as a request model dumps them) take the defaults.
    assert service.parse_collect({"email": None, "billing_address": None}) == Collect.DEFAULT


@pytest.mark.parametrize(("raw", "param"), [
    ("all", "collect"),
    ({"email": "sometimes"}, "collect.email"),
    ({"phone": True}, "collect.phone"),
    ({"billing_address": "street"}, "collect.billing_address"),
    ({"fax": "required"}, "collect.fax"),
    ({"shipping_address": ["DE"]}, "collect.shipping_address"),
    ({"shipping_address": {"allowed_countries": ["DE"], "except": ["FR"]}}, "collect.shipping_address"),
    ({"shipping_address": {"allowed_countries": []}}, "collect.shipping_address.allowed_countries"),
    ({"shipping_address": {"allowed_countries": "DE"}}, "collect.shipping_address.allowed_countries"),
    ({"shipping_address": {"allowed_countries": ["DE", "XX"]}}, "collect.shipping_address.allowed_countries[1]"),
    ({"shipping_address": {"allowed_countries": ["DE", "FR", "de"]}}, "collect.shipping_address.allowed_countries[2]"),
    ({"shipping_address": {"allowed_countries": ["DEU"]}}, "collect.shipping_address.allowed_countries[0]"),
    ({"shipping_address": {"allowed_countries": [49]}}, "collect.shipping_address.allowed_countries[0]"),
])
def test_a_bad_collect_is_refused_at_its_exact_param(raw, param):
    assert refused(service.parse_collect, raw) == ("collect_invalid", param)


def test_at_most_250_allowed_countries():
    many = sorted(service.address.countries())
    assert len(many) > 250
    assert refused(service.parse_collect, {"shipping_address": {"allowed_countries": many}}) == (
        "collect_invalid", "collect.shipping_address.allowed_countries")
    assert len(service.parse_collect({"shipping_address": {"allowed_countries": many[:250]}})
               .shipping_address.allowed_countries) == 250


@pytest.mark.parametrize("url", ["https://shop.example;frame-ancestors *", "javascript:alert(1)", "/terms",
                                 "https://user:pw@shop.example/terms", "https://shop.example/te rms"])
def test_terms_url_follows_the_rules_of_every_merchant_url(url):
    assert refused(service.parse_collect, {"terms_url": url}) == ("url_invalid", "collect.terms_url")


def test_the_param_prefix_is_the_callers():
    assert refused(service.parse_collect, {"email": "x"}, param="payment_link.collect") == (
        "collect_invalid", "payment_link.collect.email")


def test_field_specs_are_read_with_their_defaults():
    specs = service.parse_field_specs([TEXT, DROPDOWN, {"key": "n", "label": " Count ", "type": "number"},
                                       {"key": "ok", "label": "OK", "type": "checkbox", "required": False}],
                                      limit=5, param="custom_fields")
    assert specs == (FieldSpec("gift_note", "Gift note", "text", False, (), 255),
                     FieldSpec("wrap", "Wrapping", "dropdown", True, (("paper", "Paper"), ("box", "Box")), None),
                     FieldSpec("n", "Count", "number", False, (), None),
                     FieldSpec("ok", "OK", "checkbox", False, (), None))
    assert service.parse_field_specs(None, limit=5, param="custom_fields") == ()


@pytest.mark.parametrize(("raw", "param"), [
    ({"gift_note": TEXT}, "custom_fields"),
    ([TEXT, "wrap"], "custom_fields[1]"),
    ([dict(TEXT, key="Gift")], "custom_fields[0].key"),
    ([dict(TEXT, key="1st")], "custom_fields[0].key"),
    ([dict(TEXT, key="k" * 41)], "custom_fields[0].key"),
    ([TEXT, dict(TEXT, label="Again")], "custom_fields[1].key"),
    ([dict(TEXT, label="")], "custom_fields[0].label"),
    ([dict(TEXT, label="   ")], "custom_fields[0].label"),
    ([dict(TEXT, label="L" * 101)], "custom_fields[0].label"),
    ([dict(TEXT, type="date")], "custom_fields[0].type"),
    ([dict(TEXT, required="yes")], "custom_fields[0].required"),
    ([dict(TEXT, colour="red")], "custom_fields[0].colour"),
    ([TEXT, {"key": "wrap", "label": "Wrap", "type": "dropdown"}], "custom_fields[1].options"),
    ([dict(DROPDOWN, options=[])], "custom_fields[0].options"),
    ([dict(DROPDOWN, options=[{"value": str(i), "label": str(i)} for i in range(51)])], "custom_fields[0].options"),
    ([dict(DROPDOWN, options=[{"value": "a", "label": "A"}, {"value": "a", "label": "B"}])],
     "custom_fields[0].options[1].value"),
    ([dict(DROPDOWN, options=[{"value": "", "label": "A"}])], "custom_fields[0].options[0].value"),
    ([dict(DROPDOWN, options=[{"value": "a", "label": ""}])], "custom_fields[0].options[0].label"),
    ([dict(DROPDOWN, options=[{"value": "a"}])], "custom_fields[0].options[0]"),
    ([dict(TEXT, options=DROPDOWN["options"])], "custom_fields[0].options"),
    ([dict(TEXT, max_length=0)], "custom_fields[0].max_length"),
    ([dict(TEXT, max_length=501)], "custom_fields[0].max_length"),
    ([dict(TEXT, max_length="40")], "custom_fields[0].max_length"),
    ([dict(DROPDOWN, max_length=40)], "custom_fields[0].max_length"),
    ([dict(TEXT, key=f"f{i}") for i in range(6)], "custom_fields"),
])
def test_bad_custom_fields_are_refused_at_their_exact_param(raw, param):
    assert refused(service.parse_field_specs, raw, limit=5, param="custom_fields") == ("custom_fields_invalid", param)


def test_an_apps_fields_have_their_own_limit_and_code():
    four = [dict(TEXT, key=f"f{i}") for i in range(4)]
    assert refused(service.parse_field_specs, four, limit=3, param="checkout_fields") == (
        "checkout_fields_invalid", "checkout_fields")
    assert len(service.parse_field_specs(four[:3], limit=3, param="checkout_fields")) == 3


def test_stored_json_reads_back_the_same():
    collect_json, custom_json = service.stored_collect(
        {"email": "required", "name": "optional", "phone": "off", "billing_address": "country",
         "shipping_address": {"allowed_countries": ["fr"]}, "terms_url": "https://shop.example/terms"},
        [TEXT, DROPDOWN])
    collect = Collect.from_json(collect_json)
    assert collect.shipping_address == ShippingRule(("FR",)) and collect.billing_address == "country"
    assert json.loads(collect_json) == collect.to_dict()
    specs = FieldSpec.tuple_from_json(custom_json)
    assert [spec.to_dict() for spec in specs] == [dict(TEXT, required=False, max_length=255), DROPDOWN]
    # Nothing given: nothing stored, and NULL reads as the defaults.
    assert service.stored_collect(None, None) == (None, None)
    assert service.stored_collect(None, []) == (None, None)
    assert Collect.from_json(None) == Collect.DEFAULT and FieldSpec.tuple_from_json(None) == ()


def test_stored_collect_refuses_before_storing():
    assert refused(service.stored_collect, None, [dict(TEXT, type="date")]) == (
        "custom_fields_invalid", "custom_fields[0].type")
    assert refused(service.stored_collect, {"billing_address": "street"}, None) == (
        "collect_invalid", "collect.billing_address")
