"""A real headless Chromium (Debian's ``chromium`` package, ``make browser`` installs it),
driven by Playwright pointed at the system browser — no browser download."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    assert executable, "the chromium browser is not installed: run `make browser` (apt-get install -y chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    """Where screenshots go: a temporary dir (printed), and docs/images when
    EVALKIT_SCREENSHOTS names it (the README's pictures)."""
    return tmp_path_factory.mktemp("screenshots")


class Opened:
    def __init__(self, page: Any, errors: list[str]) -> None:
        self.page, self.errors = page, errors

    def count_text(self, element_id: str) -> str:
        return self.page.locator(f"#{element_id}").inner_text()

    def row_ids(self, list_id: str) -> list[str]:
        return self.page.eval_on_selector_all(f"#{list_id} .row .rid", "els => els.map(e => e.textContent)")

    def screenshot(self, artifacts: Path, name: str) -> Path:
        path = artifacts / name
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.screenshot(path=str(path), full_page=True)
        target = os.environ.get("EVALKIT_SCREENSHOTS")
        if target:
            dest = (REPO / target) if not Path(target).is_absolute() else Path(target)
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest / name)
        print(f"screenshot: {path}")
        return path


@pytest.fixture
def open_page(browser):
    pages = []

    def opener(path: Path, *, width: int = 1280, height: int = 900) -> Opened:
        page = browser.new_page(viewport={"width": width, "height": height})
        pages.append(page)
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: errors.append(f"network request: {r.url}") if not r.url.startswith(("file:", "data:", "about:")) else None)
        page.goto(Path(path).resolve().as_uri())
        page.wait_for_load_state("load")
        return Opened(page, errors)

    yield opener
    for page in pages:
        page.close()
