"""Merchant sign-in in real Chromium: the form by its labels, the account page, sign-out."""
from __future__ import annotations

from playwright.sync_api import Page, expect

from flint.merchants import service as merchants
from flint.runtime import Runtime

from .conftest import run_async
from .helpers import assert_accessible, screenshot

PASSWORD = "a long and correct password"


def test_a_merchant_signs_in_and_out_by_label(page: Page, server):
    async def seed():
        runtime = await Runtime.start(server.runtime_config())
        try:
            return (await merchants.create_merchant(runtime, name="Sign-in Roasters", email="signin@shop.example",
                                                    password=PASSWORD))[0]
        finally:
            await runtime.stop()

    merchant = run_async(seed)
    page.goto(f"{server.url}/account")
    expect(page).to_have_url(f"{server.url}/login?next=/account")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in to Flint")
    assert_accessible(page)
    screenshot(page, "sign-in")
    page.get_by_role("textbox", name="Email").fill(merchant.email)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("That email and password do not match an account.")
    assert_accessible(page)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{server.url}/account")
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in Roasters")
    cookie = next(c for c in page.context.cookies() if c["name"] == "flint_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find("flint_session") == -1  # script cannot read it
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server.url}/login")
    page.goto(f"{server.url}/account")
    expect(page).to_have_url(f"{server.url}/login?next=/account")
