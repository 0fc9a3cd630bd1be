/* fwbook: the in-browser explorers of chapters 2 and 6 (no kernel, no network, works from file://).
 * This file: the model's maths. explorer_page.js draws the explorers; the book serves the two
 * as one script, _static/fwbook_explorer.js, this file first (fwbook.chapters.explorer).
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
 */
(function () {
  "use strict";

  var VOCABULARY = "abcdefghijklmnopqrstuvwxyz0123456789?";
  var LETTERS = VOCABULARY.slice(0, 26);
  var DIGITS = VOCABULARY.slice(26, 36);
  var LN_EPS = 1e-5; // torch.nn.LayerNorm's default
  var EXAMPLE = "c9k8j3f1??c"; // a well-formed query, shown in messages

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

  /* The message for the first character of `text` that is not a symbol, or null. */
  function unknownSymbol(text) {
    for (var i = 0; i < text.length; i++) {
      if (VOCABULARY.indexOf(text[i]) < 0) {
        var hint = LETTERS.indexOf(text[i].toLowerCase()) >= 0 ? " (letters are lower case)" : "";
        return "'" + text[i] + "' (character " + (i + 1) + ") is not a symbol the model knows" + hint +
          ": use the letters a–z, the digits 0–9 and ?.";
      }
    }
    return null;
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
    if (!text) return {ok: false, message: "Type a sequence such as " + EXAMPLE + "."};
    var unknown = unknownSymbol(text);
    if (unknown) return {ok: false, message: unknown};
    if (text.length !== length) {
      return {ok: false, message: "Wrong length: the model was trained on sequences of " + length +
        " symbols (" + numPairs + " letter–digit pairs, ??, then one of the keys), like " + EXAMPLE +
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

  window.fwbookExplorer = {
    VOCABULARY: VOCABULARY, EXAMPLE: EXAMPLE, forward: forward, checkQuery: checkQuery,
    unknownSymbol: unknownSymbol, getModel: getModel, loadModel: loadModel, encode: encode,
    argmax: argmax, dot: dot,
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
})();
