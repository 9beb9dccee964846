// The page graphc serve answers with: the playground's panels (app.js) over fetch to the server.
import { mount } from "./app.js";

async function answer(resp) {
  let data = {};
  try { data = await resp.json(); } catch (e) { /* (a body that is not JSON: the status says it) */ }
  return { status: resp.status, data };
}

const transport = {
  lost: "the server does not answer: is graphc serve still running?",
  analyze: async (body, signal) => answer(await fetch("/api/analyze", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), signal,
  })),
  upload: async (file) => answer(await fetch("/api/upload", { method: "POST", body: file })),
  examples: async () => (await fetch("/api/examples")).json(),
};

window.graphcPlayground = mount(document.querySelector(".gp"), transport, { page: true });
