"""The rendered book in a real headless Chromium, with no network: every page (math typeset,
figures loaded, nothing wider than the column, no console error) and the browser explorers of
chapters 2 and 6, from file:// and served over http.

Uses the session's one smoke-profile build (``built_book``, tests/book_build.py). Needs
Chromium (``bash .ci/book_setup.sh`` installs it); without it these tests skip, except in CI.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from book_build import TOC_ENTRIES, built_book  # noqa: F401 - built_book is a fixture
from chromium_cdp import EXPLORER_MOUNTED, FLAGS, Browser, require_chromium
from fwbook.cli import book_request

pytestmark = pytest.mark.slow  # every test here needs the book build
# the DevTools client's flags; each run below sets its own window size
CHROMIUM_FLAGS = [flag for flag in FLAGS if not flag.startswith("--window-size")]

HARNESS = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>fwbook page check</title></head>
<body><pre id="result">pending</pre>
<script>
const pages = JSON.parse(decodeURIComponent(location.hash.slice(1)));
const results = {};
const sleep = ms => new Promise(r => setTimeout(r, ms));
function load(frame, url) {
  return new Promise(resolve => { frame.onload = () => resolve(); frame.src = url; });
}
function describe(el) {
  const classes = typeof el.className === "string" ? el.className.trim().split(/\\s+/)
    .slice(0, 2).join(".") : "";
  return `${el.tagName.toLowerCase()}${classes ? "." + classes : ""} "` +
    (el.textContent || "").trim().replace(/\\s+/g, " ").slice(0, 60) + '"';
}
// what a reader sees in the content column at this width: images and their alt text,
// figures and their captions, and anything wider than the column (overflowing it, or
// scrolling sideways inside it)
function layout(doc, win) {
  const article = doc.querySelector("article.bd-article") || doc.querySelector("main");
  const column = article.getBoundingClientRect();
  const visible = el => el.getClientRects().length > 0 &&
    win.getComputedStyle(el).visibility !== "hidden";
  const images = [...article.querySelectorAll("img")].filter(visible);
  const pathLike = alt => /^\\s*$/.test(alt) || /[\\/]/.test(alt) ||
    /\\.(png|jpe?g|svg|gif|webp)\\s*$/i.test(alt) || /^[0-9a-f]{16,}$/i.test(alt.trim());
  // what a reader sees after opening every collapsed cell must fit too
  article.querySelectorAll("details").forEach(details => { details.open = true; });
  const wide = [];
  for (const el of article.querySelectorAll("*")) {
    if (!visible(el)) continue;
    const rect = el.getBoundingClientRect();
    const overflowX = win.getComputedStyle(el).overflowX;
    const scrolls = (overflowX === "auto" || overflowX === "scroll") &&
      el.scrollWidth > el.clientWidth + 1;
    if (rect.right > column.right + 1 || rect.left < column.left - 1 || scrolls) {
      wide.push(describe(el) + ` ${Math.round(scrolls ? el.scrollWidth : rect.width)}px`);
    }
  }
  return {
    column_width: Math.round(column.width),
    bad_alt: images.filter(img => pathLike(img.getAttribute("alt") || ""))
      .map(img => `${img.getAttribute("src")} alt=${JSON.stringify(img.getAttribute("alt"))}`),
    uncaptioned: images.filter(img => {
      const figure = img.closest("figure");
      return !figure || !figure.querySelector("figcaption");
    }).map(img => img.getAttribute("src")),
    too_wide: wide.slice(0, 12),
    too_wide_count: wide.length,
  };
}
async function check(url) {
  const frame = document.createElement("iframe");
  frame.style.width = "1280px"; frame.style.height = "3000px";
  document.body.appendChild(frame);
  await load(frame, url);
  const win = frame.contentWindow, doc = frame.contentDocument;
  const hasMath = doc.querySelectorAll(".math").length > 0;
  for (let i = 0; i < 100 && hasMath; i++) {  // wait for MathJax's first typeset
    if (win.MathJax && win.MathJax.startup && win.MathJax.startup.promise) {
      await win.MathJax.startup.promise; break;
    }
    await sleep(100);
  }
  const images = [...doc.images];
  images.forEach(img => { img.loading = "eager"; });
  await Promise.all(images.map(img => img.complete ? null : new Promise(r => {
    img.addEventListener("load", r); img.addEventListener("error", r); setTimeout(r, 5000);
  })));
  await sleep(300);
  const math = [...doc.querySelectorAll(".math")];
  const text = doc.body.innerText;
  const result = {
    title: doc.title,
    math: math.length,
    math_typeset: math.filter(el => el.querySelector("mjx-container")).length,
    mjx_containers: doc.querySelectorAll("mjx-container").length,
    raw_tex: ["\\\\(", "\\\\[", "$$"].filter(s => text.includes(s)),
    traceback: text.includes("Traceback"),
    images: images.map(img => ({src: img.getAttribute("src"), width: img.naturalWidth,
                               complete: img.complete})),
    sidebar: [...doc.querySelectorAll(".bd-sidebar-primary a")].map(a => a.href),
    text_length: text.length,
    ...layout(doc, win),
  };
  frame.remove();
  return result;
}
(async () => {
  for (const page of pages) {
    try { results[page] = await check(page); }
    catch (error) { results[page] = {error: String(error)}; }
  }
  document.getElementById("result").textContent = JSON.stringify(results);
})();
</script></body></html>
"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    failures: list = []

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def send_error(self, code, message=None, explain=None):
        if not self.path.endswith("favicon.ico"):
            type(self).failures.append(f"{code} {self.path}")
        super().send_error(code, message, explain)


@pytest.fixture(scope="module")
def served_book(built_book):
    handler = type("Handler", (_QuietHandler,), {"failures": []})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(built_book.html_dir)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def _run_chromium(chromium: str, arguments: list[str], profile_dir: Path) -> str:
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", *arguments]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"chromium failed: {result.stderr[-2000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def browser_report(built_book, served_book, tmp_path_factory):
    chromium = require_chromium()
    base, handler = served_book
    (built_book.html_dir / "_fwbook_check.html").write_text(HARNESS, encoding="utf-8")
    pages = [f"{base}/{entry}.html" for entry in TOC_ENTRIES]
    url = f"{base}/_fwbook_check.html#" + json.dumps(pages).replace(" ", "")
    profile_dir = tmp_path_factory.mktemp("chromium-profile")
    dom = _run_chromium(chromium, ["--virtual-time-budget=120000", "--window-size=1400,1000",
                                   "--dump-dom", url], profile_dir)
    match = re.search(r'<pre id="result">(.*?)</pre>', dom, re.DOTALL)
    assert match and match.group(1) != "pending", f"the check page did not finish:\n{dom[-2000:]}"
    import html as html_module

    report = json.loads(html_module.unescape(match.group(1)))
    screenshots = os.environ.get("FWBOOK_SCREENSHOT_DIR")
    if screenshots:  # for a human to look at: FWBOOK_SCREENSHOT_DIR=shots pytest ...
        Path(screenshots).mkdir(parents=True, exist_ok=True)
        (Path(screenshots) / "report.json").write_text(json.dumps(report, indent=1))
        for entry in TOC_ENTRIES:
            target = Path(screenshots) / (entry.replace("/", "__") + ".png")
            _run_chromium(chromium, ["--virtual-time-budget=20000", "--window-size=1280,2600",
                                     f"--screenshot={target}", f"{base}/{entry}.html"],
                          profile_dir)
    return {"pages": {entry: report[page] for entry, page in zip(TOC_ENTRIES, pages)},
            "base": base, "failures": list(handler.failures)}


@pytest.mark.parametrize("entry", TOC_ENTRIES)
def test_page_in_browser(browser_report, entry):
    page = browser_report["pages"][entry]
    assert "error" not in page, page.get("error")
    assert page["text_length"] > 200, f"{entry} rendered almost no text"
    assert not page["traceback"], f"{entry} shows a Traceback"
    # math: every .math element typeset by the local MathJax, no raw TeX left visible
    assert page["math_typeset"] == page["math"], (
        f"{entry}: {page['math'] - page['math_typeset']} of {page['math']} formulas not typeset")
    assert not page["raw_tex"], f"{entry}: raw TeX delimiters {page['raw_tex']} in the text"
    if page["math"] or entry == "book/intro":  # the landing page shows Eq. 1
        assert page["mjx_containers"] > 0, f"{entry}: no MathJax output at all"
    broken = [image["src"] for image in page["images"] if not image["width"] > 0]
    assert not broken, f"{entry}: images that did not load: {broken}"
    if book_request.CHAPTER_PATTERN.match(entry):
        assert page["images"], f"{entry}: a chapter with no figure"
    # the sidebar lists every page of _toc.yml
    base = browser_report["base"]
    linked = {urlparse(href).path.lstrip("/").removesuffix(".html") for href in page["sidebar"]
              if href.startswith(base)}
    missing = [other for other in TOC_ENTRIES if other not in linked]
    assert not missing, f"{entry}: sidebar does not list {missing}"


@pytest.mark.parametrize("entry", TOC_ENTRIES)
def test_page_reads_like_a_paper_at_1280px(browser_report, entry):
    """Every image has descriptive alt text and a caption; nothing is wider than the column."""
    page = browser_report["pages"][entry]
    assert "error" not in page, page.get("error")
    assert page["column_width"] > 500, f"{entry}: content column {page['column_width']} px"
    assert not page["bad_alt"], f"{entry}: images with empty or path-like alt text: " + \
        "; ".join(page["bad_alt"])
    assert not page["uncaptioned"], f"{entry}: figures without a caption: {page['uncaptioned']}"
    assert not page["too_wide_count"], (
        f"{entry}: {page['too_wide_count']} elements wider than the {page['column_width']} px "
        f"content column at 1280 px, e.g.\n" + "\n".join(page["too_wide"]))


def test_browser_requests_all_succeeded(browser_report):
    assert not browser_report["failures"], (
        "the pages requested files that the build does not have: "
        + ", ".join(browser_report["failures"]))


# --------------------------------------------------------------------------------------------
# the browser explorers (chapters 6 and 2): in the rendered book, from file:// and served


def _page(chapter: str) -> str:
    return next(entry for entry in TOC_ENTRIES if entry.endswith(chapter)) + ".html"


@pytest.fixture(scope="module")
def cdp_browser(built_book, tmp_path_factory):
    with Browser(require_chromium(), tmp_path_factory.mktemp("cdp-profile")) as browser:
        yield browser


def _open_explorer(browser, url: str) -> None:
    browser.open(url, until=EXPLORER_MOUNTED)


def _explorer_requests_stay_local(browser, base: str) -> None:
    outside = [url for url in browser.requested_urls()
               if not url.startswith((base + "/", "data:", "about:"))]
    assert not outside, f"the page requested {outside}"


def test_no_console_errors_on_any_page(built_book, served_book, cdp_browser):
    """Every page, from file:// and served: no uncaught exception (a script that does not parse
    included, as sphinx-thebe's twice-listed ``const THEBE_JS_URL`` did), no console.error,
    no file that failed to load."""
    errors = {}
    for base in (built_book.html_dir.as_uri(), served_book[0]):
        for entry in TOC_ENTRIES:
            cdp_browser.open(f"{base}/{entry}.html", until="document.readyState === 'complete'")
            cdp_browser.evaluate("new Promise(done => setTimeout(done, 300))", await_promise=True)
            if cdp_browser.console_errors():
                errors[f"{base}/{entry}.html"] = cdp_browser.console_errors()
    assert not errors, json.dumps(errors, indent=1)


def test_explorer_assets_ship_with_the_book(built_book):
    from fwbook.chapters import explorer

    static = built_book.html_dir / "_static"
    script, weights = static / explorer.SCRIPT_NAME, static / explorer.WEIGHTS_NAME
    assert script.read_text(encoding="utf-8") == explorer.script_text()
    assert script.stat().st_size + weights.stat().st_size <= explorer.MAX_ASSET_BYTES
    for chapter, kind in (("06_what_memory_attends_to", "attention"),
                          ("02_fast_weights_equation", "fast-weights")):
        page = (built_book.html_dir / _page(chapter)).read_text(encoding="utf-8")
        assert page.count(f'data-fw-kind="{kind}"') == 1, chapter
        assert "application/vnd.jupyter.widget-view+json" not in page


def test_attention_explorer_in_the_book(built_book, served_book, cdp_browser):
    import torch

    from fwbook.chapters import explorer
    from fwbook.core.data import decode, encode

    _, model = explorer.trained_model()  # the committed model the explorer ships

    def expected(text):
        with torch.no_grad():
            return decode(model(encode(text).unsqueeze(0)).argmax(1)[0])

    for base in (built_book.html_dir.as_uri(), served_book[0]):
        _open_explorer(cdp_browser, f"{base}/{_page('06_what_memory_attends_to')}?seq=d4k2a7z1??z")
        answer = "document.getElementById('fw-answer').dataset.answer"
        assert cdp_browser.evaluate(answer) == expected("d4k2a7z1??z"), base
        cdp_browser.type_into("#fw-input", "c9k8j3f1??f")
        assert cdp_browser.evaluate(answer) == expected("c9k8j3f1??f"), base
        cdp_browser.type_into("#fw-input", "c9k8j3f1??x")
        assert "'x' is not among the stored keys" in cdp_browser.evaluate(
            "document.getElementById('fw-message').textContent")
        assert cdp_browser.evaluate(answer) is None
        # the static figures stay on the page for print
        assert cdp_browser.evaluate("document.querySelectorAll('img').length") >= 4
        assert not cdp_browser.console_errors(), base
        _explorer_requests_stay_local(cdp_browser, base)


def test_fast_weights_explorer_in_the_book(built_book, served_book, cdp_browser):
    for base in (built_book.html_dir.as_uri(), served_book[0]):
        _open_explorer(cdp_browser, f"{base}/{_page('02_fast_weights_equation')}"
                                    f"?seq=a1b2c3d4??b&lambda=0.5")
        assert cdp_browser.evaluate("document.getElementById('fw-lambda').value") == "0.5"
        norm = "Number(document.querySelector('#fw-heatmap table').dataset.norm)"
        before = cdp_browser.evaluate(norm)
        cdp_browser.evaluate("(() => { const e = document.getElementById('fw-lambda'); "
                             "e.value = 1; e.dispatchEvent(new Event('input')); })()")
        after = cdp_browser.evaluate(norm)
        assert after > before > 0  # λ = 1 forgets nothing: a larger A(t)
        labels = cdp_browser.evaluate(
            "[...document.querySelectorAll('#fw-model option')].map(o => o.text)")
        assert labels[0].startswith("untrained, seed 0") and labels[1].startswith("trained")
        assert not cdp_browser.console_errors(), base
        _explorer_requests_stay_local(cdp_browser, base)
