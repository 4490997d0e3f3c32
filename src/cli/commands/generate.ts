// mobilellm generate: greedy continuation of token ids (sampling, text and streaming come with
// the generation module).

import { loadModel } from "../../load.js";
import { idsFlag, numberFlag, UsageError, type Command } from "../command.js";
import { resolveModelArg } from "../model-arg.js";

export const generate: Command = {
  name: "generate",
  summary: "Continue a prompt with the model",
  usage: "[--model DIR] --ids 1,2,3 [--max-new-tokens N] [--backend ts|wasm] [--json]",
  options: {
    model: { type: "string", short: "m", value: "DIR", description: "checkpoint folder" },
    ids: { type: "string", value: "IDS", description: "prompt as comma-separated token ids" },
    "max-new-tokens": { type: "string", value: "N", description: "tokens to generate", default: "16" },
    backend: { type: "string", value: "NAME", description: "kernel backend: ts or wasm", default: "ts" },
    json: { type: "boolean", description: "print one JSON object" },
  },
  async run(values, _positionals, { stdout, signal }) {
    if (values.ids === undefined) throw new UsageError("give the prompt with --ids 1,2,3");
    const ids = idsFlag(values.ids as string);
    const maxNew = numberFlag(values, "max-new-tokens", { integer: true, min: 1 })!;
    const backend = values.backend as string;
    if (backend !== "ts" && backend !== "wasm") throw new UsageError(`--backend must be ts or wasm, got ${JSON.stringify(backend)}`);
    const model = await loadModel(await resolveModelArg(values.model as string | undefined, { signal }), { backend });
    const out: number[] = [];
    let logits = model.feed(ids);
    for (let i = 0; i < maxNew && !signal.aborted; i++) {
      let best = 0;
      for (let v = 1; v < logits.length; v++) if (logits[v]! > logits[best]!) best = v;
      out.push(best);
      if (!values.json) stdout.write(`${i ? "," : ""}${best}`);
      if (best === model.config.eosTokenId) break;
      if (i + 1 < maxNew) logits = model.feed([best]);
    }
    stdout.write(values.json ? JSON.stringify({ ids: out }) + "\n" : "\n");
  },
};
