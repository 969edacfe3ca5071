/* The demo page of `nlpseq serve`: one panel per served model, each calling
 * the TensorFlow Serving REST API of the server. Plain JavaScript, no
 * dependencies. */
"use strict";

const nlpseq = (() => {
  // What each kind of panel needs of the model's signatures.
  const NEEDS = {
    classifier: { serving_default: ["label", "probabilities", "class_names"] },
    ner: { serving_default: ["entity_types", "entity_starts", "entity_ends",
      "entity_count"] },
    "next-word": { serving_default: ["tokens", "probabilities"] },
    translation: {},
  };
  const ENTITY_COLOURS = {
    PER: "#c9b8ff", PERSON: "#c9b8ff", ORG: "#8ee5e0", LOC: "#ffbb8c",
    GPE: "#ffd27a", MISC: "#d7e98a", DATE: "#b9dcf5", TIME: "#b9dcf5",
  };
  const DEBOUNCE_MS = 250;

  // -- small helpers ---------------------------------------------------------

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === false || value === null || value === undefined) continue;
      node.setAttribute(name, value === true ? "" : value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function slug(name) {
    return String(name).replace(/[^A-Za-z0-9_-]+/g, "-");
  }

  function percent(p) {
    return p > 0 && p < 0.001 ? "<0.1%" : `${(100 * p).toFixed(1)}%`;
  }

  function predictPath(model) {
    return `v1/models/${encodeURIComponent(model.name)}:predict`;
  }

  /** A word in single quotes for a POSIX shell (a quote in it written
   * '\''). */
  function quoted(word) {
    return `'${String(word).replace(/'/g, "'\\''")}'`;
  }

  /** A word as one POSIX shell word: as is when it has no special
   * character, else quoted. */
  function shellQuote(word) {
    return /^[A-Za-z0-9_.,/:@%+=-]+$/.test(word) ? word : quoted(word);
  }

  /** The curl command line that POSTs `json` (the body, as sent) to the
   * model's :predict on this page's server. */
  function curlLine(model, json) {
    const url = new URL(predictPath(model), document.baseURI).href;
    return `curl -d ${quoted(json)} ${shellQuote(url)}`;
  }

  /** Whether a signature takes one text per row: a single input, a batch
   * of strings (DT_STRING, shape [-1]). Signatures of the Classify and
   * Regress APIs (serialized tf.Example in `inputs`) are not. */
  function textOnly(signature) {
    const method = (signature && signature.method_name) || "";
    const inputs = Object.entries((signature && signature.inputs) || {});
    return !/classify|regress/.test(method) && inputs.length === 1 &&
      inputs.every(([name, spec]) => name !== "inputs" &&
        spec.dtype === "DT_STRING" && Array.isArray(spec.shape) &&
        spec.shape.length === 1 && spec.shape[0] === -1);
  }

  /** POST a body to the model's :predict; the answer, or an Error with the
   * server's message. */
  async function predict(model, body) {
    const response = await fetch(predictPath(model), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let answer = null;
    try {
      answer = await response.json();
    } catch (error) {
      throw new Error(`HTTP ${response.status} ${response.statusText}`);
    }
    if (!response.ok || (answer && answer.error !== undefined)) {
      throw new Error((answer && answer.error) ||
        `HTTP ${response.status} ${response.statusText}`);
    }
    return answer;
  }

  /** The first row of a row-format answer as {output: value} (a signature
   * with one output gives bare values). */
  function firstRow(model, name, answer) {
    const row = answer.predictions[0];
    if (row !== null && typeof row === "object" && !Array.isArray(row)) {
      return row;
    }
    const outputs = Object.keys(model.signatures[name].outputs);
    return { [outputs[0]]: row };
  }

  /** The model's text-only signatures (`textOnly`): those of `preferred`
   * first, in its order, then serving_default, then the others by name. */
  function textSignatures(model, preferred) {
    const signatures = model.signatures || {};
    const rank = (name) => {
      const at = preferred.indexOf(name);
      if (at >= 0) return at;
      return preferred.length + (name === "serving_default" ? 0 : 1);
    };
    return Object.keys(signatures).filter((n) => textOnly(signatures[n]))
      .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  }

  function kindOf(model) {
    // (the export's assets.extra/nlpseq.json names its panel)
    const kind = model.panel;
    if (!kind || !Object.hasOwn(NEEDS, kind)) return "generic";
    const signatures = model.signatures || {};
    for (const [name, outputs] of Object.entries(NEEDS[kind])) {
      const signature = signatures[name];
      if (!signature || outputs.some((o) => !(o in signature.outputs))) {
        return "generic";
      }
    }
    if (kind === "translation" && !signatures.translate_beam &&
      !(signatures.serving_default &&
        "translation" in signatures.serving_default.outputs)) {
      return "generic";
    }
    return kind;
  }

  // -- panels ----------------------------------------------------------------

  /** A panel's "Show request" toggle: the JSON body of the panel's last
   * request, and the curl command line that sends the same. */
  function requestView(model) {
    const json = el("pre", { class: "request-json" });
    const curl = el("pre", { class: "request-curl" });
    const summary = el("summary", {}, "Show request");
    const view = el("details", { class: "request", hidden: true }, summary,
      el("p", { class: "request-heading" }, "Request body (JSON)"), json,
      el("p", { class: "request-heading" }, "The same with curl"), curl);
    view.addEventListener("toggle", () => {
      summary.textContent = view.open ? "Hide request" : "Show request";
    });
    return {
      element: view,
      /** Shows the body `sent` (the JSON text as sent). */
      show(sent) {
        json.textContent = JSON.stringify(JSON.parse(sent), null, 2);
        curl.textContent = curlLine(model, sent);
        view.hidden = false;
      },
      clear() {
        json.textContent = "";
        curl.textContent = "";
        view.hidden = true;
      },
    };
  }

  /** The answer as JSON (a signature the panel cannot draw). */
  function jsonView(answer) {
    return el("pre", { class: "json" }, JSON.stringify(answer, null, 2));
  }

  /** The panel's frame: a heading, a form (a labelled text box, controls,
   * a signature picker offering `options.signatures`, and a submit
   * button), a result area and a request view.
   * `submit(text, call, signature)` returns the result's element, where
   * `call(body)` POSTs a body to the model's :predict and shows it in the
   * request view; the result area shows that element, or the error. An
   * empty box shows `options.hint` instead, and sends nothing. */
  function panel(model, kind, options) {
    const id = `panel-${slug(model.name)}`;
    const result = el("div", { class: "result", "aria-live": "polite" });
    const request = requestView(model);
    const input = el("textarea", {
      id: `${id}-input`, name: "text", rows: options.rows || 3,
      spellcheck: "false",
      class: options.json ? "code" : null,
    });
    input.value = options.example || "";
    const signatures = options.signatures || [];
    const picker = signatures.length ? el("select", { class: "signature" },
      ...signatures.map((n) => el("option", { value: n }, n))) : null;
    const description = el("p", { class: "description" });
    const describe = () => {
      const text = options.describe ? options.describe(picker && picker.value)
        : null;
      description.textContent = text || "";
      description.hidden = !text;
    };
    if (picker) picker.addEventListener("change", describe);
    describe();
    const button = el("button", { type: "submit" }, options.button);
    const form = el("form", { class: "panel-form" },
      el("label", { for: input.id }, options.label), input,
      el("div", { class: "actions" }, ...(options.controls || []),
        picker ? el("label", { class: "signature-label" }, "Signature ",
          picker) : null,
        button));
    const section = el("section", {
      class: "panel", id, "data-model": model.name, "data-kind": kind,
      "aria-labelledby": `${id}-title`,
    },
    el("header", { class: "panel-header" },
      el("h2", { id: `${id}-title` }, model.name),
      el("span", { class: "badge" }, model.app || model.family || "SavedModel"),
      el("span", { class: "version" }, `version ${model.version}`)),
    description, form, result, request.element);

    const sequences = new Map();
    /** Runs `work()` and shows what it gives in `target`, unless a newer
     * run for `target` started meanwhile; the target's `data-text` says
     * which input it shows, `data-signature` which signature gave it, and
     * `data-state` whether it is busy, done, an error or a hint. */
    async function show(work, text, target = result, signature = null) {
      const mine = (sequences.get(target) || 0) + 1;
      sequences.set(target, mine);
      target.setAttribute("aria-busy", "true");
      target.dataset.state = "busy";
      let content;
      let state = "done";
      try {
        content = await work();
      } catch (error) {
        content = el("p", { class: "error", role: "alert" }, error.message);
        state = "error";
      }
      if (mine !== sequences.get(target)) return;
      settle(target, content, text, state, signature);
    }
    /** Shows a hint in `target` (an answer still on its way is dropped). */
    function hint(target, text, ...message) {
      sequences.set(target, (sequences.get(target) || 0) + 1);
      settle(target, el("p", { class: "hint", role: "status" }, ...message),
        text, "hint", null);
    }
    function settle(target, content, text, state, signature) {
      target.replaceChildren(content);
      target.dataset.text = text;
      target.dataset.state = state;
      if (signature) target.dataset.signature = signature;
      else delete target.dataset.signature;
      target.removeAttribute("aria-busy");
    }
    function example() {
      if (!options.example) return [];
      const use = el("button", { type: "button", class: "use-example",
        title: "Use this example" }, options.example);
      use.addEventListener("click", () => {
        input.value = options.example;
        input.dispatchEvent(new Event("input"));
        input.focus();
      });
      return [" For example: ", use];
    }
    function call(body) {
      request.show(JSON.stringify(body));
      return predict(model, body);
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const text = input.value;
      if (!text.trim()) {
        hint(result, text, `${options.hint}.`, ...example());
        request.clear();
        return;
      }
      const signature = picker ? picker.value : null;
      button.disabled = true;
      try {
        await show(() => options.submit(text, call, signature), text, result,
          signature);
      } finally {
        button.disabled = false;
      }
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    return { section, form, input, result, show, hint };
  }

  /** A text panel's `submit`: calls the picked signature with the text and
   * shows its first row by the first of `renderers` ({needs: [output],
   * render(row, text)}) whose outputs the signature has, else the answer
   * as JSON. */
  function textSubmit(model, renderers) {
    return async (text, call, name) => {
      if (!name) {
        throw new Error(`The model ${model.name} has no signature that takes `
          + "one text per row (one DT_STRING input of shape [-1]).");
      }
      const answer = await call({ signature_name: name, instances: [text] });
      const outputs = model.signatures[name].outputs;
      const renderer = renderers.find((r) => r.needs.every((o) =>
        o in outputs));
      return renderer ? renderer.render(firstRow(model, name, answer), text)
        : jsonView(answer);
    };
  }

  function bars(names, probabilities) {
    const order = names.map((_, i) => i)
      .sort((a, b) => probabilities[b] - probabilities[a]);
    return el("ul", { class: "bars" }, ...order.map((i) => {
      const p = probabilities[i];
      const fill = el("span", { class: "bar-fill" });
      fill.style.width = `${100 * p}%`;
      return el("li", {
        class: "bar-row", "data-name": names[i], "data-probability": p,
      },
      el("span", { class: "bar-name" }, names[i]),
      el("span", {
        class: "bar", role: "meter", "aria-label": names[i],
        "aria-valuemin": 0, "aria-valuemax": 1, "aria-valuenow": p,
      }, fill),
      el("span", { class: "bar-value" }, percent(p)));
    }));
  }

  function classifierPanel(model) {
    return panel(model, "classifier", {
      label: "Text", button: "Classify",
      hint: "Type a text to classify first",
      example: model.example,
      signatures: textSignatures(model, ["serving_default"]),
      submit: textSubmit(model, [{
        needs: ["label", "probabilities", "class_names"],
        render(row) {
          const best = Math.max(...row.probabilities);
          return el("div", {},
            el("p", { class: "prediction" },
              el("span", { class: "label-name" }, row.label), " ",
              el("span", { class: "label-probability" }, percent(best))),
            bars(row.class_names, row.probabilities));
        },
      }]),
    }).section;
  }

  function entityColour(type) {
    if (ENTITY_COLOURS[type]) return ENTITY_COLOURS[type];
    let hash = 0;
    for (const c of String(type)) hash = (hash * 31 + c.codePointAt(0)) % 360;
    return `hsl(${hash} 75% 82%)`;
  }

  /** The text with its entities marked: `entities` are
   * {start, end, type} in code points (end exclusive); overlapping or
   * out-of-range ones are left out. */
  function renderEntities(text, entities) {
    const chars = Array.from(text);
    const out = el("p", { class: "entities" });
    let at = 0;
    const sorted = [...entities].sort((a, b) => a.start - b.start);
    for (const { start, end, type } of sorted) {
      if (start < at || end > chars.length || start >= end) continue;
      if (start > at) out.append(chars.slice(at, start).join(""));
      const mark = el("mark", { class: "entity", "data-type": type },
        el("span", { class: "entity-text" }, chars.slice(start, end).join("")),
        el("span", { class: "entity-type" }, type));
      mark.style.setProperty("--entity", entityColour(type));
      out.append(mark);
      at = end;
    }
    if (at < chars.length) out.append(chars.slice(at).join(""));
    return out;
  }

  function nerPanel(model) {
    return panel(model, "ner", {
      label: "Text", button: "Find entities",
      hint: "Type a text to find its entities first",
      example: model.example,
      signatures: textSignatures(model, ["serving_default"]),
      submit: textSubmit(model, [{
        needs: NEEDS.ner.serving_default,
        render: entityResult,
      }]),
    }).section;
  }

  /** The text with the entities of the ner signature's `row` marked, and
   * its tokens and tags. */
  function entityResult(row, text) {
    const entities = [];
    for (let i = 0; i < row.entity_count; i++) {
      entities.push({
        start: row.entity_starts[i], end: row.entity_ends[i],
        type: row.entity_types[i],
      });
    }
    const tokens = (row.tokens || []).map((token, i) => [token,
      row.tags[i]]).filter(([token]) => token !== "");
    return el("div", {},
      renderEntities(text, entities),
      entities.length ? null
        : el("p", { class: "note" }, "No entities found."),
      tokens.length ? el("details", { class: "tokens" },
        el("summary", {}, `Tokens and tags (${tokens.length})`),
        el("ol", {}, ...tokens.map(([token, tag]) => el("li", {},
          el("span", { class: "token" }, token),
          el("span", { class: "tag" }, tag))))) : null);
  }

  const TRANSLATION_SIGNATURES = {
    translate_beam: "Beam search: the best translations and their scores.",
    translate_greedy: "Greedy decoding: one translation and its score.",
    serving_default: "The best translation of a beam search, and its score.",
  };

  function translationPanel(model) {
    return panel(model, "translation", {
      label: "Source text", button: "Translate",
      hint: "Type a text to translate first",
      example: model.example,
      signatures: textSignatures(model, ["translate_beam", "serving_default"]),
      describe: (name) => TRANSLATION_SIGNATURES[name],
      submit: textSubmit(model, [{
        needs: ["translations", "scores"],
        render: (row) => hypotheses(row.translations, row.scores),
      }, {
        needs: ["translation", "score"],
        render: (row) => hypotheses([row.translation], [row.score]),
      }]),
    }).section;
  }

  function hypotheses(translations, scores) {
    return el("div", {},
      el("p", { class: "translation" }, translations[0]),
      el("ol", { class: "hypotheses", "aria-label": "Hypotheses" },
        ...translations.map((t, i) => el("li", {
          class: "hypothesis", "data-score": scores[i],
        },
        el("span", { class: "hypothesis-text" }, t),
        el("span", { class: "hypothesis-score" },
          Number(scores[i]).toFixed(3))))));
  }

  function nextWordPanel(model) {
    const words = el("div", { class: "next-words", "aria-live": "polite" });
    let timer = null;
    const parts = panel(model, "next-word", {
      label: "Text so far", button: "Generate", rows: 2,
      hint: "Type the start of a text first",
      example: model.example,
      signatures: textSignatures(model, ["generate_greedy", "generate_beam"]),
      submit: textSubmit(model, [{
        needs: ["text"],
        render(row, text) {
          const glue = /\s$/.test(text) ? "" : " ";
          return el("p", { class: "generated" },
            el("span", { class: "prompt" }, text + glue),
            el("span", { class: "continuation" }, row.text));
        },
      }]),
    });
    parts.result.before(el("h3", { class: "subheading" }, "Next word"), words);

    async function suggest(text) {
      const answer = await predict(model,
        { signature_name: "serving_default", instances: [text] });
      const row = firstRow(model, "serving_default", answer);
      return el("ol", { class: "word-list" }, ...row.tokens.map((word, i) => {
        const button = el("button", {
          type: "button", class: "word", "data-word": word,
          "data-probability": row.probabilities[i],
        }, el("span", { class: "word-text" }, word),
        el("span", { class: "word-probability" },
          percent(row.probabilities[i])));
        button.addEventListener("click", () => {
          const now = parts.input.value;
          parts.input.value = now + (now === "" || /\s$/.test(now) ? "" : " ")
            + word;
          parts.input.dispatchEvent(new Event("input"));
          parts.input.focus();
        });
        return el("li", {}, button);
      }));
    }
    function update() {
      const text = parts.input.value;
      if (!text.trim()) {
        parts.hint(words, text, "Type a few words to see the likeliest "
          + "next ones.");
      } else {
        parts.show(() => suggest(text), text, words);
      }
    }
    parts.input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(update, DEBOUNCE_MS);
    });
    update();
    return parts.section;
  }

  /** An example value of a tensor spec, without its batch dimension when
   * `batched`. */
  function exampleValue(spec, batched) {
    const dtype = spec.dtype || "";
    let value = 0;
    if (dtype === "DT_STRING") value = "some text";
    else if (/FLOAT|DOUBLE|HALF/.test(dtype)) value = 0.5;
    else if (dtype === "DT_BOOL") value = false;
    const shape = (spec.shape || []).slice(batched ? 1 : 0);
    for (let i = shape.length - 1; i >= 0; i--) {
      value = Array(Math.max(1, shape[i])).fill(value);
    }
    return value;
  }

  function exampleBody(name, signature) {
    const inputs = Object.entries(signature.inputs);
    const batched = inputs.every(([, s]) => (s.shape || []).length > 0);
    if (!batched) {
      return { signature_name: name, inputs: Object.fromEntries(
        inputs.map(([n, s]) => [n, exampleValue(s, false)])) };
    }
    const instance = inputs.length === 1 ? exampleValue(inputs[0][1], true)
      : Object.fromEntries(inputs.map(([n, s]) => [n, exampleValue(s, true)]));
    return { signature_name: name, instances: [instance] };
  }

  function genericPanel(model) {
    const names = Object.keys(model.signatures || {}).sort((a, b) =>
      (b === "serving_default") - (a === "serving_default") ||
      a.localeCompare(b));
    const select = el("select", { "aria-label": "Signature" },
      ...names.map((n) => el("option", { value: n }, n)));
    let parts = null;
    function template() {
      const signature = model.signatures[select.value];
      parts.input.value = signature
        ? JSON.stringify(exampleBody(select.value, signature), null, 2) : "{}";
    }
    select.addEventListener("change", template);
    parts = panel(model, "generic", {
      label: "Request body (JSON)", button: "Predict", rows: 8, json: true,
      hint: "Write a request body (JSON) first",
      controls: [select],
      async submit(body, call) {
        let parsed;
        try {
          parsed = JSON.parse(body);
        } catch (error) {
          throw new Error(`The request body is not JSON: ${error.message}`);
        }
        return jsonView(await call(parsed));
      },
    });
    if (names.length) template();
    return parts.section;
  }

  const PANELS = {
    classifier: classifierPanel, ner: nerPanel,
    translation: translationPanel, "next-word": nextWordPanel,
    generic: genericPanel,
  };

  async function start() {
    const main = document.getElementById("models");
    try {
      const response = await fetch("nlpseq/v1/models");
      const answer = await response.json();
      if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
      const models = [...answer.models].sort((a, b) =>
        a.name.localeCompare(b.name));
      if (!models.length) {
        main.replaceChildren(el("p", { class: "status" },
          "No model is available yet."));
        return;
      }
      main.replaceChildren(...models.map((m) => PANELS[kindOf(m)](m)));
    } catch (error) {
      main.replaceChildren(el("p", { class: "error", role: "alert" },
        `Could not list the models: ${error.message}`));
    }
    main.dataset.state = "ready";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
  return {
    kindOf, renderEntities, entityColour, exampleBody, textOnly, shellQuote,
    curlLine,
  };
})();

window.nlpseq = nlpseq;
