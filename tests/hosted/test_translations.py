"""Buyer pages speak German and French completely: every text the templates and the code mark for
translation (``_``, and ``N_`` for the processor's decline messages) has a translation, and the
catalogues hold nothing stale."""
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from flint.i18n import LOCALES, TRANSLATIONS_DIR

ROOT = Path(__file__).resolve().parent.parent.parent


def marked_texts() -> set[str]:
    # Every Python module of the package: buyer and merchant texts are marked where they are defined.
    method_map = [("server/**.py", "python"), ("hosted_pages/templates/**.html", "jinja2")]
    options = {"hosted_pages/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = set()
    # As `pybabel extract --ignore-dirs='.*'` walks (templates/_partials included).
    keep = lambda path: not Path(path).name.startswith(".") and Path(path).name != "node_modules"  # noqa: E731
    for _, _, message, _, _ in extract_from_dir(ROOT, method_map, options, keywords={"_": None, "N_": None},
                                                 callback=lambda *a: None, directory_filter=keep):
        found.add(message if isinstance(message, str) else message[0])
    return found


@pytest.mark.parametrize("locale", [locale for locale in LOCALES if locale != "en"])
def test_every_marked_text_is_translated(locale):
    with open(TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po", "rb") as handle:
        catalog = read_po(handle, locale=locale)
    translated = {m.id for m in catalog if m.id and m.string}
    marked = marked_texts()
    assert "Your card was declined." in marked and "Card number" in marked
    assert sorted(marked - translated) == []
    assert not catalog.obsolete
