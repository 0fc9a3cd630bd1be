"""The book: chapters execute under papermill, jupyter-book renders with -W, and the HTML
works in a real browser with no network.

One smoke-profile build per test session (module-scoped fixture) into a temporary _build.
The browser checks need Chromium (``bash .ci/book_setup.sh`` installs it); without it they
skip with that reason, everything else still runs.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

from fwbook import book

ROOT = book.ROOT
TOC_ENTRIES = book.toc_entries(ROOT)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-extensions",
                  "--mute-audio", "--hide-scrollbars",
                  # no DNS: any page that needed the network would visibly break
                  "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]


def _chromium() -> str | None:
    candidates = [os.environ.get("FWBOOK_CHROMIUM"), "chromium", "chromium-browser",
                  "google-chrome", "google-chrome-stable"]
    for candidate in candidates:
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    output = tmp_path_factory.mktemp("book") / "_build"
    record = book.build(profile="smoke", seed=0, device="cpu", output_dir=output, quiet=True)
    print(f"\nbook build (smoke): chapters {record.chapter_seconds}, "
          f"render {record.render_seconds:.1f} s")
    return record


# --------------------------------------------------------------------------------------------
# the build


def test_toc_lists_existing_sources():
    assert TOC_ENTRIES[0] == "book/intro"
    for entry in TOC_ENTRIES:
        match = book.CHAPTER_PATTERN.match(entry)
        source = ROOT / (f"{entry}.py" if match else f"{entry}.md")
        assert source.is_file(), f"_toc.yml lists {entry} but {source} does not exist"
    assert "01_physiological_motivation" in book.toc_chapters(ROOT)


def test_every_chapter_executed_with_figures_and_no_errors(built_book):
    assert built_book.chapters == book.toc_chapters(ROOT)
    for name in built_book.chapters:
        notebook = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
        injected = [cell for cell in notebook.cells
                    if "injected-parameters" in cell.metadata.get("tags", [])]
        assert injected and "profile = \"smoke\"" in injected[0].source, name
        assert notebook.metadata["fwbook"]["parameters"]["profile"] == "smoke"
        assert "torch" in notebook.metadata["fwbook"]["versions"]
        outputs = [output for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.get("outputs", [])]
        assert not [output for output in outputs if output.output_type == "error"], name
        images = [output for output in outputs if "image/png" in output.get("data", {})]
        assert images, f"chapter {name} shows no figure"
        text = json.dumps(outputs)
        assert "Traceback" not in text, name
    chapter01 = nbformat.read(ROOT / "notebooks" / "01_physiological_motivation.ipynb",
                              as_version=4)
    images = sum("image/png" in output.get("data", {}) for cell in chapter01.cells
                 for output in cell.get("outputs", []))
    assert images == 3  # pattern completion, load, age


# chapters that must show more than one figure under the smoke profile
MIN_FIGURES = {"01_physiological_motivation": 3, "05_results": 2,
               "06_what_memory_attends_to": 4, "07_linear_attention": 2}


@pytest.mark.parametrize("chapter", book.toc_chapters(ROOT))
def test_chapter_follows_the_conventions(built_book, chapter):
    """One parameters cell, a numbered title, the profile printed, its figures drawn."""
    import jupytext

    source = jupytext.read(ROOT / "notebooks" / f"{chapter}.py")
    tagged = [cell for cell in source.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{chapter}: exactly one cell tagged 'parameters'"
    for name in ("profile", "seed", "device"):
        assert f"{name} = " in tagged[0].source, f"{chapter}: no {name} parameter"
    assert source.cells[0].cell_type == "markdown"
    assert source.cells[0].source.lstrip().startswith(f"# {int(chapter[:2])}. "), (
        f"{chapter}: the title should be numbered like the others")
    executed = nbformat.read(ROOT / "notebooks" / f"{chapter}.ipynb", as_version=4)
    outputs = [output for cell in executed.cells if cell.cell_type == "code"
               for output in cell.get("outputs", [])]
    images = sum("image/png" in output.get("data", {}) for output in outputs)
    assert images >= MIN_FIGURES.get(chapter, 1), f"{chapter} shows {images} figures"
    printed = "".join(output.get("text", "") for output in outputs
                      if output.get("output_type") == "stream")
    assert "smoke" in printed, f"{chapter} does not say which profile it ran with"


def test_every_toc_entry_rendered(built_book):
    for entry in TOC_ENTRIES:
        assert (built_book.html_dir / f"{entry}.html").is_file(), entry
    assert (built_book.html_dir / "index.html").is_file()


def test_no_external_resources_required(built_book):
    """No <script>, stylesheet, image, iframe or font comes from the network."""
    pattern = re.compile(
        r"<(script|img|iframe|source|embed)\b[^>]*\bsrc=[\"']((?:https?:)?//[^\"']+)"
        r"|<link\b[^>]*\bhref=[\"']((?:https?:)?//[^\"']+)[^>]*>", re.IGNORECASE)
    offenders = []
    for page in built_book.html_dir.rglob("*.html"):
        for match in pattern.finditer(page.read_text(encoding="utf-8")):
            tag = match.group(0)
            if tag.lower().startswith("<link") and not re.search(
                    r"rel=[\"'](stylesheet|preload|modulepreload|icon)", tag, re.IGNORECASE):
                continue  # plain hyperlinks of <link rel="canonical"> etc. are not loaded
            offenders.append(f"{page.relative_to(built_book.html_dir)}: {tag[:120]}")
    assert not offenders, "pages load resources from the network:\n" + "\n".join(offenders)
    mathjax = built_book.html_dir / "_static" / "mathjax" / "tex-chtml.js"
    assert mathjax.is_file(), "MathJax is not served locally"
    chapter = (built_book.html_dir / "notebooks" / "01_physiological_motivation.html").read_text(
        encoding="utf-8")
    assert "_static/mathjax/tex-chtml.js" in chapter


def test_failing_chapter_is_named(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "99_broken.py").write_text(
        '# %% tags=["parameters"]\nprofile = "quick"\nseed = 0\ndevice = "auto"\n\n'
        '# %%\nraise RuntimeError("deliberately broken")\n', encoding="utf-8")
    with pytest.raises(book.BookBuildError, match=r"99_broken.*RuntimeError.*deliberately"):
        book.execute_chapter("99_broken", profile="smoke", root=tmp_path)


def test_missing_parameters_cell_is_reported(tmp_path):
    source = tmp_path / "01_x.py"
    source.write_text("# %%\nx = 1\n", encoding="utf-8")
    with pytest.raises(book.BookBuildError, match="parameters"):
        book.convert_chapter(source, tmp_path / "01_x.ipynb")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="profile"):
        book.build(profile="fast")
    with pytest.raises(ValueError, match="not one of the chapters"):
        book._resolve("42", ["01_physiological_motivation"])
    with pytest.raises(ValueError, match="_build"):
        book.render(output_dir=tmp_path / "somewhere")


# --------------------------------------------------------------------------------------------
# the browser

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
  const classes = typeof el.className === "string" ? el.className.trim().split(/\s+/)
    .slice(0, 2).join(".") : "";
  return `${el.tagName.toLowerCase()}${classes ? "." + classes : ""} "` +
    (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 60) + '"';
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
  const pathLike = alt => /^\s*$/.test(alt) || /[\\/]/.test(alt) ||
    /\.(png|jpe?g|svg|gif|webp)\s*$/i.test(alt) || /^[0-9a-f]{16,}$/i.test(alt.trim());
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
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI") == "true":  # CI installs it: a missing browser is a failure there
            pytest.fail("Chromium is missing in CI: .ci/book_setup.sh should have installed it")
        pytest.skip("Chromium is not installed (CI installs it with .ci/book_setup.sh; "
                    "locally: apt-get install -y chromium)")
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
    if book.CHAPTER_PATTERN.match(entry):
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


def test_command_line_hook():
    import argparse

    parser = argparse.ArgumentParser(prog="fwbook")
    book.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["book", "--profile", "smoke", "--seed", "2", "--chapters", "01"])
    assert (args.profile, args.seed, args.chapters, args.output_dir) == ("smoke", 2, ["01"], "_build")
    assert callable(args.handler)
    with pytest.raises(SystemExit):
        parser.parse_args(["book", "--profile", "huge"])


def test_config_keeps_the_book_offline():
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["execute"]["execute_notebooks"] == "off"
    assert "sphinx-mathjax-offline" in config["sphinx"]["extra_extensions"]
    sphinx = config["sphinx"]["config"]
    assert not sphinx["mathjax_path"].startswith(("http:", "https:", "//"))
    assert sphinx["nb_ipywidgets_js"] == {}  # no widget JavaScript from a CDN
    assert ["html", "application/vnd.jupyter.widget-view+json", None] in \
        sphinx["nb_mime_priority_overrides"]
    for pattern in (".*", "**/.*", ".venv", "_build", "node_modules", "results", "src",
                    "tests", "README.md"):
        assert pattern in config["exclude_patterns"], pattern


def test_a_chapter_whose_cell_times_out_is_executed_again(monkeypatch, tmp_path, capsys):
    """A lost kernel message makes papermill wait for ever; the cell limit and one retry
    turn that into a second attempt, and a second timeout into a clear build error."""
    import papermill

    calls = []

    def times_out_once(*args, **kwargs):
        calls.append(kwargs["execution_timeout"])
        if len(calls) == 1:
            raise TimeoutError("Cell execution timed out")

    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "01_physiological_motivation.py", tmp_path / "notebooks")
    monkeypatch.setattr(papermill, "execute_notebook", times_out_once)
    target = book.execute_chapter("01_physiological_motivation", "smoke", 0, "cpu", root=tmp_path)
    assert calls == [book.CELL_TIMEOUT_S["smoke"]] * 2
    assert "executing the chapter again" in capsys.readouterr().err
    assert target.is_file()

    def always_times_out(*args, **kwargs):
        raise TimeoutError("Cell execution timed out")

    monkeypatch.setattr(papermill, "execute_notebook", always_times_out)
    with pytest.raises(book.BookBuildError, match="01_physiological_motivation could not be "
                                                  "executed: TimeoutError"):
        book.execute_chapter("01_physiological_motivation", "smoke", 0, "cpu", root=tmp_path)


# --------------------------------------------------------------------------------------------
# publishing: what the HTML ships (the same smoke build, no second execution)


def _figure_names(chapter: str) -> list[str]:
    import jupytext

    notebook = jupytext.read(ROOT / "notebooks" / f"{chapter}.py")
    return [cell.metadata["mystnb"]["figure"]["name"] for cell in notebook.cells
            if "figure" in cell.metadata.get("mystnb", {})]


@pytest.mark.parametrize("chapter", book.toc_chapters(ROOT))
def test_every_figure_is_named_captioned_and_referred_to(built_book, chapter):
    import jupytext

    source = jupytext.read(ROOT / "notebooks" / f"{chapter}.py")
    for cell in source.cells:
        figure = cell.metadata.get("mystnb", {})
        if "figure" in figure:
            assert len(figure["figure"]["caption"]) > 30, figure
            assert len(figure["image"]["alt"]) > 40, figure
            assert "hide-input" in cell.metadata.get("tags", []), figure["figure"]["name"]
    page = (built_book.html_dir / "notebooks" / f"{chapter}.html").read_text(encoding="utf-8")
    names = _figure_names(chapter)
    assert names, f"{chapter} names no figure"
    for name in names:
        assert re.search(rf'<figure[^>]*\bid="{name}"', page), f"{chapter}: no figure {name}"
        assert re.search(rf'href="#{name}"[^>]*>\s*<span class="std std-numref">Fig\. \d',
                         page), f"{chapter}: the prose never refers to {name} with {{numref}}"


def test_no_invisible_widget_state_is_shipped(built_book):
    for page in built_book.html_dir.rglob("*.html"):
        assert "widget-state+json" not in page.read_text(encoding="utf-8"), page.name


def test_download_button_follows_the_config(built_book):
    import yaml

    wanted = yaml.safe_load((ROOT / "_config.yml").read_text())["html"]["use_download_button"]
    page = (built_book.html_dir / "notebooks" / "01_physiological_motivation.html").read_text(
        encoding="utf-8")
    assert ("download-source-button" in page) is bool(wanted)


def test_landing_page_cites_from_the_cff(built_book):
    from fwbook.citation import bibtex_from_cff

    page = (built_book.html_dir / "book" / "intro.html").read_text(encoding="utf-8")
    assert 'id="how-to-cite-this-book"' in page
    import html as html_module

    text = html_module.unescape(re.sub(r"<[^>]+>", "", page))
    assert bibtex_from_cff(ROOT / "CITATION.cff").strip() in text
    assert "CC BY 4.0" in text


def test_buttons_follow_the_repository(built_book, tmp_path, monkeypatch):
    """Rendered where the repository is known (GitHub Actions), the buttons point at files
    that exist: Binder at the source branch (its postBuild writes the .ipynb), Colab at the
    published notebooks branch, edit at the .py source; with no repository, no buttons."""
    from fwbook import book_config

    default = (built_book.html_dir / "notebooks" / "02_fast_weights_equation.html").read_text(
        encoding="utf-8")
    if book_config.find_repository(ROOT) is None:
        assert "mybinder.org" not in default and "source-edit-button" not in default
    for key, value in {"GITHUB_ACTIONS": "true", "GITHUB_REPOSITORY": "someone/fwbook",
                       "GITHUB_SERVER_URL": "https://github.com",
                       "GITHUB_REF_NAME": "main"}.items():
        monkeypatch.setenv(key, value)
    html_dir = book.render(ROOT, tmp_path / "_build", quiet=True)
    page = (html_dir / "notebooks" / "02_fast_weights_equation.html").read_text(encoding="utf-8")
    chapter = "notebooks/02_fast_weights_equation"
    assert f'href="https://github.com/someone/fwbook/edit/main/{chapter}.py"' in page
    assert (f'href="https://colab.research.google.com/github/someone/fwbook/blob/notebooks/'
            f'{chapter}.ipynb"') in page
    assert f'href="https://mybinder.org/v2/gh/someone/fwbook/main?urlpath=lab/tree/{chapter}.ipynb"' in page
    assert 'href="https://github.com/someone/fwbook"' in page
    assert "executablebooks/jupyter-book" not in page


# --------------------------------------------------------------------------------------------
# the browser explorers (chapters 6 and 2): in the rendered book, from file:// and served


def _page(chapter: str) -> str:
    return next(entry for entry in TOC_ENTRIES if entry.endswith(chapter)) + ".html"


@pytest.fixture(scope="module")
def cdp_browser(built_book, tmp_path_factory):
    from chromium_cdp import Browser

    chromium = _chromium()
    if chromium is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is missing in CI: .ci/book_setup.sh should have installed it")
        pytest.skip("Chromium is not installed (locally: apt-get install -y chromium)")
    with Browser(chromium, tmp_path_factory.mktemp("cdp-profile")) as browser:
        yield browser


def _open_explorer(browser, url: str) -> None:
    browser.events.clear()
    browser.navigate(url)
    browser.wait_until("document.querySelector('.fw-explorer') && "
                       "document.querySelector('.fw-explorer').dataset.fwState")


def _page_errors(browser) -> list[str]:
    """Uncaught errors on the page, less sphinx-book-theme's own redeclared THEBE_JS_URL
    (thrown on every page of the book, explorer or not)."""
    return [error for error in browser.console_errors() if "THEBE_JS_URL" not in error]


def _explorer_requests_stay_local(browser, base: str) -> None:
    outside = [url for url in browser.requested_urls()
               if not url.startswith((base + "/", "data:", "about:"))]
    assert not outside, f"the page requested {outside}"


def test_explorer_assets_ship_with_the_book(built_book):
    from fwbook import explorer

    static = built_book.html_dir / "_static"
    script, weights = static / explorer.SCRIPT_NAME, static / explorer.WEIGHTS_NAME
    assert script.read_bytes() == explorer.SCRIPT_SOURCE.read_bytes()
    assert script.stat().st_size + weights.stat().st_size <= explorer.MAX_ASSET_BYTES
    for chapter, kind in (("06_what_memory_attends_to", "attention"),
                          ("02_fast_weights_equation", "fast-weights")):
        page = (built_book.html_dir / _page(chapter)).read_text(encoding="utf-8")
        assert page.count(f'data-fw-kind="{kind}"') == 1, chapter
        assert "application/vnd.jupyter.widget-view+json" not in page


def test_attention_explorer_in_the_book(built_book, served_book, cdp_browser):
    import torch

    from fwbook import explorer
    from fwbook.data import decode, encode

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
        assert not _page_errors(cdp_browser), base
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
        assert not _page_errors(cdp_browser), base
        _explorer_requests_stay_local(cdp_browser, base)
