// The graphc playground's panels, for the page (page.js) and the Jupyter widget (widget.js) alike:
// mount(root, transport) fills the markup under root. The editor's text goes to transport.analyze on
// every edit (the previous request aborted), and the answer fills the panels. The page's transport is
// fetch to graphc serve; the widget's is the kernel's message channel. No CDN: graphc serves it all.

if (!CodeMirror.modes.graphc) CodeMirror.defineSimpleMode("graphc", {
  start: [
    { regex: /#.*/, token: "comment" },
    { regex: /"(?:[^\\"]|\\.)*"/, token: "string" },
    { regex: /\b(?:input|param|const|loss|output|def|return|use)\b/, token: "keyword" },
    { regex: /\b(?:glorot|he|zeros|ones|normal|uniform)\b/, token: "atom" },
    { regex: /[A-Za-z_][A-Za-z0-9_]*(?=\s*\()/, token: "builtin" },
    { regex: /(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/, token: "number" },
    { regex: /[-+*\/@^=<>!]+/, token: "operator" },
    { regex: /[A-Za-z_][A-Za-z0-9_]*/, token: "variable" },
  ],
  meta: { lineComment: "#" },
});

// The transport: analyze(body, signal) and upload(file) give {status, data}; examples() gives the list.
// options: page (the address's #example and the browser's storage of the last text), source (the text
// to start with), onSource(text) (told of every edit). Gives {cm, state, ready, setSource}.
export function mount(root, transport, options = {}) {
  const $ = (id) => root.querySelector("#" + id);
  const tab = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Math.random()).slice(2);
  const state = {
    seq: 0, shown: 0, controller: null, timer: null, values: {}, dims: {}, upload: null,
    steps: [], rows: [], step: -1, marks: [], stepLine: null, code: "", sentAt: 0, example: null,
  };

  const cm = CodeMirror.fromTextArea($("source-init"), {
    mode: "graphc", lineNumbers: true, indentUnit: 2, tabSize: 2, viewportMargin: 200,
    extraKeys: { Tab: (c) => c.replaceSelection("  ") },
  });
  const mirror = $("source");  // (data-test="source": the editor's text as a plain text area, both ways)
  const SAVED = "graphc-playground-source";  // the editor's text, kept for the next visit
  cm.on("change", () => {
    if (mirror.value !== cm.getValue()) mirror.value = cm.getValue();
    if (options.onSource) options.onSource(cm.getValue());
    schedule(120);  // (a burst of keystrokes is one request)
  });
  mirror.addEventListener("input", () => {
    if (mirror.value !== cm.getValue()) cm.setValue(mirror.value);
  });

  function schedule(delay) {
    clearTimeout(state.timer);
    state.pending = true;  // (an edit not yet sent: the panels are not up to date)
    state.timer = setTimeout(analyze, delay);
  }

  // true when the panels show the editor's current text (the tests wait for this)
  const ready = () => !state.pending && state.seq > 0 && state.shown === state.seq;

  function status(text, cls) {
    const s = $("status");
    s.textContent = text;
    s.dataset.state = cls || "";
  }

  async function analyze() {
    const seq = ++state.seq;
    state.pending = false;
    if (state.controller) state.controller.abort();  // the previous edit's answer is no longer wanted
    const controller = new AbortController();
    state.controller = controller;
    if (options.page) try { localStorage.setItem(SAVED, cm.getValue()); } catch (e) { /* (storage off or full) */ }
    const body = {
      tab, seq, source: cm.getValue(), values: state.values, dims: state.dims,
      seed: Math.max(0, parseInt($("seed").value, 10) || 0), target: $("target").value,
    };
    if (state.upload) body.upload = state.upload.id;
    if (state.exampleData && $("use-example-data").checked) body.example = state.exampleData;
    const t0 = performance.now();
    status("updating…", "busy");
    let r;
    try {
      const resp = await transport.analyze(body, controller.signal);
      if (resp.status === 409) return;  // superseded: a newer edit is on its way
      r = resp.data;
      if (resp.status === 410) { state.upload = null; $("upload-info").textContent = ""; schedule(0); return; }
      if (resp.status === 503 && seq === state.seq) { status("the server is busy: trying again…", "busy"); schedule(700); return; }
      if (resp.status !== 200) r = { errors: [{ line: 0, col: 0, message: r.error || `error ${resp.status}` }] };
    } catch (e) {
      if (e.name === "AbortError") return;
      if (seq === state.seq) status(transport.lost || "no answer", "error");
      return;
    }
    if (seq !== state.seq) return;
    const t1 = performance.now();
    render(r);
    state.timings = { fetch: t1 - t0, render: performance.now() - t1, analysis: (r.seconds || 0) * 1000 };
    state.shown = seq;
    state.lastSeconds = r.seconds || 0;
    const ms = Math.round(performance.now() - t0);
    const n = (r.errors || []).length;
    status(`${n ? n + " error" + (n > 1 ? "s" : "") : "ok"} · updated in ${ms} ms`, n ? "errors" : "ready");
    root.dataset.seq = String(seq);
  }

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function render(r) {
    renderErrors(r.errors || [], r.notes || []);
    const ok = !(r.errors || []).length || r.shapes && r.shapes.length;
    if (r.shapes && r.shapes.length) renderShapes(r.shapes, r.summary || "");
    for (const id of ["forward", "backward", "equations", "cost", "code", "shapes"]) $(id).classList.toggle("stale", !ok);
    if (!ok) return;  // a model that does not compile: the last pictures stay, dimmed
    for (const id of ["forward", "backward"]) {
      $(id).innerHTML = r[id + "_svg"] || "";
      fit($(id));
    }
    renderEquations(r.equations || [], r.forward_rows || 0);
    $("cost").textContent = r.cost || "";
    state.code = r.code || "";
    $("code").textContent = state.code;
    renderControls(r.sliders || [], r.dims || {});
    state.steps = r.steps || [];
    state.step = -1;
    showStep();
  }

  // A picture fits its panel's width, but is never drawn smaller than 45% of its size: then it scrolls.
  function fit(box) {
    const svg = box.querySelector("svg");
    if (!svg) return;
    const w = svg.dataset.w ? +svg.dataset.w : parseFloat(svg.getAttribute("width")) * 4 / 3;  // (Graphviz gives pt)
    const h = svg.dataset.h ? +svg.dataset.h : parseFloat(svg.getAttribute("height")) * 4 / 3;
    if (!(w > 0 && h > 0)) return;
    const room = box.clientWidth - 4;
    const scale = box.classList.contains("actual") ? 1 : Math.min(1, Math.max(0.45, room / w));
    svg.setAttribute("width", String(Math.round(w * scale)));
    svg.setAttribute("height", String(Math.round(h * scale)));
    svg.dataset.w = String(w);
    svg.dataset.h = String(h);
  }

  function renderErrors(errors, notes) {
    for (const m of state.marks) m.clear();
    state.marks = [];
    const ul = $("errors");
    ul.replaceChildren();
    for (const e of errors) {
      const li = el("li", {}, e.line ? `${e.line}:${e.col}: ${e.message}` : e.message);
      ul.append(li);
      if (e.line) {
        const from = { line: e.line - 1, ch: e.col - 1 };
        let to = { line: (e.end_line || e.line) - 1, ch: (e.end_col || e.col + 1) - 1 };
        if (to.line === from.line && to.ch <= from.ch) to = { line: from.line, ch: from.ch + 1 };
        const lineText = cm.getLine(from.line) || "";
        if (from.ch >= lineText.length) from.ch = Math.max(0, lineText.length - 1);
        state.marks.push(cm.markText(from, to, { className: "cm-squiggle", title: e.message }));
        const h = cm.addLineClass(from.line, "background", "cm-line-error");
        state.marks.push({ clear: () => cm.removeLineClass(h, "background", "cm-line-error") });
        li.addEventListener("click", () => { cm.focus(); cm.setCursor(from); });
      }
    }
    $("notes").textContent = notes.join("\n");
  }

  function renderShapes(rows, summary) {
    const t = $("shapes");
    t.replaceChildren();
    t.append(el("caption", {}, summary));
    const head = el("tr");
    for (const h of ["name", "kind", "shape", "line"]) head.append(el("th", {}, h));
    t.append(head);
    for (const r of rows) {
      const tr = el("tr", { class: "kind-" + r.kind });
      for (const k of ["name", "kind", "shape", "line"]) tr.append(el("td", {}, String(r[k])));
      t.append(tr);
    }
  }

  function renderEquations(rows, nforward) {
    state.rows = rows.map((r) => r.text.replace(/\s+=\s+/, " = "));
    const box = $("equations");
    box.replaceChildren();
    rows.forEach((row, k) => {
      if (k === nforward && k) box.append(el("div", { class: "sep" }));
      const div = el("div", { class: "row" + (k >= nforward ? " backward" : ""), "data-row": String(k), title: row.text });
      try {
        div.innerHTML = katex.renderToString(row.latex, { throwOnError: true, displayMode: false });
      } catch (e) {
        div.textContent = row.text;  // (what KaTeX cannot typeset is shown as graphc writes it)
      }
      box.append(div);
    });
  }

  function renderControls(sliders, dims) {
    const box = $("sliders");
    box.replaceChildren();
    for (const s of sliders) {
      const v = state.values[s.name] ?? s.value ?? 0;
      const row = el("div", { class: "slider" });
      const out = el("span", {}, Number(v).toFixed(2));
      const reach = Math.max(5, Math.ceil(2 * Math.abs(v)));  // (-5..5, or wider for a larger start)
      const input = el("input", { type: "range", min: String(-reach), max: String(reach), step: "0.01", value: String(v), "data-name": s.name });
      input.addEventListener("input", () => {
        state.values[s.name] = parseFloat(input.value);
        out.textContent = parseFloat(input.value).toFixed(2);
        schedule(60);
      });
      row.append(el("span", {}, `${s.name} (${s.kind})`), input, out);
      box.append(row);
    }
    const dbox = $("dims");
    dbox.replaceChildren();
    for (const [d, n] of Object.entries(dims)) {
      const row = el("div", { class: "dim" });
      const input = el("input", { type: "number", min: "1", max: "4096", value: String(state.dims[d] ?? n) });
      input.addEventListener("change", () => {
        const k = parseInt(input.value, 10);
        if (k >= 1 && k <= 4096) { state.dims[d] = k; schedule(0); }
      });
      row.append(el("span", {}, `${d} =`), input, el("span", { class: "muted" }, "(a dim the inputs are generated in)"));
      dbox.append(row);
    }
    $("example-data").hidden = !state.exampleData;
    $("example-data").querySelector("span").textContent = `the values of examples/${state.exampleData}.npz`;
    $("controls-panel").classList.toggle("empty", !sliders.length && !Object.keys(dims).length && !state.exampleData);
  }

  // ---- the step control: the backward pass, node by node, in the order it runs -------------------
  function showStep() {
    for (const g of $("backward").querySelectorAll("g.node.hl")) g.classList.remove("hl");
    for (const d of $("equations").querySelectorAll(".row.hl")) d.classList.remove("hl");
    if (state.stepLine !== null) cm.removeLineClass(state.stepLine, "background", "cm-line-step");
    state.stepLine = null;
    const info = $("step-info");
    const back = $("backward");
    if (state.step < 0 || !state.steps.length) {
      info.textContent = state.steps.length ? `${state.steps.length} backward nodes` : "";
      delete back.dataset.stepNode;
      delete back.dataset.stepIndex;
      return;
    }
    const s = state.steps[state.step];
    back.dataset.stepNode = String(s.id);
    back.dataset.stepIndex = String(state.step);
    for (const g of back.querySelectorAll("g.node")) {
      const t = g.querySelector("title");
      if (t && (t.textContent === "n" + s.id || t.textContent === "o" + s.id)) {
        g.classList.add("hl");
        g.scrollIntoView({ block: "nearest", inline: "nearest" });
      }
    }
    if (s.row !== null && s.row !== undefined) {
      const row = $("equations").querySelector(`.row[data-row="${s.row}"]`);
      if (row) row.classList.add("hl");
    }
    if (s.line) {
      state.stepLine = cm.addLineClass(s.line - 1, "background", "cm-line-step");
      cm.scrollIntoView({ line: s.line - 1, ch: 0 }, 60);
    }
    const value = (s.value || "").replace(/\n/g, "  ");
    const row = s.row !== null && s.row !== undefined ? state.rows[s.row] : null;
    const what = s.name.startsWith("(") && row ? `${s.name.slice(1, -1)}, part of ${row}` : s.name;
    info.textContent = `${state.step + 1}/${state.steps.length}  ${what} = ${value}`;
  }

  $("step").addEventListener("click", () => {
    if (!state.steps.length) return;
    state.step = (state.step + 1) % state.steps.length;
    showStep();
  });
  $("step-back").addEventListener("click", () => {
    if (!state.steps.length) return;
    state.step = state.step <= 0 ? state.steps.length - 1 : state.step - 1;
    showStep();
  });
  $("step-reset").addEventListener("click", () => { state.step = -1; showStep(); });

  for (const id of ["forward", "backward"]) {
    $(id).addEventListener("dblclick", () => {  // fit / actual size
      const box = $(id);
      box.classList.toggle("actual");
      fit(box);
    });
  }

  // ---- code: copy and download -------------------------------------------------------------------
  $("copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(state.code);
    } catch (e) {
      const t = el("textarea");
      t.value = state.code;
      document.body.append(t);
      t.select();
      document.execCommand("copy");
      t.remove();
    }
    $("copy").textContent = "copied";
    setTimeout(() => { $("copy").textContent = "copy"; }, 1200);
  });
  $("download").addEventListener("click", () => {
    const a = el("a", { href: URL.createObjectURL(new Blob([state.code], { type: "text/x-python" })), download: (state.example || "model") + ".py" });
    document.body.append(a);
    a.click();
    a.remove();
  });

  // ---- inputs: an uploaded .npz, the seed --------------------------------------------------------
  $("npz").addEventListener("change", async () => {
    const f = $("npz").files[0];
    if (!f) return;
    $("upload-info").textContent = "uploading…";
    try {
      const resp = await transport.upload(f);
      const r = resp.data;
      if (resp.status !== 200) { $("upload-info").textContent = r.error; state.upload = null; return; }
      state.upload = r;
      $("upload-info").textContent = Object.entries(r.arrays).map(([k, s]) => `${k} [${s.join(", ")}]`).join(", ");
      schedule(0);
    } catch (e) {
      $("upload-info").textContent = "the upload failed";
    }
  });
  $("seed").addEventListener("change", () => schedule(0));
  $("target").addEventListener("change", () => schedule(0));
  $("use-example-data").addEventListener("change", () => schedule(0));

  // ---- examples ------------------------------------------------------------------------------------
  function openExample(ex, button) {
    state.values = {};
    state.dims = {};
    state.example = ex.name;
    state.exampleData = ex.data || null;  // (its .npz, used until unticked or another example is opened)
    for (const b of $("examples").querySelectorAll("button")) b.classList.toggle("current", b === button);
    cm.setValue(ex.source);
    cm.clearHistory();
    if (options.page) history.replaceState(null, "", "#" + ex.name);
  }

  async function loadExamples() {
    let list = [];
    try {
      list = await transport.examples();
    } catch (e) { /* no examples: the editor still works */ }
    const ul = $("examples");
    const wanted = (options.page && location.hash.slice(1)) || "two_layer";
    let first = null;
    for (const ex of list) {
      const b = el("button", { title: ex.title, "data-name": ex.name }, ex.name);
      b.addEventListener("click", () => openExample(ex, b));
      const li = el("li");
      li.append(b);
      ul.append(li);
      if (ex.name === wanted) first = [ex, b];
    }
    if (typeof options.source === "string") {  // (the widget: its model's text)
      cm.setValue(options.source);
      schedule(0);
      return;
    }
    window.addEventListener("hashchange", () => {  // (#digits_mlp typed in the address bar)
      const b = ul.querySelector(`button[data-name="${CSS.escape(location.hash.slice(1))}"]`);
      const ex = b && list.find((e) => e.name === b.dataset.name);
      if (ex) openExample(ex, b);
    });
    let saved = null;
    try { saved = localStorage.getItem(SAVED); } catch (e) { /* (storage off) */ }
    if (first && (location.hash || saved === null)) openExample(...first);
    else if (!location.hash && saved !== null) cm.setValue(saved);  // the last text typed here
    else schedule(0);
  }
  loadExamples();

  // a text from outside (the notebook set the widget's source): shown unless it is the editor's own
  const setSource = (text) => { if (text !== cm.getValue()) cm.setValue(text); };
  return { cm, state, ready, setSource };
}
