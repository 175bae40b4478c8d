"""The loader's own texts travel with the client session (``messages``), complete in every language
Flint speaks and chosen from the request's Accept-Language, over real HTTP."""
from __future__ import annotations

import httpx
import pytest

from flint.checkout.service import client_token
from flint.i18n import LOCALES, translations
from flint.checkout.texts import LOADER_TEXTS
from support.factories import make_merchant, make_session


@pytest.fixture
async def embedded(server_rt):
    merchant, _ = await make_merchant(server_rt, origins=["https://shop.example"])
    session = await make_session(server_rt, merchant.id, mode="embedded", amount=1999)
    return session, client_token(server_rt, session)


@pytest.fixture
async def browser(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize("locale", LOCALES)
async def test_both_answers_carry_every_loader_text_in_the_buyers_language(browser, embedded, locale):
    session, token = embedded
    # The best language Flint has, not the first one named.
    auth = {"Authorization": f"Bearer {token}", "Accept-Language": f"xx;q=1, {locale}-XX;q=0.9, en;q=0.1"}
    answers = [await browser.get("/v1/checkout/sessions/client", headers=auth),
               await browser.post(f"/v1/checkout/sessions/{session.id}/fallback", json={"reason": "timeout"},
                                  headers=auth)]
    for answer in answers:
        assert answer.status_code == 200
        messages = answer.json()["messages"]
        assert set(messages) == set(LOADER_TEXTS)
        for text_id, english in LOADER_TEXTS.items():
            assert messages[text_id] == translations(locale).gettext(english)
            # Translated, not the English passed through: a missing catalogue entry fails here.
            assert (messages[text_id] == english) == (locale == "en"), (locale, text_id)


async def test_the_german_fallback_link_and_an_unknown_language(browser, embedded):
    _, token = embedded
    german = await browser.get("/v1/checkout/sessions/client",
                               headers={"Authorization": f"Bearer {token}", "Accept-Language": "de-DE,de;q=0.9"})
    assert german.json()["messages"]["fallback_link"] == "Weiter zur sicheren Bezahlseite"
    unknown = await browser.get("/v1/checkout/sessions/client",
                                headers={"Authorization": f"Bearer {token}", "Accept-Language": "ja"})
    assert unknown.json()["messages"] == LOADER_TEXTS

