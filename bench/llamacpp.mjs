// llama.cpp through the node-llama-cpp npm package, used by bench/quant.bench.mjs and
// tests/io/gguf-llamacpp.test.ts to run our GGUF files in a real client. It is not a dependency (with
// its GPU variants it installs ~700 MB); .ci/run installs its CPU build into .cache/llamacpp:
//   npm install --prefix .cache/llamacpp --no-save --omit=optional node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1
// and a plain `npm install --no-save node-llama-cpp@3.22.1` in the project works too.

import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

const CACHED = fileURLToPath(new URL("../.cache/llamacpp/node_modules/node-llama-cpp/dist/index.js", import.meta.url));

/** node-llama-cpp's CPU llama, or { error } saying why it cannot run here. */
export async function getLlamaCpp() {
  try {
    const name = existsSync(CACHED) ? pathToFileURL(CACHED).href : "node-llama-cpp";
    const mod = await import(/* @vite-ignore */ name);
    return { llama: await mod.getLlama({ gpu: false, build: "never", logLevel: mod.LlamaLogLevel.error }) };
  } catch (e) {
    return {
      error:
        `node-llama-cpp cannot run here (${String(e.message).split("\n")[0]}); install it as .ci/run does: ` +
        "`npm install --prefix .cache/llamacpp --no-save --omit=optional node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1`",
    };
  }
}

/**
 * Perplexity with llama.cpp as `mobilellm ppl` computes it: exp(mean next-token loss) over
 * non-overlapping windows of `seqlen` tokens, each evaluated from position 0. The loss of each
 * position comes from llama.cpp's logits (the target's and the largest, and Σ exp(logit − max)).
 */
export async function llamaPerplexity(llama, file, ids, seqlen) {
  const model = await llama.loadModel({ modelPath: file });
  const ctx = await model.createContext({ contextSize: seqlen, threads: 1, batchSize: seqlen });
  let nll = 0,
    n = 0;
  try {
    for (let w = 0; w + seqlen <= ids.length; w += seqlen) {
      const seq = ctx.getSequence();
      const window = ids.slice(w, w + seqlen);
      const input = window.map((t, i) =>
        i + 1 < seqlen
          ? [t, { generateNext: { logits: { filter: { tokens: [window[i + 1]], includeTop: 1 } }, totalLogitWeight: true } }]
          : t,
      );
      const out = await seq.controlledEvaluate(input);
      for (let i = 0; i + 1 < seqlen; i++) {
        const next = out[i].next;
        const max = Math.max(...next.logits.values());
        nll -= next.logits.get(window[i + 1]) - max - Math.log(next.totalLogitWeight);
        n++;
      }
      await seq.clearHistory();
      seq.dispose();
    }
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
  return Math.exp(nll / n);
}
