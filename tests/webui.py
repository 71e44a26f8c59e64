"""A headless Chromium for tests that look at the Temporal Web UI as a user sees it.

The browser is the Debian ``chromium`` package (``/usr/bin/chromium``; ``.ci/run`` installs it),
driven by the PyPI ``playwright`` package. Playwright's own browser downloads are never used, so
nothing is fetched at run time::

    async with chromium() as browser:
        page = await open_page(browser, "http://127.0.0.1:8233/namespaces/default/workflows")
        text = await wait_for_text(page, "AgentWorkflow")
        await screenshot(page, Path("shot.png"))

Only requests to this machine are let through: the Web UI also asks the internet for a news
feed, which a closed network refuses or leaves hanging.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from playwright.async_api import Browser, Page, Route, ViewportSize, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
"""The browser binary; ``CHROMIUM`` overrides the Debian package's path."""

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these Chromium phones home at start, and a closed network refuses it.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT: ViewportSize = {"width": 1920, "height": 1250}
"""Wide enough for the timeline's long summary labels beside their bars, tall enough for a
workflow page's header, Input/Result panels and timeline in one shot."""
TEXT_TIMEOUT = 60.0
"""Seconds to wait for expected text: a SvelteKit app fetching and decoding a history."""
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def chromium_path() -> Path:
    """The Chromium binary, or an error saying how to install it (a test fails, never skips)."""
    if not CHROMIUM.exists():
        raise FileNotFoundError(
            f"Chromium not found at {CHROMIUM}: the Web UI tests drive a real browser. Install "
            "it with `apt-get install -y chromium` (.ci/run does) or set CHROMIUM to its path."
        )
    return CHROMIUM


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium, closed on exit."""
    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(executable), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def _local_only(route: Route) -> None:
    host = urlsplit(route.request.url).hostname or ""
    if host in LOCAL_HOSTS or route.request.url.startswith(("data:", "blob:")):
        await route.continue_()
    else:
        await route.abort("blockedbyclient")


async def open_page(browser: Browser, url: str, timeout: float = TEXT_TIMEOUT) -> Page:
    """A new page (own context: no state shared with other pages) at ``url``, loaded.

    Waits for the network to go quiet when it does; callers then wait for the text they expect
    (``wait_for_text``), which is what says a single-page app has rendered.
    """
    context = await browser.new_context(viewport=VIEWPORT)
    await context.route("**/*", _local_only)
    page = await context.new_page()
    page.set_default_timeout(timeout * 1000)
    await page.goto(url, wait_until="load")
    await settle(page)
    return page


async def settle(page: Page, timeout: float = 15.0) -> None:
    """Wait (a bounded time) until the page makes no more requests; fine if it never does."""
    try:
        await page.wait_for_load_state("networkidle", timeout=timeout * 1000)
    except PlaywrightTimeoutError:
        pass  # e.g. a page that polls: the text waits decide


async def page_text(page: Page) -> str:
    """What a user can read on the page (``innerText`` of the body, SVG labels included)."""
    text: str = await page.evaluate("() => document.body.innerText")
    return text


async def wait_for_text(page: Page, *texts: str, timeout: float = TEXT_TIMEOUT) -> str:
    """Wait until the page shows every one of ``texts``; returns the page text.

    Raises ``AssertionError`` naming what is missing (and what the page shows instead).
    """
    try:
        await page.wait_for_function(
            "texts => texts.every(t => document.body.innerText.includes(t))",
            arg=list(texts),
            timeout=timeout * 1000,
            polling=250,
        )
    except PlaywrightTimeoutError:
        shown = await page_text(page)
        missing = [t for t in texts if t not in shown]
        raise AssertionError(
            f"after {timeout:.0f}s {page.url} does not show {missing!r}; it shows:\n"
            + _excerpt(shown)
        ) from None
    return await page_text(page)


def _excerpt(text: str, limit: int = 6000) -> str:
    text = "\n".join(line for line in text.splitlines() if line.strip())
    return text if len(text) <= limit else text[:limit] + "\n[...]"


async def screenshot(page: Page, path: Path) -> Path:
    """A PNG of the viewport (the Web UI scrolls inside its own panes, not the document)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(path), full_page=True)
    return path
