"""Helpers for browser tests: accessibility checks with axe-core, review screenshots, and the buyer's
steps on Flint's hosted pages (by role and label, as a person or a screen reader finds them)."""
from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page

E2E = Path(__file__).resolve().parent
ROOT = E2E.parent
AXE_JS = E2E / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "test-results" / "screenshots"

BLOCKING_IMPACTS = ("serious", "critical")
VIEWPORTS = {"mobile": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 900}}


# -- accessibility -----------------------------------------------------------------------------------

def _inject_axe(page: Page) -> None:
    if page.evaluate("() => typeof window.axe === 'object'"):
        return
    if not AXE_JS.exists():
        raise RuntimeError(f"{AXE_JS} is missing: run `make e2e-deps` (npm ci --prefix e2e)")
    try:
        # A one-line probe first: a page whose Content-Security-Policy refuses inline scripts makes
        # add_script_tag raise, and there it is cheaper to learn that without sending axe twice.
        page.add_script_tag(content="window.__flintE2eInlineScripts = true;")
        page.add_script_tag(path=AXE_JS)
    except PlaywrightError:
        pass
    if not page.evaluate("() => typeof window.axe === 'object'"):
        # A strict CSP (script-src 'self' or nonces, as a payment page should have) blocks the tag;
        # evaluating through the DevTools protocol is not subject to the page's CSP.
        page.evaluate(AXE_JS.read_text() + "\n;undefined")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        raise RuntimeError("axe-core could not be injected into the page (is JavaScript disabled?)")


def axe_violations(page: Page, *, include: str | None = None, impacts=BLOCKING_IMPACTS) -> list[dict]:
    """Runs axe-core on the page (or the part matching the CSS selector ``include``) and returns its
    violations whose impact is one of ``impacts``."""
    _inject_axe(page)
    results = page.evaluate(
        """async (include) => {
            const context = include ? { include: [include] } : document;
            return await window.axe.run(context, { resultTypes: ['violations'] });
        }""",
        include,
    )
    return [v for v in results["violations"] if v.get("impact") in impacts]


def format_violations(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- [{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        for node in v["nodes"][:5]:
            lines.append(f"    at {' '.join(map(str, node['target']))}: {node.get('failureSummary', '').strip()}"
                         .replace("\n", " "))
        if len(v["nodes"]) > 5:
            lines.append(f"    ... and {len(v['nodes']) - 5} more")
    return "\n".join(lines)


def assert_accessible(page: Page, *, include: str | None = None) -> None:
    """Fails listing every axe-core violation of impact "serious" or "critical" on the current page.
    Needs JavaScript enabled in the page's context."""
    violations = axe_violations(page, include=include)
    assert not violations, f"accessibility violations on {page.url}:\n{format_violations(violations)}"


# -- screenshots -------------------------------------------------------------------------------------

def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    if not slug:
        raise ValueError(f"screenshot name {name!r} has no usable characters")
    return slug


def screenshot(page: Page, name: str) -> list[Path]:
    """Saves full-page PNGs of the current page at a phone's width (390x844) and a desktop's (1280x900)
    as test-results/screenshots/<name>-mobile.png and <name>-desktop.png, for review; returns the
    paths. The page's viewport is put back afterwards."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    original = page.viewport_size
    paths = []
    try:
        for label, size in VIEWPORTS.items():
            page.set_viewport_size(size)
            path = SCREENSHOTS / f"{_slug(name)}-{label}.png"
            page.screenshot(path=path, full_page=True)
            paths.append(path)
    finally:
        if original:
            page.set_viewport_size(original)
    return paths


# -- the buyer on Flint's hosted pages ---------------------------------------------------------------
# The contract of GET {server}/checkout/{session_id}: text boxes labelled "Card number",
# "Expiry (MM / YY)" and "CVC", and a submit button whose name starts with "Pay"; the 3-D Secure
# page has the buttons "Approve" and "Deny".

PAY_BUTTON = re.compile(r"^Pay")


def pay(page: Page, number: str, expiry: str = "12 / 34", cvc: str = "123") -> None:
    """Fills the hosted checkout form by its labels and clicks Pay. Waits for nothing after the click:
    assert on where the buyer lands (``expect(page).to_have_url(...)``) or on what the page says."""
    page.get_by_role("textbox", name="Card number", exact=True).fill(number)
    page.get_by_role("textbox", name="Expiry (MM / YY)", exact=True).fill(expiry)
    page.get_by_role("textbox", name="CVC", exact=True).fill(cvc)
    page.get_by_role("button", name=PAY_BUTTON).click()


def answer_challenge(page: Page, approve: bool = True) -> None:
    """On the 3-D Secure page, clicks Approve (or Deny)."""
    page.get_by_role("button", name="Approve" if approve else "Deny", exact=True).click()
