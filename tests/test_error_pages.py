"""Error pages speak to whoever reads them: a buyer's pages about paying, a merchant's people about their
account, never about charges they could not have made (issue 16)."""
from __future__ import annotations

import httpx
import pytest


@pytest.fixture
async def person(server):
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False, timeout=30,
                                 headers={"Accept-Language": "en"}) as client:
        yield client


async def test_a_merchant_side_page_opened_the_wrong_way_speaks_about_the_account(person):
    page = await person.get("/logout")  # sign-out is a form's POST
    assert page.status_code == 405 and page.headers["content-type"].startswith("text/html")
    assert "This page cannot be opened this way" in page.text
    assert "charged" not in page.text and 'href="/"' in page.text


async def test_an_unknown_merchant_side_page_is_not_called_a_checkout_link(person):
    page = await person.get("/no-such-page")
    assert page.status_code == 404
    assert "There is no page at this address." in page.text
    assert "checkout link" not in page.text and "charged" not in page.text


async def test_a_buyers_page_still_speaks_about_paying(person):
    page = await person.get("/checkout/cs_doesnotexist")
    assert page.status_code == 404
    assert "This checkout link is not valid." in page.text
    german = await person.get("/pay/plink_doesnotexist", headers={"Accept-Language": "de"})
    assert german.status_code == 404 and "Zu Ihrem Flint-Konto" not in german.text


async def test_the_merchant_side_pages_are_translated(person):
    page = await person.get("/logout", headers={"Accept-Language": "fr"})
    assert "Cette page ne peut pas être ouverte ainsi" in page.text and "Aller à votre compte Flint" in page.text
