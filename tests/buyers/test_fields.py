"""The merchant's custom fields and installed apps' checkout fields (docs/api.md 14): types, options,
lengths, keys nobody asked for, app fields under app_fields.<app_id>.<key>, and the terms box."""
from __future__ import annotations

import pytest

from flint.buyers import service
from flint.buyers.models import AppFieldSet, Collect, FieldErrors, FieldSpec

NOTHING = Collect(email="off", name="off")
NOTE = FieldSpec("gift_note", "Gift note", "text", max_length=10)
WRAP = FieldSpec("wrap", "Wrapping", "dropdown", required=True, options=(("paper", "Paper"), ("box", "Box")))
QTY = FieldSpec("bottles", "Bottles", "number")
NEWS = FieldSpec("newsletter", "Send me news", "checkbox")
AGE = FieldSpec("age_confirmed", "I am 18 or older", "checkbox", required=True)
CUSTOM = (NOTE, WRAP, QTY, NEWS)


def collected(custom=CUSTOM, values=None, apps=(), app_values=None, collect=NOTHING, **extra):
    submitted = {"custom_fields": values or {}, "app_fields": app_values or {}, **extra}
    return service.validate(collect, custom, list(apps), submitted)


def problems(custom=CUSTOM, values=None, apps=(), app_values=None, collect=NOTHING, **extra):
    with pytest.raises(FieldErrors) as refused:
        collected(custom, values, apps, app_values, collect, **extra)
    return [(p.param, p.code) for p in refused.value.problems]


def test_answered_fields_are_kept_by_key_with_their_types():
    kept = collected(values={"gift_note": "  Happy day ", "wrap": "box", "bottles": "12.50", "newsletter": "on"})
    assert kept.custom_fields == {"gift_note": "Happy day", "wrap": "box", "bottles": "12.50", "newsletter": True}
    assert kept.app_fields == {} and kept.terms_accepted is False


def test_unanswered_optional_fields_are_left_out_and_an_unticked_box_is_false():
    assert collected(values={"wrap": "paper"}).custom_fields == {"wrap": "paper", "newsletter": False}


@pytest.mark.parametrize(("given", "kept"), [("7", "7"), ("-3", "-3"), ("+2", "2"), ("0.25", "0.25"), (12, "12"),
                                             (1.5, "1.5")])
def test_a_number_is_a_decimal_string(given, kept):
    assert collected(values={"wrap": "box", "bottles": given}).custom_fields["bottles"] == kept


@pytest.mark.parametrize("given", ["twelve", "1,5", "1e3", "1.", ".5", "NaN", "Infinity", "0x10", True, "1" * 41])
def test_anything_else_in_a_number_field_is_refused(given):
    assert problems(values={"wrap": "box", "bottles": given}) == [("custom_fields.bottles", "number_invalid")]


@pytest.mark.parametrize(("given", "ticked"), [(True, True), ("on", True), ("true", True), ("1", True),
                                               (False, False), ("false", False), ("0", False), (None, False)])
def test_a_checkbox_reads_what_forms_and_json_send(given, ticked):
    assert collected(values={"wrap": "box", "newsletter": given}).custom_fields["newsletter"] is ticked


def test_a_checkbox_with_another_value_is_refused():
    assert problems(values={"wrap": "box", "newsletter": "yes please"}) == [
        ("custom_fields.newsletter", "option_invalid")]


def test_a_required_checkbox_must_be_ticked():
    assert problems(custom=(AGE,), values={"age_confirmed": "false"}) == [("custom_fields.age_confirmed",
                                                                          "field_required")]
    assert collected(custom=(AGE,), values={"age_confirmed": True}).custom_fields == {"age_confirmed": True}


def test_a_dropdown_takes_one_of_its_option_values_not_labels():
    assert problems(values={"wrap": "Box"}) == [("custom_fields.wrap", "option_invalid")]
    assert problems(values={}) == [("custom_fields.wrap", "field_required")]


def test_a_text_is_at_most_its_max_length():
    assert problems(values={"wrap": "box", "gift_note": "x" * 11}) == [("custom_fields.gift_note", "too_long")]
    assert collected(values={"wrap": "box", "gift_note": "x" * 10}).custom_fields["gift_note"] == "x" * 10
    # Without max_length: 255.
    plain = FieldSpec("vat", "VAT number", "text")
    assert problems(custom=(plain,), values={"vat": "x" * 256}) == [("custom_fields.vat", "too_long")]


def test_keys_nobody_asked_for_are_refused_after_the_fields():
    assert problems(values={"size": "XL", "wrap": "silk"}) == [("custom_fields.wrap", "option_invalid"),
                                                               ("custom_fields.size", "field_unknown")]


def test_app_fields_are_checked_and_kept_under_the_apps_id():
    cellar = AppFieldSet("app_cellar", "Cellar checks", (AGE,))
    invoices = AppFieldSet("app_invoices", "Invoices", (FieldSpec("po_number", "Purchase order", "text"),))
    kept = collected(custom=(), apps=(cellar, invoices),
                     app_values={"app_cellar": {"age_confirmed": "on"}, "app_invoices": {"po_number": "PO-7"}})
    assert kept.app_fields == {"app_cellar": {"age_confirmed": True}, "app_invoices": {"po_number": "PO-7"}}
    assert kept.custom_fields == {}
    # An app with nothing answered has no entry.
    assert collected(custom=(), apps=(cellar, invoices),
                     app_values={"app_cellar": {"age_confirmed": True}}).app_fields == {
        "app_cellar": {"age_confirmed": True}}


def test_app_field_problems_name_the_app_and_the_key():
    cellar = AppFieldSet("app_cellar", "Cellar checks", (AGE,))
    assert problems(custom=(), apps=(cellar,),
                    app_values={"app_cellar": {"age_confirmed": False, "birth_year": "1990"},
                                "app_other": {"x": 1}}) == [
        ("app_fields.app_cellar.age_confirmed", "field_required"),
        ("app_fields.app_cellar.birth_year", "field_unknown"),
        ("app_fields.app_other", "field_unknown")]


def test_a_custom_field_key_is_not_an_app_field():
    cellar = AppFieldSet("app_cellar", "Cellar checks", (AGE,))
    # The same key among the merchant's fields does not answer the app's (custom fields come first).
    assert problems(custom=(), apps=(cellar,), values={"age_confirmed": True}) == [
        ("custom_fields.age_confirmed", "field_unknown"), ("app_fields.app_cellar.age_confirmed", "field_required")]


def test_terms_must_be_accepted_when_there_are_terms():
    terms = Collect(email="off", name="off", terms_url="https://shop.example/terms")
    assert problems(custom=(), collect=terms) == [("terms_accepted", "terms_required")]
    assert problems(custom=(), collect=terms, terms_accepted="false") == [("terms_accepted", "terms_required")]
    assert collected(custom=(), collect=terms, terms_accepted="on").terms_accepted is True
    assert collected(custom=(), collect=terms, terms_accepted=True).terms_accepted is True
    # No terms: nothing to accept, and nothing recorded as accepted.
    assert collected(custom=(), terms_accepted=True).terms_accepted is False
