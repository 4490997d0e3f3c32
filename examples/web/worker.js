// The model's Web Worker: loads a model and its tokenizer, generates, and streams every token back
// to the page (main.js). In a worker the kernels may block in Atomics.wait, so on a cross-origin
// isolated page they run on all cores; elsewhere on one thread, on ordinary wasm memory.
//
// A page of your own imports the same functions from the package ("mobilellm" resolves to
// dist/browser.js in browsers and bundlers); this demo imports the file by its path so that it
// runs straight from the repository without a bundler.

import { generate, loadModel, loadTokenizer } from "../../dist/browser.js";

/** The embedded default model, served with the page (the package's models/ folder). */
const DEFAULT_MODEL = new URL("../../models/shakespeare-2m/", import.meta.url).href;

let model = null, tokenizer = null, controller = null;

// A generation loop in a worker must let messages in between tokens, or Stop would wait for the
// end: one MessageChannel round trip yields to the event loop without setTimeout's 4 ms clamp.
const channel = new MessageChannel();
const yieldToEvents = () => new Promise((resolve) => {
  channel.port1.onmessage = () => resolve();
  channel.port2.postMessage(0);
});

function sourceOf(s) {
  switch (s.kind) {
    case "default": return DEFAULT_MODEL;
    case "url": return s.url;
    case "hub": return s.id;
    case "files": return Object.fromEntries(s.files.map((f) => [f.name, f]));
    default: throw new Error(`unknown model source ${JSON.stringify(s.kind)}`);
  }
}

/** The tokenizer, or null when the model has none (then prompts are token ids). */
async function tokenizerFor(s, source, signal) {
  if (s.kind === "files" && !s.files.some((f) => f.name === "tokenizer.model" || f.name.toLowerCase().endsWith(".gguf"))) return null;
  try {
    return await loadTokenizer(source, { signal });
  } catch (e) {
    if (signal.aborted) throw e;
    if (/not found|404|no tokenizer/i.test(String(e?.message))) return null; // a folder without tokenizer.model
    throw e;
  }
}

async function load({ source: s, dtype }) {
  await model?.dispose();
  model = tokenizer = null;
  controller = new AbortController();
  const signal = controller.signal;
  const source = sourceOf(s);
  model = await loadModel(source, {
    dtype, signal,
    onProgress: (p) => postMessage({ type: "progress", phase: p.phase, file: p.file, loaded: p.loaded, total: p.total }),
  });
  tokenizer = await tokenizerFor(s, source, signal);
  const c = model.config;
  postMessage({
    type: "loaded",
    name: s.kind === "default" ? "the default model" : s.kind === "files" ? s.files.map((f) => f.name).join(", ") : source,
    parameters: countParameters(model.weights).toLocaleString("en-US"), layers: c.numLayers,
    threads: model.threads, shared: typeof SharedArrayBuffer !== "undefined" && model.kernels.memory?.buffer instanceof SharedArrayBuffer,
    hasTokenizer: tokenizer !== null,
  });
}

function countParameters(w) {
  let n = w.embedVD.shape.reduce((a, b) => a * b, 1) + w.finalNormD.length;
  if (w.lmHeadVD !== w.embedVD) n += w.lmHeadVD.shape.reduce((a, b) => a * b, 1);
  for (const l of w.layers) {
    for (const x of Object.values(l)) n += x.shape ? x.shape.reduce((a, b) => a * b, 1) : x.length;
  }
  return n;
}

async function run({ prompt, options }) {
  if (!model) throw new Error("load a model first");
  if (typeof prompt === "string" && !tokenizer) {
    throw new Error("this model has no tokenizer.model: give the prompt as token ids (tick the box)");
  }
  controller = new AbortController();
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const gen = generate(model, prompt, { ...given, signal: controller.signal, ...(tokenizer ? { tokenizer } : {}) });
  for await (const step of gen) {
    postMessage({ type: "token", id: step.id, text: tokenizer ? step.text : `${step.id} ` });
    await yieldToEvents();
  }
  const r = await gen.result;
  postMessage({
    type: "done", ids: r.ids, text: r.text, stopReason: r.stopReason, promptTokens: r.promptTokens, generatedTokens: r.generatedTokens,
    prefillTokensPerSecond: r.prefillTokensPerSecond, decodeTokensPerSecond: r.decodeTokensPerSecond, threads: r.threads,
  });
}

onmessage = async ({ data: m }) => {
  if (m.type === "stop") return controller?.abort(new Error("stopped"));
  try {
    if (m.type === "load") await load(m);
    else if (m.type === "generate") await run(m);
  } catch (e) {
    if (m.type === "load") model = null;
    const message = controller?.signal.aborted && m.type === "load" ? "loading was stopped" : String(e?.message ?? e);
    postMessage({ type: "error", message, loaded: model !== null });
  }
};
