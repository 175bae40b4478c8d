"""The form both buyer surfaces render (flint.buyers.service.form_fields) and the way back from the hosted
form's dotted input names (flatten_form)."""
from __future__ import annotations

from flint.buyers import service
from flint.buyers.models import AppFieldSet, Collect, FieldSpec, ShippingRule

EVERYTHING = Collect(email="required", name="optional", phone="optional", billing_address="full",
                     shipping_address=ShippingRule(("US", "DE", "FR")), terms_url="https://shop.example/terms")
GIFT = FieldSpec("gift_note", "Gift note", "text", max_length=40)
WRAP = FieldSpec("wrap", "Wrapping", "dropdown", True, (("paper", "Paper"), ("box", "Box")))
CELLAR = AppFieldSet("app_cellar", "Cellar checks", (FieldSpec("age_confirmed", "I am 18 or older", "checkbox", True),))


def form(collect=EVERYTHING, custom=(GIFT, WRAP), apps=(CELLAR,), locale="en", values=None, errors=None):
    return service.form_fields(collect, custom, list(apps), locale, values or {}, errors or {})


def by_name(built):
    return {f.name: f for f in built.fields}


def test_sections_come_in_page_order_with_their_fields():
    built = form()
    assert [(s.id, s.legend, s.app_name) for s in built.sections] == [
        ("contact", None, None), ("billing", None, None), ("shipping", "Shipping address", None),
        ("custom", None, None), ("app-app_cellar", None, "Cellar checks"), ("terms", None, None)]
    address = ["country", "line1", "line2", "city", "postal_code", "state"]
    assert [[f.name for f in s.fields] for s in built.sections] == [
        ["customer.email", "customer.name", "customer.phone"],
        [f"customer.billing_address.{k}" for k in address],
        [f"customer.shipping_address.{k}" for k in address],
        ["custom_fields.gift_note", "custom_fields.wrap"],
        ["app_fields.app_cellar.age_confirmed"],
        ["terms_accepted"]]


def test_built_in_fields_have_the_accessible_names_and_autofill_tokens():
    fields = by_name(form())
    assert [(f.label, f.kind, f.autocomplete, f.translate) for f in fields.values()][:9] == [
        ("Email", "email", "email", True), ("Full name", "text", "name", True), ("Phone", "tel", "tel", True),
        ("Country or region", "select", "billing country", True),
        ("Address line 1", "text", "billing address-line1", True),
        ("Address line 2", "text", "billing address-line2", True),
        ("City", "text", "billing address-level2", True), ("Postal code", "text", "billing postal-code", True),
        ("State or province", "text", "billing address-level1", True)]
    shipping = [f.autocomplete for name, f in fields.items() if name.startswith("customer.shipping_address.")]
    assert shipping == ["shipping country", "shipping address-line1", "shipping address-line2",
                        "shipping address-level2", "shipping postal-code", "shipping address-level1"]
    terms = fields["terms_accepted"]
    assert (terms.label, terms.kind, terms.required, terms.terms_url) == (
        "I agree to the terms", "checkbox", True, "https://shop.example/terms")


def test_ids_and_error_ids_follow_the_names():
    field = by_name(form())["customer.billing_address.line1"]
    assert (field.id, field.error_id) == ("customer-billing_address-line1", "customer-billing_address-line1-error")
    assert by_name(form())["app_fields.app_cellar.age_confirmed"].id == "app_fields-app_cellar-age_confirmed"


def test_required_marks_follow_collect_and_what_every_offered_country_requires():
    fields = by_name(form())
    assert {n for n, f in fields.items() if f.required} == {
        "customer.email", "customer.billing_address.country", "customer.billing_address.line1",
        # US, DE and FR all require a city and a postal code; among all countries only the street is common.
        "customer.shipping_address.country", "customer.shipping_address.line1", "customer.shipping_address.city",
        "customer.shipping_address.postal_code", "custom_fields.wrap", "app_fields.app_cellar.age_confirmed",
        "terms_accepted"}


def test_merchant_and_app_fields_show_their_own_label_kind_and_options():
    fields = by_name(form())
    gift, wrap, age = fields["custom_fields.gift_note"], fields["custom_fields.wrap"], \
        fields["app_fields.app_cellar.age_confirmed"]
    assert (gift.label, gift.kind, gift.translate, gift.max_length, gift.autocomplete) == (
        "Gift note", "text", False, 40, None)
    assert (wrap.kind, wrap.options, wrap.max_length) == ("select", (("paper", "Paper"), ("box", "Box")), None)
    assert (age.label, age.kind, age.translate) == ("I am 18 or older", "checkbox", False)
    number = by_name(form(custom=(FieldSpec("n", "Bottles", "number"),)))["custom_fields.n"]
    assert number.kind == "number"


def test_country_names_are_in_the_buyers_language_sorted_as_they_read():
    for locale, germany, first in (("en", "Germany", "Afghanistan"), ("de", "Deutschland", "Afghanistan"),
                                   ("fr", "Allemagne", "Afghanistan")):
        options = dict(by_name(form(locale=locale))["customer.billing_address.country"].options)
        assert options["DE"] == germany
        assert len(options) == len(service.address.countries())
    german = [label for _, label in by_name(form(locale="de"))["customer.billing_address.country"].options]
    # "Ägypten" sorts with the A's, before "Albanien", not after "Zypern".
    assert german.index("Ägypten") < german.index("Albanien") < german.index("Zypern")
    assert german[0] == "Afghanistan"


def test_shipping_offers_only_the_allowed_countries():
    shipping = by_name(form(locale="fr"))["customer.shipping_address.country"]
    assert shipping.options == (("DE", "Allemagne"), ("US", "États-Unis"), ("FR", "France"))


def test_values_and_errors_land_at_their_fields():
    built = form(values={"customer.email": "ada@example.com", "customer.shipping_address.city": "Paris",
                         "app_fields.app_cellar.age_confirmed": "on"},
                 errors={"customer.shipping_address.postal_code": "Enter a valid postal code."})
    fields = by_name(built)
    assert fields["customer.email"].value == "ada@example.com"
    assert fields["customer.shipping_address.city"].value == "Paris"
    assert fields["app_fields.app_cellar.age_confirmed"].checked is True
    assert fields["terms_accepted"].checked is False
    assert fields["customer.shipping_address.postal_code"].error == "Enter a valid postal code."
    assert [n for n, f in fields.items() if f.error] == ["customer.shipping_address.postal_code"]


def test_what_is_not_asked_is_not_shown():
    built = form(collect=Collect(email="off", name="off", billing_address="country"), custom=(), apps=())
    assert [(s.id, [f.name for f in s.fields]) for s in built.sections] == [
        ("billing", ["customer.billing_address.country"])]
    assert built.country_fields == {} and built.country_required == {}  # no full address on this form
    assert form(collect=Collect(), custom=(), apps=()).sections[0].fields[0].required is False


def test_country_fields_say_which_address_parts_each_country_uses():
    built = form(collect=Collect(shipping_address=ShippingRule(("US", "JP", "DE"))), custom=(), apps=())
    assert built.country_fields == {"DE": ["line1", "line2", "postal_code", "city"],
                                    "JP": ["postal_code", "state", "line1", "line2"],
                                    "US": ["line1", "line2", "city", "state", "postal_code"]}
    assert built.country_required["US"] == ["line1", "city", "state", "postal_code"]
    assert built.country_required["DE"] == ["line1", "postal_code", "city"]
    assert len(form().country_fields) == len(service.address.countries())  # a full billing address: all


def test_flatten_form_nests_the_dotted_names_and_leaves_the_card_out():
    posted = {"customer.email": "ada@example.com", "customer.name": "Ada",
              "customer.billing_address.country": "DE", "customer.billing_address.line1": "Unter den Linden 1",
              "customer.shipping_address.city": "Paris", "custom_fields.gift_note": "Hi",
              "app_fields.app_cellar.age_confirmed": "on", "terms_accepted": "on",
              "card_number": "4242 4242 4242 4242", "expiry": "12 / 34", "cvc": "123", "form_token": "t",
              "customer.billing_address.line1.extra": "x", "customer.fax": "1"}
    assert service.flatten_form(posted) == {
        "customer": {"email": "ada@example.com", "name": "Ada",
                     "billing_address": {"country": "DE", "line1": "Unter den Linden 1"},
                     "shipping_address": {"city": "Paris"}},
        "custom_fields": {"gift_note": "Hi"}, "app_fields": {"app_cellar": {"age_confirmed": "on"}},
        "terms_accepted": "on"}
    assert "4242" not in repr(service.flatten_form(posted))
    # An unticked box posts nothing: not accepted.
    assert service.flatten_form({})["terms_accepted"] is False


def test_a_flattened_form_validates_like_the_json_body():
    posted = {"customer.email": "ada@example.com", "customer.shipping_address.country": "FR",
              "customer.shipping_address.line1": "1 rue de Rivoli", "customer.shipping_address.city": "Paris",
              "customer.shipping_address.postal_code": "75001", "custom_fields.wrap": "box",
              "app_fields.app_cellar.age_confirmed": "on", "terms_accepted": "on"}
    collect = Collect(email="required", shipping_address=ShippingRule(("FR",)), terms_url="https://shop.example/t")
    collected = service.validate(collect, (GIFT, WRAP), [CELLAR], service.flatten_form(posted))
    assert collected.customer.shipping_address.city == "PARIS"
    assert collected.custom_fields == {"wrap": "box"}
    assert collected.app_fields == {"app_cellar": {"age_confirmed": True}}
    assert collected.terms_accepted is True


def test_an_apps_fields_carry_its_name():
    fields = by_name(form())
    assert fields["app_fields.app_cellar.age_confirmed"].app_name == "Cellar checks"
    assert fields["custom_fields.gift_note"].app_name is None
