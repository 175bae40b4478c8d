"""The demo shop (examples/shop) as a buyer meets it in the browser: its checkout asks for an email and a
shipping address to DE, FR or US (its ``collect``), in Flint's card frame, in the shop's colours."""
from __future__ import annotations

from playwright.sync_api import FrameLocator

# The shop's --accent and --paper (examples/shop/static/shop.css), as the browser computes colours.
SHOP_BROWN = "rgb(122, 62, 18)"
SHOP_PAPER = "rgb(255, 253, 249)"


def fill_shop_details(frame: FrameLocator) -> None:
    """What the demo shop's checkout needs besides the card: an email and a German shipping address,
    typed into the frame's fields by their accessible names (docs/api.md 14)."""
    frame.get_by_role("textbox", name="Email", exact=True).fill("ada@example.com")
    shipping = frame.get_by_role("group", name="Shipping address")
    shipping.get_by_role("combobox", name="Country or region").select_option("DE")
    shipping.get_by_role("textbox", name="Address line 1", exact=True).fill("Unter den Linden 1")
    shipping.get_by_role("textbox", name="City", exact=True).fill("Berlin")
    shipping.get_by_role("textbox", name="Postal code", exact=True).fill("10117")
