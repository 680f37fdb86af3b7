"""A real browser on a real server: `cryokb serve` on the demo database, driven by Playwright.

Headless Chromium (Debian's chromium package, at /usr/bin/chromium or $CRYOKB_CHROMIUM;
`playwright install` is never needed) opens the pages a researcher would: the home page,
an evidence view, a facet, a search, the heat map and the concept graph. Every page
must render its content with no console error and no failed request, and none may
load anything from another site. Screenshots go to docs/screenshots/ with
CRYOKB_SCREENSHOTS=1 (for README), otherwise to a temporary folder.

Skipped, with the reason, when Playwright or Chromium is not installed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CRYOKB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="Playwright for Python is not installed (pip install playwright)"),
    pytest.mark.skipif(not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)),
                       reason=f"no Chromium at {CHROMIUM} (apt-get install chromium, or set CRYOKB_CHROMIUM)"),
]


def _load_fixture_builder():
    """tests/ is not a package: take make_kb from test_publish.py by its file."""
    spec = importlib.util.spec_from_file_location("cryokb_test_publish", Path(__file__).parent / "test_publish.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`cryokb serve` in a subprocess, on a free loopback port, until stopped."""

    def __init__(self, db_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kb.cli", "serve", "--db", str(db_path), "--port", str(self.port), "-q"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/-/versions.json", timeout=5).read()
                return
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"cryokb serve exited: {self.process.stderr.read().decode()[-2000:]}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("cryokb serve did not answer within 60 s")
                time.sleep(0.3)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """The demo knowledge base as `cryokb demo` builds it from the shipped sample records."""
    db = tmp_path_factory.mktemp("browser") / "cryokb-demo.db"
    subprocess.run([sys.executable, "-m", "kb.cli", "demo", "--no-serve", "--db", str(db), "-q"],
                   cwd=ROOT, check=True, timeout=600)
    server = Server(db)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """A knowledge base holding a title with a <script> in it."""
    db = _load_fixture_builder().make_kb(tmp_path_factory.mktemp("hostile") / "hostile.db")
    server = Server(db)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    if os.environ.get("CRYOKB_SCREENSHOTS") == "1":
        folder = ROOT / "docs" / "screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    return tmp_path_factory.mktemp("screenshots")


class Watched:
    """A page that records console errors, page errors, failed and off-site requests, and dialogs."""

    def __init__(self, browser, base_url):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=base_url)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))
        self.page.on("request", self._check_host)
        self.page.on("dialog", self._dialog)

    def _check_host(self, request):
        if not request.url.startswith(("http://127.0.0.1:", "data:", "about:")):
            self.problems.append(f"off-site request: {request.url}")

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, path):
        response = self.page.goto(path, wait_until="networkidle")
        assert response is not None and response.status == 200, f"{path}: {response and response.status}"
        return self.page

    def close(self):
        self.context.close()


@pytest.fixture
def tab(browser, demo_server):
    watched = Watched(browser, demo_server.url)
    yield watched
    watched.close()
    assert watched.problems == []
    assert watched.dialogs == []


def test_home_page_names_the_knowledge_base_and_warns_the_data_is_synthetic(tab, shots):
    page = tab.open("/")
    assert "cryokb" in page.title()
    assert page.locator(".cryokb-synthetic").is_visible()
    assert page.locator(".cryokb-nav a", has_text="Concept graph").count() == 1
    page.screenshot(path=str(shots / "home.png"), full_page=True)


def test_the_evidence_by_lesion_view_lists_lesion_types_with_their_studies(tab, shots):
    page = tab.open("/cryokb/evidence_by_lesion")
    rows = page.locator("table.rows-and-columns tbody tr")
    assert rows.count() >= 3
    assert page.locator("td.col-studies").first.inner_text().strip().isdigit()
    assert page.locator(".cryokb-synthetic").is_visible()
    page.screenshot(path=str(shots / "evidence_by_lesion.png"), full_page=False)


def test_a_lesion_facet_narrows_the_articles(tab, shots):
    page = tab.open("/cryokb/articles")
    before = page.locator("table.rows-and-columns tbody tr").count()
    facet = page.locator(".facet-info[data-column='lesion_types'] li a").first
    label = facet.inner_text()
    facet.click()
    page.wait_for_load_state("networkidle")
    assert "_concept=" in page.url
    after = page.locator("table.rows-and-columns tbody tr").count()
    assert 0 < after < before, label
    pubmed = page.locator("td.col-pmid a.cryokb-pubmed").first
    assert pubmed.get_attribute("href").startswith("https://pubmed.ncbi.nlm.nih.gov/")
    page.screenshot(path=str(shots / "articles_facet.png"), full_page=True)


def test_a_full_text_search_finds_sentences(tab, shots):
    page = tab.open("/cryokb/sentences")
    page.fill("input[name=_search]", "complications")
    page.press("input[name=_search]", "Enter")
    page.wait_for_load_state("networkidle")
    texts = page.locator("td.col-text").all_inner_texts()
    assert texts and all("omplication" in t for t in texts)
    page.screenshot(path=str(shots / "search_sentences.png"), full_page=False)


def test_an_article_page_marks_its_evidence(tab, shots):
    page = tab.open("/cryokb/outcome_sentences")
    page.locator("td.col-pmid a").first.click()
    page.wait_for_load_state("networkidle")
    assert page.locator(".cryokb-abstract").is_visible()
    assert page.locator(".cryokb-abstract mark.cryokb-m").count() >= 1
    assert page.locator("table.cryokb-outcomes tbody tr").count() >= 1
    page.screenshot(path=str(shots / "article.png"), full_page=True)


def test_the_heat_map_renders_and_a_cell_opens_its_articles(tab, shots):
    page = tab.open("/-/cryokb/evidence-map")
    cells = page.locator("svg.cryokb-heatmap rect.cell")
    assert cells.count() >= 3
    box = page.locator("svg.cryokb-heatmap").bounding_box()
    assert box["width"] > 300 and box["height"] > 150
    page.screenshot(path=str(shots / "evidence_map.png"), full_page=True)
    cells.first.click()
    page.wait_for_load_state("networkidle")
    assert page.url.count("_concept=") == 2
    assert page.locator("table.rows-and-columns tbody tr").count() >= 1


def test_outcomes_by_year_draws_both_charts(tab, shots):
    page = tab.open("/-/cryokb/outcomes-by-year")
    assert page.locator("svg.cryokb-chart").count() == 2
    assert page.locator("svg.cryokb-chart rect").count() >= 3
    page.screenshot(path=str(shots / "outcomes_by_year.png"), full_page=True)


def test_the_concept_graph_pans_zooms_highlights_and_lists_articles(tab, shots):
    page = tab.open("/-/cryokb/graph")
    svg = page.locator("#cryokb-graph")
    assert page.locator("#cryokb-graph .node").count() >= 5
    start = svg.get_attribute("viewBox")
    page.click("button[data-zoom=in]")
    zoomed = svg.get_attribute("viewBox")
    assert float(zoomed.split()[2]) < float(start.split()[2])
    page.click("button[data-zoom=reset]")
    assert svg.get_attribute("viewBox") == start
    svg.scroll_into_view_if_needed()
    box = svg.bounding_box()
    page.mouse.move(box["x"] + box["width"] - 15, box["y"] + 15)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] - 115, box["y"] + 65, steps=5)
    page.mouse.up()
    assert svg.get_attribute("viewBox") != start
    page.click("button[data-zoom=reset]")
    biggest = max(page.locator("#cryokb-graph .node").all(), key=lambda n: int(n.get_attribute("data-articles")))
    biggest.locator("circle").hover()
    assert "focus" in svg.get_attribute("class")
    assert page.locator("#cryokb-graph .edge.on").count() >= 1
    biggest.locator("circle").click()
    page.wait_for_selector("#cryokb-panel ol li a")
    assert page.locator("#cryokb-panel ol li").count() >= 1
    page.screenshot(path=str(shots / "graph.png"), full_page=False)


def test_a_hostile_title_stays_text_in_the_browser(browser, hostile_server):
    watched = Watched(browser, hostile_server.url)
    try:
        page = watched.open("/cryokb/articles/91000004")
        assert "<script>alert(1)</script>" in page.locator(".cryokb-title").inner_text()
        page = watched.open("/-/cryokb/graph")
        page.locator("#cryokb-graph .node[data-id=osteoid_osteoma] circle").click()
        page.wait_for_selector("#cryokb-panel ol li a")
        assert "<script>alert(1)</script>" in page.locator("#cryokb-panel").inner_text()
        watched.open("/cryokb/articles?_search=osteoid")
        watched.open("/-/cryokb/outcomes-by-year?measure=clinical_success")
        assert watched.dialogs == []
        assert watched.problems == []
    finally:
        watched.close()
