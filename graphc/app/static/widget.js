// The playground's panels as a Jupyter widget (anywidget): the page's own code (app.js), with the
// kernel's message channel where the page has fetch. graphc/app/widget.py puts this after the
// vendored libraries and app.js in one module, with MARKUP: the page's markup (index.html).

// {kind, id, payload} goes to the kernel (an upload's bytes as a buffer); the answer {id, status, data}
// comes back as a custom message. Ids carry the view's own prefix: two views of one widget each see
// both views' answers.
function channel(model) {
  const view = Math.random().toString(36).slice(2);
  let next = 0;
  const waiting = new Map();
  const heard = (msg) => {
    const done = msg && waiting.get(msg.id);
    if (done) { waiting.delete(msg.id); done({ status: msg.status, data: msg.data }); }
  };
  model.on("msg:custom", heard);
  const ask = (kind, payload, buffers, signal) => new Promise((resolve, reject) => {
    const id = `${view}:${++next}`;
    waiting.set(id, resolve);
    if (signal) signal.addEventListener("abort", () => {  // (a newer edit: its answer is not wanted)
      waiting.delete(id);
      reject(new DOMException("superseded", "AbortError"));
    });
    model.send({ kind, id, payload }, undefined, buffers || []);
  });
  return {
    lost: "the kernel does not answer: is it still running?",
    analyze: (body, signal) => ask("analyze", body, [], signal),
    upload: async (file) => ask("upload", {}, [await file.arrayBuffer()]),
    examples: async () => (await ask("examples", {})).data,
    close: () => model.off("msg:custom", heard),
  };
}

export default {
  render({ model, el }) {
    el.innerHTML = MARKUP;
    const root = el.querySelector(".gp");
    root.classList.add("widget");
    const transport = channel(model);
    const pg = mount(root, transport, {
      source: model.get("source"),
      onSource: (text) => {  // (the editor's text is the widget's `source`, read back in Python)
        if (model.get("source") !== text) { model.set("source", text); model.save_changes(); }
      },
    });
    const changed = () => pg.setSource(model.get("source"));
    model.on("change:source", changed);
    // CodeMirror measures its box: a notebook attaches the element after render
    const seen = new IntersectionObserver(() => pg.cm.refresh());
    seen.observe(root);
    el.graphcPlayground = pg;  // (the tests' handle, as window.graphcPlayground is the page's)
    return () => {
      model.off("change:source", changed);
      transport.close();
      seen.disconnect();
    };
  },
};
