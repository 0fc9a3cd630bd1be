/* fwbook: the in-browser explorers of chapters 2 and 6, drawn on the page. The maths (the
 * forward pass, the query check) is explorer_maths.js, which runs first: the book serves the two
 * as one script, _static/fwbook_explorer.js (fwbook.chapters.explorer).
 *
 * Page API: every <div class="fw-explorer" data-fw-kind="attention|fast-weights"> is mounted
 * on load; ?seq=... (and ?lambda=, ?eta= for chapter 2) set the initial values. The answer is
 * shown in #fw-answer. window.fwbookExplorer exposes the maths for tests, and mountAll.
 */
(function () {
  "use strict";

  var fw = window.fwbookExplorer, VOCABULARY = fw.VOCABULARY;

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

  /* The sequence to start with: ?seq= in the page address, else the explorer's data-fw-seq. */
  function initialSequence(root, params) {
    return params.seq !== undefined ? params.seq : root.getAttribute("data-fw-seq") || fw.EXAMPLE;
  }

  /* The "sequence" text box, in a row of its own appended to root. */
  function sequenceInput(root, ids, initial) {
    var row = element("div", {"class": "fw-row"});
    row.appendChild(element("label", {"for": ids.input}, "sequence"));
    var input = element("input", {type: "text", id: ids.input, spellcheck: "false", autocomplete: "off",
                                  maxlength: "40", "aria-describedby": ids.message});
    input.value = initial;
    row.appendChild(input);
    root.appendChild(row);
    return input;
  }

  // ------------------------------------------------------------------ chapter 6: attention

  function mountAttention(root) {
    var model = fw.getModel(root.getAttribute("data-fw-model") || "trained");
    var params = parameters();
    var initial = initialSequence(root, params);
    root.innerHTML = "";
    var ids = {input: uniqueId("fw-input", "fw6"), answer: uniqueId("fw-answer", "fw6"),
               message: uniqueId("fw-message", "fw6"), heatmap: uniqueId("fw-heatmap", "fw6")};
    var input = sequenceInput(root, ids, initial);
    var answer = element("div", {"class": "fw-row fw-answer", id: ids.answer, "aria-live": "polite"});
    var message = element("div", {"class": "fw-row fw-message", id: ids.message, role: "alert"});
    var figure = element("div", {id: ids.heatmap, "class": "fw-row"});
    root.appendChild(answer);
    root.appendChild(message);
    root.appendChild(figure);
    if (model.summary) root.appendChild(element("div", {"class": "fw-note"}, model.summary));

    function update() {
      var text = input.value.trim();
      var check = fw.checkQuery(text, model.numPairs);
      if (!check.ok) {
        message.textContent = check.message;
        answer.textContent = "—";
        answer.removeAttribute("data-answer");
        figure.classList.add("fw-stale");
        root.setAttribute("data-fw-state", "invalid");
        return;
      }
      message.textContent = "";
      var run = fw.forward(model, fw.encode(text));
      var best = fw.argmax(run.probs);
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
      models.push({name: spec.name, label: spec.label, model: fw.loadModel(spec)});
    }
    if (window.FWBOOK_MODELS && window.FWBOOK_MODELS.trained) {
      models.push({name: "trained", label: window.FWBOOK_MODELS.trained.label, model: fw.getModel("trained")});
    }
    var initial = initialSequence(root, params);
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

    var input = sequenceInput(root, ids, initial);
    var top = element("div", {"class": "fw-row"});
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
        message.textContent = "Type a sequence such as " + fw.EXAMPLE + ".";
        figure.classList.add("fw-stale");
        root.setAttribute("data-fw-state", "invalid");
        return;
      }
      var unknown = fw.unknownSymbol(text);
      if (unknown) {
        message.textContent = unknown;
        figure.classList.add("fw-stale");
        answer.textContent = "";
        root.setAttribute("data-fw-state", "invalid");
        return;
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
      var run = fw.forward(model, fw.encode(text), {decay: decay, fastLr: fastLr, explicit: true});
      var norms = run.fast.map(function (A) { return Math.sqrt(fw.dot(A, A)); });
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
        var check = fw.checkQuery(text, model.numPairs);
        if (check.ok) {
          var best = fw.argmax(run.probs);
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

  fw.mountAll = mountAll;
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})();
