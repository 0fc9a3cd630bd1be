"""The in-browser explorers (fwbook.chapters.explorer, explorer_*.js) against PyTorch, in headless
Chromium.

The pages here are the notebook outputs' own HTML (``attention_html``, ``fast_weights_html``)
in a minimal page next to the ``_static/`` assets that the book build writes, opened from
``file://`` and served over http; tests/test_book.py checks the same explorers inside the
rendered book. One Chromium for the module, driven over the DevTools protocol.
"""

from __future__ import annotations

import functools
import http.server
import json
import threading
from urllib.parse import quote

import pytest
import torch

from chromium_cdp import EXPLORER_MOUNTED, Browser, require_chromium
from fwbook.chapters import ch06_attention as attention
from fwbook.chapters import explorer
from fwbook.chapters import widgets
from fwbook.core.data import decode, encode
from fwbook.experiments import attention_runs

PAGE = """<!DOCTYPE html>
<html data-content_root="./"><head><meta charset="utf-8"><title>explorer check</title></head>
<body>{body}</body></html>
"""
SEQUENCES = 200  # test-split sequences compared with PyTorch


@pytest.fixture(scope="module")
def trained():
    return explorer.trained_model()  # (record, model)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("explorer-site")
    assets = explorer.write_assets(root / "_static")
    (root / "attention.html").write_text(PAGE.format(body=explorer.attention_html()),
                                         encoding="utf-8")
    untrained = widgets.untrained_model(20, seed=0)
    (root / "fast_weights.html").write_text(
        PAGE.format(body=explorer.fast_weights_html(untrained, label="untrained, seed 0")),
        encoding="utf-8")
    return {"root": root, "assets": assets, "untrained": untrained}


@pytest.fixture(scope="module")
def served(site):
    handler = functools.partial(_Quiet, directory=str(site["root"]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with Browser(require_chromium(), tmp_path_factory.mktemp("cdp-profile")) as opened:
        yield opened


def _open(browser, url: str) -> None:
    browser.open(url, until=EXPLORER_MOUNTED)


def _torch_answer(model, text: str) -> tuple[str, float, list[float]]:
    weights, logits = attention.query_weights(model, encode(text).unsqueeze(0))
    probabilities = torch.softmax(logits, 1)[0]
    best = int(probabilities.argmax())
    return decode(torch.tensor(best)), float(probabilities[best]), weights[0].tolist()


def _shown(browser) -> dict:
    return browser.evaluate("""(() => {
      const answer = document.getElementById('fw-answer');
      return {answer: answer.dataset.answer || null, probability: answer.dataset.probability || null,
              text: answer.textContent, message: document.getElementById('fw-message').textContent,
              state: document.querySelector('.fw-explorer').dataset.fwState,
              query_row: [...document.querySelectorAll('tr.fw-query td')]
                           .map(td => td.dataset.value === undefined ? null : Number(td.dataset.value))};
    })()""")


# ------------------------------------------------------------------------------------------
# the assets


def test_assets_are_small_exact_and_reproducible(site, trained, tmp_path):
    _, model = trained
    script, weights = site["assets"]["script"], site["assets"]["weights"]
    size = script.stat().st_size + weights.stat().st_size
    print(f"\nexplorer assets: script {script.stat().st_size:,} B + weights "
          f"{weights.stat().st_size:,} B = {size:,} B")
    assert size <= explorer.MAX_ASSET_BYTES
    assert script.read_text(encoding="utf-8") == explorer.script_text()
    text = weights.read_text(encoding="utf-8")
    prefix = 'window.FWBOOK_MODELS["trained"] = '
    line = next(line for line in text.splitlines() if line.startswith(prefix))
    spec = json.loads(line[len(prefix):].rstrip(";"))
    state = model.state_dict()
    assert set(spec["params"]) == {key for key in state if not key.endswith("num_batches_tracked")}
    for key, encoded in spec["params"].items():
        assert torch.equal(explorer.decode_tensor(encoded), state[key]), key  # bit-exact
    assert spec["config"] == model.config.to_dict() and spec["num_pairs"] == 4
    again = explorer.write_assets(tmp_path)
    assert again["weights"].read_bytes() == weights.read_bytes()


def test_only_fast_weights_models_are_exported():
    from fwbook.core.models import ModelConfig, build_model

    with pytest.raises(ValueError, match="fast-weights models only"):
        explorer.model_spec(build_model(ModelConfig(model="ln_irnn")), "x", "x")


# ------------------------------------------------------------------------------------------
# chapter 6: the attention explorer


def test_browser_equals_pytorch_on_200_test_sequences(browser, site, trained):
    record, model = trained
    test = attention_runs.record_test_split(record)
    tokens = test.inputs[:SEQUENCES]
    texts = decode(tokens)
    weights, logits = attention.query_weights(model, tokens)  # (N, T-1), (N, V)
    probabilities = torch.softmax(logits, 1)
    _open(browser, (site["root"] / "attention.html").as_uri())
    results = browser.evaluate(f"fwbookExplorer.evaluate('trained', {json.dumps(texts)})")
    assert len(results) == SEQUENCES
    predicted = [result["prediction"] for result in results]
    assert "".join(predicted) == decode(logits.argmax(1))  # 200 of 200 equal
    browser_weights = torch.tensor([result["weights"] for result in results], dtype=torch.float64)
    weight_error = float((browser_weights - weights.double()).abs().max())
    best = probabilities.max(1).values.double()
    probability_error = float((torch.tensor([r["probability"] for r in results]) - best).abs().max())
    print(f"\n{SEQUENCES} sequences: predictions equal; max |Δ weight| = {weight_error:.2e}, "
          f"max |Δ probability| = {probability_error:.2e}")
    assert weight_error < 1e-4
    assert probability_error < 1e-4
    assert float(weights.abs().max()) > 0.1  # the comparison is not between near-zero numbers


def test_sequence_from_the_address_and_typing(browser, site, trained):
    _, model = trained
    start = "d4k2a7z1??a"
    _open(browser, (site["root"] / "attention.html").as_uri() + "?seq=" + quote(start, safe="?"))
    assert browser.evaluate("document.getElementById('fw-input').value") == start
    answer, probability, weights = _torch_answer(model, start)
    shown = _shown(browser)
    assert shown["state"] == "ok" and shown["message"] == ""
    assert shown["answer"] == answer
    assert abs(float(shown["probability"]) - probability) < 1e-4
    assert f"answers {answer} with probability {100 * probability:.1f}%" in shown["text"]
    # the heatmap's query row is the query step's Eq. 4 weights
    assert max(abs(a - b) for a, b in zip(shown["query_row"], weights)) < 1e-4

    for typed in ("c9k8j3f1??c", "q0w5e9r3??w"):
        browser.type_into("#fw-input", typed)
        assert browser.evaluate("document.getElementById('fw-input').value") == typed
        answer, probability, weights = _torch_answer(model, typed)
        shown = _shown(browser)
        assert (shown["state"], shown["answer"]) == ("ok", answer), typed
        assert max(abs(a - b) for a, b in zip(shown["query_row"], weights)) < 1e-4
    assert not browser.console_errors()


@pytest.mark.parametrize("text, message", [
    ("c9k8j3f1??x", "The query key 'x' is not among the stored keys (c, k, j, f)"),
    ("c9k8j3f1??C", "'C' (character 11) is not a symbol the model knows (letters are lower case)"),
    ("c9k8j3f1!?c", "'!' (character 9) is not a symbol the model knows"),
    ("c9k8j3??c", "Wrong length: the model was trained on sequences of 11 symbols"),
    ("c9k8j3f1e5??c", "this one has 13"),
    ("c9c8j3f1??c", "The key 'c' is stored twice"),
    ("9ck8j3f1??c", "Pair 1 is '9c'"),
    ("c9k8j3f1a1c", "After the 4 pairs come the two query marks ??"),
    ("", "Type a sequence such as c9k8j3f1??c"),
])
def test_invalid_input_shows_a_message(browser, site, text, message):
    _open(browser, (site["root"] / "attention.html").as_uri())
    assert _shown(browser)["state"] == "ok"
    browser.type_into("#fw-input", text)
    shown = _shown(browser)
    assert message in shown["message"], shown["message"]
    assert shown["state"] == "invalid"
    assert shown["answer"] is None and shown["text"] == "—"  # no stale answer
    assert browser.evaluate("document.getElementById('fw-heatmap').classList.contains('fw-stale')")
    assert not browser.console_errors()
    browser.type_into("#fw-input", "c9k8j3f1??c")  # and it recovers
    assert _shown(browser)["state"] == "ok"


def test_no_network_request_from_file_or_server(browser, site, served):
    for base in (site["root"].as_uri(), served):
        _open(browser, f"{base}/attention.html?seq=c9k8j3f1??c")
        browser.type_into("#fw-input", "a1b2c3d4??d")
        assert _shown(browser)["state"] == "ok"
        urls = browser.requested_urls()
        assert any(url.endswith("_static/fwbook_explorer_weights.js") for url in urls), urls
        outside = [url for url in urls if not url.startswith(base + "/")]
        assert not outside, f"requests outside {base}: {outside}"


# ------------------------------------------------------------------------------------------
# chapter 2: A(t) with sliders for λ and η


def _set_slider(browser, selector: str, value: float) -> None:
    browser.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                     f"e.value = {value}; e.dispatchEvent(new Event('input')); }})()")


def test_fast_weights_explorer_equals_pytorch(browser, site, trained):
    text = "c9k8j3f1??c"
    _open(browser, (site["root"] / "fast_weights.html").as_uri() + "?seq=" + quote(text, safe="?"))
    labels = browser.evaluate("[...document.querySelectorAll('#fw-model option')].map(o => o.text)")
    assert labels[0] == "untrained, seed 0" and labels[1].startswith("trained (chapter 6")
    for decay, fast_lr in ((0.95, 0.5), (0.5, 1.0), (1.0, 0.1)):
        _set_slider(browser, "#fw-lambda", decay)
        _set_slider(browser, "#fw-eta", fast_lr)
        history = widgets.fast_weights_history(text, decay, fast_lr, site["untrained"])
        matrices = torch.tensor(browser.evaluate(
            f"(() => {{ const spec = JSON.parse(document.querySelector('script.fw-explorer-model')"
            f".textContent); const m = fwbookExplorer.loadModel(spec); return fwbookExplorer"
            f".forward(m, fwbookExplorer.encode({json.dumps(text)}), {{decay: {decay}, fastLr: "
            f"{fast_lr}, explicit: true}}).fast.map(a => Array.from(a)); }})()"),
            dtype=torch.float64).reshape(history.fast_weights.shape)
        expected = torch.as_tensor(history.fast_weights, dtype=torch.float64)
        assert float((matrices - expected).abs().max()) < 1e-4 * max(1.0, float(expected.abs().max()))
        # what the page shows: A(T) and its norm at the last step
        norm = float(browser.evaluate("document.querySelector('#fw-heatmap table').dataset.norm"))
        assert abs(norm - float(torch.linalg.matrix_norm(expected[-1]))) < 1e-4 * max(1.0, norm)
        assert browser.evaluate("document.getElementById('fw-answer').textContent") == ""  # untrained

    # the step slider picks A(t) of an earlier step
    _set_slider(browser, "#fw-step", 3)
    norm = float(browser.evaluate("document.querySelector('#fw-heatmap table').dataset.norm"))
    history = widgets.fast_weights_history(text, 1.0, 0.1, site["untrained"])
    assert abs(norm - float(torch.linalg.norm(torch.as_tensor(history.fast_weights[2])))) < 1e-4

    # the trained model, at other λ and η than it was trained with: answer as PyTorch's
    record, model = trained
    browser.evaluate("(() => { const s = document.getElementById('fw-model'); s.value = '1'; "
                     "s.dispatchEvent(new Event('change')); })()")
    for decay, fast_lr in ((0.95, 0.5), (0.3, 0.5), (0.95, 2.0)):
        _set_slider(browser, "#fw-lambda", decay)
        _set_slider(browser, "#fw-eta", fast_lr)
        history = widgets.fast_weights_history(text, decay, fast_lr, model)
        with torch.no_grad():
            logits = model.readout(torch.as_tensor(history.hidden_states[-1]).unsqueeze(0))
        expected = decode(logits.argmax(1)[0])
        assert browser.evaluate("document.getElementById('fw-answer').dataset.answer") == expected
    browser.type_into("#fw-input", "c9k8j3f1??&")
    assert "'&' (character 11) is not a symbol" in browser.evaluate(
        "document.getElementById('fw-message').textContent")
    assert not browser.console_errors()


# ------------------------------------------------------------------------------------------
# the notebook side: live widgets carry the browser explorer for the rendered book


def test_live_attention_explorer_and_its_book_fallback(trained):
    _, model = trained
    live = attention.attention_explorer(model, "c9k8j3f1??c")
    expected, probability, _ = _torch_answer(model, "c9k8j3f1??c")
    assert f"answers {expected} with probability {100 * probability:.1f}%" in live.answer.value
    live.text_box.value = "c9k8j3f1??x"
    assert "must be one of the stored keys" in live.message.value
    live.text_box.value = "c9k8j3??c"
    assert "trained on 11-symbol sequences" in live.message.value
    live.text_box.value = "a1b2c3d4??d"
    assert live.message.value == ""
    assert f"answers {_torch_answer(model, 'a1b2c3d4??d')[0]} " in live.answer.value
    bundle = live._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # the live notebook's view
    assert bundle["text/html"] == explorer.attention_html("c9k8j3f1??c")  # the book's
    assert 'data-fw-kind="attention"' in bundle["text/html"]


def test_fast_weights_widget_carries_the_browser_explorer():
    model = widgets.untrained_model(20, seed=0)
    live = widgets.fast_weights_explorer(model=model)
    assert "text/html" not in live._repr_mimebundle_()
    page = explorer.fast_weights_html(model, label="untrained")
    assert explorer.book_fallback(live, page) is live
    bundle = live._repr_mimebundle_()
    assert bundle["text/html"] == page and "live Jupyter kernel" in bundle["text/plain"]
    assert "</script></div>" in page and page.count("<script") == 2  # inline weights + loader
