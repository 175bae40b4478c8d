"""What every test run of this repository shares: which tests are browser tests and that they run last, and
the browser they drive (Debian's Chromium). Here at the root, so that it covers e2e/ and the demo shop's own
suite (examples/shop/tests) alike, whichever of them a run collects.

pytest-playwright's own fixtures and options work as documented (``page``, ``context``, ``new_context``,
``browser``; ``--headed``, ``--slowmo``, ``--tracing``, ``--screenshot``, ``--video``, ``--output``); only
the browser launch is changed, to Debian's Chromium."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.browser import CHROMIUM, CHROMIUM_ARGS, CONTEXT_OPTIONS

ROOT = Path(__file__).resolve().parent
# The folders of browser tests: everything in them is marked ``e2e``. A browser test elsewhere says so
# itself (``pytestmark = pytest.mark.e2e``) and is sorted last with them.
BROWSER_SUITES = (ROOT / "e2e", ROOT / "examples" / "shop" / "tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks the browser tests ``e2e`` and runs them after every other test.

    Last, because Playwright's sync API marks its event loop as running on the main thread from its
    first call until the session-scoped ``playwright`` fixture stops at the very end of the run: an
    ``async def`` test (pytest-asyncio) or an ``asyncio.run`` after it would fail with "cannot be
    called from a running event loop". The sort is stable, so every other test keeps its order. Under
    pytest-xdist (make test) each worker takes whole files in this order (--no-loadscope-reorder), so no
    worker runs another test after a browser test either."""
    for item in items:
        if any(suite in Path(item.path).parents for suite in BROWSER_SUITES):
            item.add_marker(pytest.mark.e2e)
        if item.get_closest_marker("e2e") is not None:
            # pytest-playwright's stand-in for pytest-base-url's base_url fixture is a session fixture
            # on an instance, which pytest 9 deprecates; harmless here (nothing sets base_url).
            item.add_marker(pytest.mark.filterwarnings(
                "ignore:Session-scoped fixtures defined as instance methods:pytest.PytestRemovedIn10Warning"))
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright's launch options (--headed, --slowmo, --browser-channel) on Debian's Chromium."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium` (apt-get install chromium)", pytrace=False)
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": [*browser_type_launch_args.get("args", []), *CHROMIUM_ARGS]}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    """Every context: a desktop viewport, US English and UTC, so pages and screenshots are repeatable."""
    return {**CONTEXT_OPTIONS, **browser_context_args}
