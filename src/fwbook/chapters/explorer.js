/* fwbook: the in-browser explorers of chapters 2 and 6 (no kernel, no network, works from file://).
 *
 * The forward pass is fwbook.core.models.FastWeightsRNN, written out by hand, in float64 on the
 * float32 weights exported by fwbook.chapters.explorer (window.FWBOOK_MODELS, from
 * fwbook_explorer_weights.js):
 *
 *   (Eq. 2)  h_{s+1}(t+1) = f(LN[W h(t) + C x(t) + A(t) h_s(t+1)]),  h_0(t+1) = f(W h(t) + C x(t))
 *   (Eq. 4)  A(t) h_s = η Σ_τ λ^(t-τ) h(τ) [h(τ)ᵀ h_s]          (the weights are what we show)
 *   (Eq. 1)  A(t+1) = λ A(t) + η h(t+1) h(t+1)ᵀ                    (chapter 2 shows A(t) itself)
 *
 * Time indices as in the paper and models.py: the step reading token t (0-based) turns h(t)
 * into h(t+1); memory slot τ-1 holds h(τ), the state written after reading token τ-1.
 *
 * Page API: every <div class="fw-explorer" data-fw-kind="attention|fast-weights"> is mounted
 * on load; ?seq=... (and ?lambda=, ?eta= for chapter 2) set the initial values. The answer is
 * shown in #fw-answer. window.fwbookExplorer exposes the maths for tests.
 */
(function () {
  "use strict";

  var VOCABULARY = "abcdefghijklmnopqrstuvwxyz0123456789?";
  var LETTERS = VOCABULARY.slice(0, 26);
  var DIGITS = VOCABULARY.slice(26, 36);
  var LN_EPS = 1e-5; // torch.nn.LayerNorm's default

  // ------------------------------------------------------------------ weights

  function decodeTensor(spec) {
    // base64 of little-endian float32, as fwbook.chapters.explorer.encode_tensor writes it
    var binary = atob(spec.data);
    var view = new DataView(new ArrayBuffer(binary.length));
    for (var i = 0; i < binary.length; i++) view.setUint8(i, binary.charCodeAt(i));
    var values = new Float64Array(binary.length / 4);
    for (var j = 0; j < values.length; j++) values[j] = view.getFloat32(4 * j, true);
    return values;
  }

  var modelCache = {};

  function loadModel(spec) {
    if (spec.__loaded) return spec.__loaded;
    var p = spec.params;
    var config = spec.config;
    var model = {
      name: spec.name, label: spec.label, summary: spec.summary || null,
      hidden: config.hidden, vocab: config.vocab_size, classes: config.num_classes,
      decay: config.decay, fastLr: config.fast_lr, innerSteps: config.inner_steps,
      layerNorm: config.layer_norm, numPairs: spec.num_pairs || null,
      C: decodeTensor(p.input_weight),        // (V, H)  Cᵀ: row v is C x for one-hot x = v
      b: decodeTensor(p.bias),                // (H,)
      W: decodeTensor(p["core.recurrent"]),   // (H, H)
      gain: p["core.norm.weight"] ? decodeTensor(p["core.norm.weight"]) : null,  // (H,)
      shift: p["core.norm.bias"] ? decodeTensor(p["core.norm.bias"]) : null,     // (H,)
      readout: p["readout.0.weight"] ? {
        w1: decodeTensor(p["readout.0.weight"]), b1: decodeTensor(p["readout.0.bias"]),  // (100, H)
        w2: decodeTensor(p["readout.2.weight"]), b2: decodeTensor(p["readout.2.bias"]),  // (V, 100)
        hidden: spec.params["readout.0.bias"].shape[0]
      } : null
    };
    Object.defineProperty(spec, "__loaded", {value: model, enumerable: false});
    return model;
  }

  function getModel(name) {
    var models = window.FWBOOK_MODELS || {};
    if (!models[name]) throw new Error("the weights of model '" + name + "' are not loaded");
    if (!modelCache[name]) modelCache[name] = loadModel(models[name]);
    return modelCache[name];
  }

  // ------------------------------------------------------------------ maths

  function layerNorm(x, gain, shift) {
    var n = x.length, mean = 0, variance = 0, i;
    for (i = 0; i < n; i++) mean += x[i];
    mean /= n;
    for (i = 0; i < n; i++) variance += (x[i] - mean) * (x[i] - mean);
    variance /= n; // biased, as torch
    var scale = 1 / Math.sqrt(variance + LN_EPS), out = new Float64Array(n);
    for (i = 0; i < n; i++) out[i] = (x[i] - mean) * scale * gain[i] + shift[i];
    return out;
  }

  function relu(x) {
    var out = new Float64Array(x.length);
    for (var i = 0; i < x.length; i++) out[i] = x[i] > 0 ? x[i] : 0;
    return out;
  }

  function dot(a, b) {
    var s = 0;
    for (var i = 0; i < a.length; i++) s += a[i] * b[i];
    return s;
  }

  function encode(text) {
    var tokens = [];
    for (var i = 0; i < text.length; i++) tokens.push(VOCABULARY.indexOf(text[i]));
    return tokens;
  }

  /* Run the model over `tokens` (symbol indices).
   * options: decay (λ), fastLr (η), explicit (also return A(t), Eq. 1).
   * Returns {hidden: T x (H), weights: T x S x (t) Eq. 4 weights on slots 0..t-1,
   *          fast: T x (H*H) A(t+1) after each step (explicit only), logits, probs}. */
  function forward(model, tokens, options) {
    options = options || {};
    var H = model.hidden;
    var decay = options.decay === undefined ? model.decay : options.decay;
    var fastLr = options.fastLr === undefined ? model.fastLr : options.fastLr;
    var past = [], weightsAll = [], fastAll = [];
    var h = new Float64Array(H); // h(0) = 0
    var A = options.explicit ? new Float64Array(H * H) : null; // A(0) = 0
    for (var t = 0; t < tokens.length; t++) {
      var slow = new Float64Array(H), i, j;
      for (i = 0; i < H; i++) {
        var s = model.C[tokens[t] * H + i] + model.b[i]; // C x(t) + b
        for (j = 0; j < H; j++) s += model.W[i * H + j] * h[j]; // W h(t)
        slow[i] = s;
      }
      var hs = relu(slow); // h_0(t+1) = f(W h(t) + C x(t))
      var stepWeights = [];
      for (var inner = 0; inner < model.innerSteps; inner++) {
        var weights = new Float64Array(past.length), fast = new Float64Array(H);
        for (var tau = 0; tau < past.length; tau++) {
          // (Eq. 4) weight of slot tau: η λ^(t-τ) h(τ)ᵀ h_s(t+1)
          weights[tau] = fastLr * Math.pow(decay, past.length - 1 - tau) * dot(past[tau], hs);
          for (i = 0; i < H; i++) fast[i] += weights[tau] * past[tau][i];
        }
        var preactivation = new Float64Array(H);
        for (i = 0; i < H; i++) preactivation[i] = slow[i] + fast[i];
        // (Eq. 2) h_{s+1}(t+1) = f(LN[W h(t) + C x(t) + A(t) h_s(t+1)])
        hs = relu(model.layerNorm ? layerNorm(preactivation, model.gain, model.shift) : preactivation);
        stepWeights.push(weights);
      }
      h = hs;
      past.push(h);
      weightsAll.push(stepWeights);
      if (A) {
        // (Eq. 1) A(t+1) = λ A(t) + η h(t+1) h(t+1)ᵀ
        var next = new Float64Array(H * H);
        for (i = 0; i < H; i++) for (j = 0; j < H; j++) next[i * H + j] = decay * A[i * H + j] + fastLr * h[i] * h[j];
        A = next;
        fastAll.push(A);
      }
    }
    var result = {hidden: past, weights: weightsAll, fast: A ? fastAll : null, logits: null, probs: null};
    if (model.readout) {
      var r = model.readout, R = r.hidden, hiddenUnits = new Float64Array(R), k;
      for (k = 0; k < R; k++) {
        var a = r.b1[k];
        for (i = 0; i < H; i++) a += r.w1[k * H + i] * h[i];
        hiddenUnits[k] = a > 0 ? a : 0;
      }
      var logits = new Float64Array(model.classes), top = -Infinity;
      for (var c = 0; c < model.classes; c++) {
        var z = r.b2[c];
        for (k = 0; k < R; k++) z += r.w2[c * R + k] * hiddenUnits[k];
        logits[c] = z;
        if (z > top) top = z;
      }
      var probs = new Float64Array(model.classes), total = 0;
      for (c = 0; c < model.classes; c++) { probs[c] = Math.exp(logits[c] - top); total += probs[c]; }
      for (c = 0; c < model.classes; c++) probs[c] /= total;
      result.logits = logits;
      result.probs = probs;
    }
    return result;
  }

  function argmax(values) {
    var best = 0;
    for (var i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
    return best;
  }

  /* Check a reader's query for a model trained on `numPairs` pairs. Returns
   * {ok: true, answer} or {ok: false, message}: the same rules as fwbook.core.data.parse_query. */
  function checkQuery(text, numPairs) {
    var length = 2 * numPairs + 3;
    var example = "c9k8j3f1??c";
    if (!text) return {ok: false, message: "Type a sequence such as " + example + "."};
    for (var i = 0; i < text.length; i++) {
      if (VOCABULARY.indexOf(text[i]) < 0) {
        var hint = LETTERS.indexOf(text[i].toLowerCase()) >= 0 ? " (letters are lower case)" : "";
        return {ok: false, message: "'" + text[i] + "' (character " + (i + 1) + ") is not a symbol " +
          "the model knows" + hint + ": use the letters a–z, the digits 0–9 and ?."};
      }
    }
    if (text.length !== length) {
      return {ok: false, message: "Wrong length: the model was trained on sequences of " + length +
        " symbols (" + numPairs + " letter–digit pairs, ??, then one of the keys), like " + example +
        "; this one has " + text.length + "."};
    }
    var keys = [], values = [];
    for (var j = 0; j < numPairs; j++) {
      var key = text[2 * j], value = text[2 * j + 1];
      if (LETTERS.indexOf(key) < 0 || DIGITS.indexOf(value) < 0) {
        return {ok: false, message: "Pair " + (j + 1) + " is '" + key + value + "': each pair must be a " +
          "letter (the key) followed by a digit (its value)."};
      }
      if (keys.indexOf(key) >= 0) {
        return {ok: false, message: "The key '" + key + "' is stored twice: the keys must be distinct letters."};
      }
      keys.push(key);
      values.push(value);
    }
    if (text.slice(2 * numPairs, 2 * numPairs + 2) !== "??") {
      return {ok: false, message: "After the " + numPairs + " pairs come the two query marks ??, then the key to look up."};
    }
    var query = text[length - 1];
    if (keys.indexOf(query) < 0) {
      return {ok: false, message: "The query key '" + query + "' is not among the stored keys (" +
        keys.join(", ") + "): ask for one of them."};
    }
    return {ok: true, answer: values[keys.indexOf(query)]};
  }

  // ------------------------------------------------------------------ drawing

  // white -> dark red, the sequential map of the static figures (weights and A(t) are >= 0)
  var RAMP = [[255, 255, 255], [252, 187, 161], [251, 106, 74], [203, 24, 29], [103, 0, 13]];

  function colour(fraction) {
    var x = Math.max(0, Math.min(1, fraction)) * (RAMP.length - 1);
    var k = Math.min(RAMP.length - 2, Math.floor(x)), f = x - k, c = [];
    for (var i = 0; i < 3; i++) c.push(Math.round(RAMP[k][i] + f * (RAMP[k + 1][i] - RAMP[k][i])));
    return "rgb(" + c.join(",") + ")";
  }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    for (var name in attributes || {}) node.setAttribute(name, attributes[name]);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function parameters() {
    var search = window.location.search, params = {};
    if (!search) return params;
    search.slice(1).split("&").forEach(function (part) {
      var pair = part.split("=");
      try { params[decodeURIComponent(pair[0])] = decodeURIComponent((pair[1] || "").replace(/\+/g, " ")); }
      catch (error) { /* a malformed parameter is ignored */ }
    });
    return params;
  }

  function uniqueId(id, prefix) {
    return document.getElementById(id) ? prefix + "-" + id : id;
  }

  function addStyle() {
    if (document.getElementById("fw-explorer-style")) return;
    var style = element("style", {id: "fw-explorer-style"});
    style.textContent = [
      ".fw-explorer{border:1px solid #d0d7de;border-radius:6px;padding:0.8em 1em;margin:1em 0;font-size:0.92em}",
      ".fw-explorer label{margin-right:0.4em}",
      ".fw-explorer .fw-control{display:inline-block;white-space:nowrap;margin:0.2em 1.4em 0.2em 0}",
      ".fw-explorer .fw-control output{display:inline-block;min-width:2.6em;margin-left:0.3em;font-family:monospace}",
      ".fw-explorer select{margin-left:0.3em}",
      ".fw-explorer input[type=text]{font-family:monospace;font-size:1.1em;width:16em;padding:0.15em 0.3em}",
      ".fw-explorer .fw-row{margin:0.35em 0}",
      ".fw-explorer .fw-answer{font-size:1.1em;font-weight:600}",
      ".fw-explorer .fw-message{color:#b42318;font-weight:600;min-height:1.3em}",
      ".fw-explorer table.fw-heatmap{border-collapse:collapse;margin:0.4em 0;font-family:monospace}",
      ".fw-explorer table.fw-heatmap td,.fw-explorer table.fw-heatmap th{border:1px solid #eee;padding:0;text-align:center;font-weight:normal}",
      ".fw-explorer table.fw-heatmap td{width:3.2em;height:1.7em;font-size:0.72em}",
      ".fw-explorer table.fw-heatmap.fw-small td{width:0.9em;height:0.9em;border:none}",
      ".fw-explorer table.fw-heatmap tr.fw-query td{outline:2px solid #c0392b}",
      ".fw-explorer .fw-stale{opacity:0.35}",
      ".fw-explorer .fw-bars{display:flex;align-items:flex-end;height:70px;gap:2px;margin:0.3em 0}",
      ".fw-explorer .fw-bars div{width:1.4em;background:#bbb;text-align:center;font:0.7em monospace}",
      ".fw-explorer .fw-bars div.fw-current{background:#c0392b}",
      ".fw-explorer .fw-note{color:#57606a;font-size:0.9em}"
    ].join("\n");
    document.head.appendChild(style);
  }

  /* A table heatmap of rows x columns values in [0, vmax]; cells carry data-value. */
  function heatmap(values, rowLabels, columnLabels, vmax, options) {
    options = options || {};
    var table = element("table", {"class": "fw-heatmap" + (options.small ? " fw-small" : ""),
                                  "aria-label": options.label || "heatmap"});
    if (columnLabels) {
      var head = element("tr");
      head.appendChild(element("th"));
      columnLabels.forEach(function (label) { head.appendChild(element("th", {}, label)); });
      table.appendChild(head);
    }
    values.forEach(function (row, r) {
      var tr = element("tr", r === options.highlight ? {"class": "fw-query"} : {});
      if (rowLabels) tr.appendChild(element("th", {}, rowLabels[r]));
      row.forEach(function (value) {
        var td = element("td");
        if (value === null) { tr.appendChild(td); return; }
        td.setAttribute("data-value", value.toPrecision(8));
        td.style.background = colour(vmax > 0 ? value / vmax : 0);
        td.title = value.toFixed(4);
        if (options.numbers && r === options.highlight) {
          td.textContent = value.toFixed(2);
          td.style.color = value / vmax > 0.6 ? "white" : "black";
        }
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    return table;
  }

  // ------------------------------------------------------------------ chapter 6: attention

  function mountAttention(root) {
    var model = getModel(root.getAttribute("data-fw-model") || "trained");
    var params = parameters();
    var initial = params.seq !== undefined ? params.seq : root.getAttribute("data-fw-seq") || "c9k8j3f1??c";
    root.innerHTML = "";
    var ids = {input: uniqueId("fw-input", "fw6"), answer: uniqueId("fw-answer", "fw6"),
               message: uniqueId("fw-message", "fw6"), heatmap: uniqueId("fw-heatmap", "fw6")};
    var row = element("div", {"class": "fw-row"});
    row.appendChild(element("label", {"for": ids.input}, "sequence"));
    var input = element("input", {type: "text", id: ids.input, spellcheck: "false", autocomplete: "off",
                                  maxlength: "40", "aria-describedby": ids.message});
    input.value = initial;
    row.appendChild(input);
    root.appendChild(row);
    var answer = element("div", {"class": "fw-row fw-answer", id: ids.answer, "aria-live": "polite"});
    var message = element("div", {"class": "fw-row fw-message", id: ids.message, role: "alert"});
    var figure = element("div", {id: ids.heatmap, "class": "fw-row"});
    root.appendChild(answer);
    root.appendChild(message);
    root.appendChild(figure);
    if (model.summary) root.appendChild(element("div", {"class": "fw-note"}, model.summary));

    function update() {
      var text = input.value.trim();
      var check = checkQuery(text, model.numPairs);
      if (!check.ok) {
        message.textContent = check.message;
        answer.textContent = "—";
        answer.removeAttribute("data-answer");
        figure.classList.add("fw-stale");
        root.setAttribute("data-fw-state", "invalid");
        return;
      }
      message.textContent = "";
      var run = forward(model, encode(text));
      var best = argmax(run.probs);
      var predicted = VOCABULARY[best];
      answer.setAttribute("data-answer", predicted);
      answer.setAttribute("data-probability", run.probs[best].toPrecision(8));
      answer.textContent = "The model answers " + predicted + " with probability " +
        (100 * run.probs[best]).toFixed(1) + "% (the stored value is " + check.answer + ": " +
        (predicted === check.answer ? "right" : "wrong") + ").";
      // the Eq. 4 weights of the last inner step of every step: rows t, columns slots 0..T-2
      var T = text.length, grid = [], vmax = 0;
      for (var t = 0; t < T; t++) {
        var w = run.weights[t][model.innerSteps - 1], cells = [];
        for (var slot = 0; slot < T - 1; slot++) {
          cells.push(slot < w.length ? w[slot] : null);
          if (slot < w.length && w[slot] > vmax) vmax = w[slot];
        }
        grid.push(cells);
      }
      figure.innerHTML = "";
      figure.classList.remove("fw-stale");
      figure.appendChild(element("div", {"class": "fw-note"},
        "Eq. 4 weights η λ^(t−τ) h(τ)ᵀ h_s(t+1). Row: the step reading that token; column: the " +
        "memory slot written after reading that token. The framed last row is the query step, whose " +
        "weights are printed."));
      figure.appendChild(heatmap(grid, text.split(""), text.slice(0, T - 1).split(""), vmax,
                                 {highlight: T - 1, numbers: true, label: "Eq. 4 weights"}));
      root.setAttribute("data-fw-state", "ok");
    }

    input.addEventListener("input", update);
    update();
    return {input: input, update: update};
  }

  // ------------------------------------------------------------------ chapter 2: A(t)

  function mountFastWeights(root) {
    var params = parameters();
    var inline = root.querySelector("script.fw-explorer-model");
    var models = [];
    if (inline) {
      var spec = JSON.parse(inline.textContent);
      models.push({name: spec.name, label: spec.label, model: loadModel(spec)});
    }
    if (window.FWBOOK_MODELS && window.FWBOOK_MODELS.trained) {
      models.push({name: "trained", label: window.FWBOOK_MODELS.trained.label, model: getModel("trained")});
    }
    var initial = params.seq !== undefined ? params.seq : root.getAttribute("data-fw-seq") || "c9k8j3f1??c";
    var number = function (value, fallback, low, high) {
      var x = parseFloat(value);
      return isFinite(x) && x >= low && x <= high ? x : fallback;
    };
    root.innerHTML = "";
    if (inline) root.appendChild(inline); // kept: the weights stay readable on the page
    var ids = {input: uniqueId("fw-input", "fw2"), answer: uniqueId("fw-answer", "fw2"),
               message: uniqueId("fw-message", "fw2"), lambda: "fw-lambda", eta: "fw-eta",
               step: "fw-step", model: "fw-model", heatmap: uniqueId("fw-heatmap", "fw2")};

    function slider(id, label, min, max, step, value) {
      var wrap = element("span", {"class": "fw-control"});
      wrap.appendChild(element("label", {"for": id}, label));
      var control = element("input", {type: "range", id: id, min: min, max: max, step: step});
      control.value = value;
      var shown = element("output", {"for": id}, String(value));
      wrap.appendChild(control);
      wrap.appendChild(shown);
      return {wrap: wrap, control: control, shown: shown};
    }

    var top = element("div", {"class": "fw-row"});
    top.appendChild(element("label", {"for": ids.input}, "sequence"));
    var input = element("input", {type: "text", id: ids.input, spellcheck: "false", autocomplete: "off",
                                  maxlength: "40", "aria-describedby": ids.message});
    input.value = initial;
    top.appendChild(input);
    root.appendChild(top);
    top = element("div", {"class": "fw-row"});
    var select = element("select", {id: ids.model, "aria-label": "model"});
    models.forEach(function (entry, index) {
      var option = element("option", {value: String(index)}, entry.label);
      select.appendChild(option);
    });
    top.appendChild(element("label", {"for": ids.model}, "weights"));
    top.appendChild(select);
    root.appendChild(top);
    var lambda = slider(ids.lambda, "λ (decay)", 0, 1, 0.01, number(params.lambda, 0.95, 0, 1));
    var eta = slider(ids.eta, "η (fast learning rate)", 0, 2, 0.05, number(params.eta, 0.5, 0, 2));
    var step = slider(ids.step, "step t", 1, Math.max(1, initial.length), 1, Math.max(1, initial.length));
    var controls = element("div", {"class": "fw-row"});
    [lambda, eta, step].forEach(function (s) { controls.appendChild(s.wrap); });
    root.appendChild(controls);
    var message = element("div", {"class": "fw-row fw-message", id: ids.message, role: "alert"});
    var answer = element("div", {"class": "fw-row fw-answer", id: ids.answer, "aria-live": "polite"});
    var figure = element("div", {"class": "fw-row", id: ids.heatmap});
    root.appendChild(message);
    root.appendChild(figure);
    root.appendChild(answer);
    var lastLength = initial.length;

    function update() {
      var text = input.value.trim();
      lambda.shown.textContent = Number(lambda.control.value).toFixed(2);
      eta.shown.textContent = Number(eta.control.value).toFixed(2);
      if (!text) {
        message.textContent = "Type a sequence such as c9k8j3f1??c.";
        figure.classList.add("fw-stale");
        root.setAttribute("data-fw-state", "invalid");
        return;
      }
      for (var i = 0; i < text.length; i++) {
        if (VOCABULARY.indexOf(text[i]) < 0) {
          message.textContent = "'" + text[i] + "' (character " + (i + 1) + ") is not a symbol the " +
            "model knows: use the letters a–z, the digits 0–9 and ?.";
          figure.classList.add("fw-stale");
          answer.textContent = "";
          root.setAttribute("data-fw-state", "invalid");
          return;
        }
      }
      message.textContent = "";
      if (text.length !== lastLength) {   // a new text: show its last step
        step.control.max = String(text.length);
        step.control.value = String(text.length);
        lastLength = text.length;
      }
      var t = Math.min(text.length, Math.max(1, parseInt(step.control.value, 10)));
      step.shown.textContent = String(t);
      var entry = models[Number(select.value) || 0], model = entry.model, H = model.hidden;
      var decay = Number(lambda.control.value), fastLr = Number(eta.control.value);
      var run = forward(model, encode(text), {decay: decay, fastLr: fastLr, explicit: true});
      var norms = run.fast.map(function (A) { return Math.sqrt(dot(A, A)); });
      var vmax = 0;
      run.fast.forEach(function (A) { for (var k = 0; k < A.length; k++) if (A[k] > vmax) vmax = A[k]; });
      var A = run.fast[t - 1], grid = [];
      for (var r = 0; r < H; r++) grid.push(Array.prototype.slice.call(A, r * H, (r + 1) * H));
      figure.innerHTML = "";
      figure.classList.remove("fw-stale");
      figure.appendChild(element("div", {"class": "fw-note"},
        "A(t) after reading '" + text.slice(0, t) + "' (t = " + t + ", λ = " + decay.toFixed(2) +
        ", η = " + fastLr.toFixed(2) + "): " + H + " × " + H + ", one colour scale over all steps, " +
        "‖A(t)‖ = " + norms[t - 1].toFixed(3) + "."));
      var table = heatmap(grid, null, null, vmax, {small: true, label: "A(t)"});
      table.setAttribute("data-norm", norms[t - 1].toPrecision(8));
      figure.appendChild(table);
      var bars = element("div", {"class": "fw-bars", "aria-label": "‖A(t)‖ for every step"});
      var biggest = Math.max.apply(null, norms) || 1;
      norms.forEach(function (norm, index) {
        var bar = element("div", {"class": index === t - 1 ? "fw-current" : "", title: "‖A(" + (index + 1) + ")‖ = " + norm.toFixed(3)}, text[index]);
        bar.style.height = Math.max(2, 60 * norm / biggest) + "px";
        bars.appendChild(bar);
      });
      figure.appendChild(element("div", {"class": "fw-note"}, "‖A(t)‖ after every token (the current step in red):"));
      figure.appendChild(bars);
      // the answer, for a trained model reading a well-formed query
      answer.textContent = "";
      answer.removeAttribute("data-answer");
      if (model.readout && model.numPairs) {
        var check = checkQuery(text, model.numPairs);
        if (check.ok) {
          var best = argmax(run.probs);
          answer.setAttribute("data-answer", VOCABULARY[best]);
          answer.setAttribute("data-probability", run.probs[best].toPrecision(8));
          answer.textContent = "With λ = " + decay.toFixed(2) + " and η = " + fastLr.toFixed(2) +
            " the trained model answers " + VOCABULARY[best] + " (" + (100 * run.probs[best]).toFixed(1) +
            "%); the stored value is " + check.answer + ". It was trained with λ = " + model.decay +
            ", η = " + model.fastLr + ".";
        }
      }
      root.setAttribute("data-fw-state", "ok");
    }

    input.addEventListener("input", update);
    [lambda, eta, step].forEach(function (s) { s.control.addEventListener("input", update); });
    select.addEventListener("change", update);
    update();
    return {input: input, update: update};
  }

  // ------------------------------------------------------------------ mounting

  function mountAll() {
    addStyle();
    var roots = document.querySelectorAll("div.fw-explorer[data-fw-kind]");
    for (var i = 0; i < roots.length; i++) {
      var root = roots[i];
      if (root.getAttribute("data-fw-mounted")) continue;
      root.setAttribute("data-fw-mounted", "1");
      try {
        var kind = root.getAttribute("data-fw-kind");
        if (kind === "attention") mountAttention(root);
        else if (kind === "fast-weights") mountFastWeights(root);
      } catch (error) {
        root.textContent = "The explorer could not start: " + error.message;
        root.setAttribute("data-fw-state", "error");
      }
    }
  }

  window.fwbookExplorer = {
    VOCABULARY: VOCABULARY, forward: forward, checkQuery: checkQuery, getModel: getModel,
    loadModel: loadModel, encode: encode, argmax: argmax, mountAll: mountAll,
    /* Predictions, probabilities and query-step Eq. 4 weights (last inner step) for many
     * sequences at once: what the tests compare with PyTorch. */
    evaluate: function (name, texts) {
      var model = getModel(name);
      return texts.map(function (text) {
        var run = forward(model, encode(text)), best = argmax(run.probs);
        var last = run.weights[text.length - 1][model.innerSteps - 1];
        return {prediction: VOCABULARY[best], probability: run.probs[best],
                weights: Array.prototype.slice.call(last)};
      });
    }
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
