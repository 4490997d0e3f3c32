// The demo page: the controls, and the messages to and from the model's Web Worker (worker.js).
// The page itself never touches the model, so it stays responsive while the worker computes.
// body[data-state] says where it is (idle, loading, ready, generating, error): the tests wait on it.

const $ = (id) => document.getElementById(id);
const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });

$("env").textContent = globalThis.crossOriginIsolated
  ? "This page is cross-origin isolated (SharedArrayBuffer available)."
  : "This page is not cross-origin isolated (no SharedArrayBuffer): one thread.";

function setState(state, status) {
  document.body.dataset.state = state;
  if (status !== undefined) $("status").textContent = status;
  $("load").disabled = state === "loading" || state === "generating";
  $("generate").disabled = state !== "ready";
  $("stop").disabled = state !== "loading" && state !== "generating";
}

function showError(message) {
  $("error").hidden = false;
  $("error").textContent = message;
  $("progress").hidden = true;
}

// ---- choosing a model ---------------------------------------------------------------------------
let droppedFiles = null;

$("files").addEventListener("change", () => {
  droppedFiles = null;
  document.querySelector('input[name=source][value=files]').checked = true;
});
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  droppedFiles = [...e.dataTransfer.files];
  drop.textContent = droppedFiles.map((f) => f.name).join(", ");
  document.querySelector('input[name=source][value=files]').checked = true;
});

function chosenSource() {
  const kind = document.querySelector("input[name=source]:checked").value;
  if (kind === "url") {
    const url = $("url").value.trim();
    if (!url) throw new Error("enter the URL of a model folder (config.json, weights, tokenizer.model) or of a .gguf file");
    return { kind, url: new URL(url, location.href).href };
  }
  if (kind === "hub") {
    const id = $("hub").value.trim();
    if (!id) throw new Error('enter a hub id such as "facebook/MobileLLM-125M"');
    return { kind, id };
  }
  if (kind === "files") {
    const files = droppedFiles ?? [...$("files").files];
    if (files.length === 0) throw new Error("choose the model's files (config.json, the weights, tokenizer.model), or drop them on the box");
    return { kind, files };
  }
  return { kind: "default" };
}

$("load").addEventListener("click", () => {
  $("error").hidden = true;
  let source;
  try {
    source = chosenSource();
  } catch (e) {
    return showError(e.message);
  }
  $("progress").hidden = false;
  $("progress").removeAttribute("value");
  $("progress-text").textContent = "";
  setState("loading", "Loading…");
  worker.postMessage({ type: "load", source, dtype: $("dtype").value });
});

// ---- generating ---------------------------------------------------------------------------------
function numberField(id) {
  const v = $(id).value.trim();
  return v === "" ? undefined : Number(v);
}

$("generate").addEventListener("click", () => {
  $("error").hidden = true;
  $("output").textContent = "";
  $("ids").textContent = "";
  $("stats").textContent = "";
  const text = $("prompt").value;
  let prompt = text;
  if ($("as-ids").checked) {
    prompt = text.split(/[\s,]+/).filter(Boolean).map(Number);
    if (prompt.length === 0 || prompt.some((n) => !Number.isInteger(n) || n < 0)) return showError("token ids must be non-negative integers separated by commas");
  }
  const options = {
    maxNewTokens: numberField("max-new-tokens"), temperature: numberField("temperature"),
    topK: numberField("top-k"), topP: numberField("top-p"), seed: numberField("seed"),
  };
  setState("generating", "Generating…");
  started = performance.now();
  generated = 0;
  worker.postMessage({ type: "generate", prompt, options });
});

$("stop").addEventListener("click", () => worker.postMessage({ type: "stop" }));

// ---- what the worker says -----------------------------------------------------------------------
let started = 0, generated = 0;
const ids = [];

worker.onmessage = ({ data: m }) => {
  switch (m.type) {
    case "progress": {
      document.body.dataset.progressEvents = String(Number(document.body.dataset.progressEvents ?? 0) + 1);
      const p = $("progress");
      if (m.total) { p.max = m.total; p.value = m.loaded; } else p.removeAttribute("value");
      const mb = (b) => (b / 2 ** 20).toFixed(1);
      $("progress-text").textContent = `${m.phase === "download" ? "downloading" : "reading"} ${m.file}: ` +
        `${mb(m.loaded)}${m.total ? ` / ${mb(m.total)}` : ""} MB`;
      break;
    }
    case "loaded":
      document.body.dataset.threads = String(m.threads);
      document.body.dataset.memory = m.shared ? "shared" : "unshared";
      $("progress").hidden = true;
      $("progress-text").textContent = "";
      setState("ready", `Loaded ${m.name}: ${m.parameters} parameters, ${m.layers} layers, ` +
        `${m.threads} thread${m.threads === 1 ? "" : "s"} (${m.shared ? "shared" : "unshared"} wasm memory)` +
        (m.hasTokenizer ? "." : "; no tokenizer.model: give the prompt as token ids."));
      break;
    case "token":
      ids.push(m.id);
      generated++;
      $("output").textContent += m.text ?? "";
      $("ids").textContent = ids.join(",");
      $("stats").textContent = `${generated} tokens, ${(generated / ((performance.now() - started) / 1000)).toFixed(1)} tokens/s`;
      break;
    case "done":
      ids.length = 0;
      $("ids").textContent = m.ids.join(",");
      $("stats").textContent = `${m.generatedTokens} tokens (${m.stopReason}); prompt ${m.promptTokens} tokens at ` +
        `${m.prefillTokensPerSecond.toFixed(1)} tokens/s, generation ${m.decodeTokensPerSecond.toFixed(1)} tokens/s, ` +
        `${m.threads} thread${m.threads === 1 ? "" : "s"}`;
      setState("ready", m.stopReason === "abort" ? "Stopped." : "Done.");
      document.body.dataset.state = "done";
      break;
    case "error":
      showError(m.message);
      ids.length = 0;
      setState(m.loaded ? "ready" : "idle", m.loaded ? "The model is still loaded." : "Nothing loaded.");
      document.body.dataset.state = "error";
      break;
  }
};

worker.onerror = (e) => {
  showError(`the worker failed: ${e.message ?? "unknown error"}`);
  setState("idle");
  document.body.dataset.state = "error";
};

setState("idle");
