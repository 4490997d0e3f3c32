// Step 1 of this model's recipe: train its BPE tokenizer with the project's trainer
// (src/tokenizer/train.ts) on the training split of tiny Shakespeare. Run from the repository
// root after `npm run build`:
//   node models/shakespeare-2m/train-tokenizer.mjs ../shared/data/tinyshakespeare.txt OUT/tokenizer.model
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { trainBpeTokenizer } from "../../dist/tokenizer/index.js";
import { splitText } from "../../dist/train/prepare.js";

const [input, out] = process.argv.slice(2);
const train = splitText(readFileSync(input, "utf8"), "train", 0.1); // the first 90%, cut after a newline
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, trainBpeTokenizer(train, { vocabSize: 2048 }));
console.log(`${out}: 2048-piece BPE tokenizer trained on ${Buffer.byteLength(train)} bytes`);
