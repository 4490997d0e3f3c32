// mobilellm tokenize: text to token ids and pieces with a model's SentencePiece tokenizer (or ids
// back to text with --ids).

import { existsSync, statSync } from "node:fs";
import { loadTokenizer } from "../../load.js";
import { idsFlag, UsageError, type Command } from "../command.js";
import { resolveModelArg } from "../model-arg.js";

export const tokenize: Command = {
  name: "tokenize",
  summary: "Show the token ids and pieces of a text (or decode ids)",
  usage: "[--model DIR] (--text TEXT | --ids 1,2,3) [--no-bos] [--json]",
  options: {
    model: {
      type: "string",
      short: "m",
      value: "DIR",
      description: "model folder holding tokenizer.model, a tokenizer.model file, or a hub id",
    },
    text: { type: "string", value: "TEXT", description: "text to encode" },
    ids: { type: "string", value: "IDS", description: "comma-separated ids to decode instead" },
    "no-bos": { type: "boolean", description: "do not prepend the BOS id (MobileLLM's tokenizer adds it)" },
    quiet: { type: "boolean", short: "q", description: "no download progress on stderr" },
    json: { type: "boolean", description: "print one JSON object" },
  },
  details: [
    "Examples:",
    '  mobilellm tokenize --text "Hello world"',
    "  mobilellm tokenize --ids 1,450,1024 --json",
    '  mobilellm tokenize --model facebook/MobileLLM-125M --text "Hello world" --json',
  ].join("\n"),

  async run(values, _positionals, { stdout, signal }) {
    if ((values.text === undefined) === (values.ids === undefined)) throw new UsageError("give exactly one of --text TEXT or --ids 1,2,3");
    const decodeIds = values.ids !== undefined ? idsFlag(values.ids as string) : null;
    const model = values.model as string | undefined;
    const source =
      model !== undefined && existsSync(model) && statSync(model).isFile()
        ? model
        : await resolveModelArg(model, { signal, quiet: values.quiet === true });
    const tok = await loadTokenizer(source);
    if (decodeIds) {
      const bad = decodeIds.find((id) => id >= tok.vocabSize);
      if (bad !== undefined) throw new UsageError(`--ids: ${bad} is outside the vocabulary [0, ${tok.vocabSize})`);
      const text = tok.decode(decodeIds);
      const pieces = decodeIds.map((id) => tok.idToPiece(id));
      stdout.write(values.json ? JSON.stringify({ ids: decodeIds, pieces, text }) + "\n" : text + "\n");
      return;
    }
    const { ids, pieces } = tok.encodeWithPieces(values.text as string, { addBos: !values["no-bos"] });
    if (values.json) {
      stdout.write(JSON.stringify({ ids, pieces, count: ids.length }) + "\n");
      return;
    }
    const width = Math.max(2, ...ids.map((id) => String(id).length));
    stdout.write(ids.map((id, i) => `${String(id).padStart(width)}  ${JSON.stringify(pieces[i])}`).join("\n") + `\n${ids.length} tokens\n`);
  },
};
