// Numbers and samples for this model card, from the exported model. Run from the repository root
// after `npm run build`:
//   node models/shakespeare-2m/evaluate.mjs models/shakespeare-2m DATA_TRAIN DATA_VAL [backend] [max val sequences]
// DATA_TRAIN / DATA_VAL are the `mobilellm prepare` outputs (BASEPATH/1/data.jsonl + prepare.json).
// Prints the validation loss (nats/token) and bits per byte of the model and of a unigram
// baseline (token frequencies of the training split, add-one smoothed), and greedy and sampled
// continuations of a few prompts.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadModel } from "../../dist/load.js";
import { loadTokenizer } from "../../dist/tokenizer/index.js";
import { Rng } from "../../dist/train/rng.js";

const [dir, trainBase, valBase, backend = "wasm", limit = "Infinity"] = process.argv.slice(2);
const read = (base) => readFileSync(join(base, "1", "data.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).token_ids);
const info = (base) => JSON.parse(readFileSync(join(base, "prepare.json"), "utf8"));
const bytesPerToken = (base) => { const p = info(base); return p.text_bytes / (p.tokens + p.dropped_tokens); };
const model = await loadModel(dir, { backend, maxPositions: 512 });
const tok = await loadTokenizer(join(dir, "tokenizer.model"));
const V = model.config.vocabSize;

// Mean next-token loss over every sequence (position t predicts t+1, as in training).
function loss(seqs) {
  let sum = 0, n = 0;
  for (const ids of seqs) {
    const logits = model.forward(ids);
    for (let t = 0; t + 1 < ids.length; t++) {
      const row = logits.subarray(t * V, (t + 1) * V);
      let max = -Infinity;
      for (const x of row) if (x > max) max = x;
      let s = 0;
      for (const x of row) s += Math.exp(x - max);
      sum += Math.log(s) + max - row[ids[t + 1]];
      n++;
    }
  }
  return sum / n;
}

const train = read(trainBase), val = read(valBase).slice(0, Number(limit));
const counts = new Float64Array(V).fill(1);
let total = V;
for (const ids of train) for (const id of ids) { counts[id]++; total++; }
let uni = 0, un = 0;
for (const ids of val) for (let t = 1; t < ids.length; t++) { uni -= Math.log(counts[ids[t]] / total); un++; }
uni /= un;
const bpt = bytesPerToken(valBase);
const valLoss = loss(val);
const trainLoss = loss(train.slice(0, val.length)); // the same number of sequences from the start of the training split
const bpb = (nats) => nats / Math.LN2 / bpt;
console.log(JSON.stringify({
  val_sequences: val.length, val_bytes_per_token: +bpt.toFixed(4),
  val_loss: +valLoss.toFixed(4), val_bpb: +bpb(valLoss).toFixed(4),
  train_loss_first_val_size_sequences: +trainLoss.toFixed(4), train_bpb: +(trainLoss / Math.LN2 / bytesPerToken(trainBase)).toFixed(4),
  unigram_val_loss: +uni.toFixed(4), unigram_val_bpb: +bpb(uni).toFixed(4),
}, null, 2));

// Greedy and sampled continuations (temperature 0.8, top-k 40, seeded).
const rng = new Rng(1234);
function generate(prompt, n, temperature, topK) {
  // The training text was tokenized as whole documents, so a speaker's name follows a newline
  // byte with no '▁' before it: encode "\n\n" + prompt and drop the dummy-prefix '▁' in front.
  const ids = tok.encode("\n\n" + prompt, { addBos: false });
  if (tok.idToPiece(ids[0]) === "\u2581") ids.shift();
  model.reset();
  let logits = model.feed(ids);
  const out = [];
  for (let i = 0; i < n; i++) {
    let id = 0;
    if (temperature === 0) {
      for (let v = 1; v < V; v++) if (logits[v] > logits[id]) id = v;
    } else {
      const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]).slice(0, topK);
      const w = order.map((v) => Math.exp((logits[v] - logits[order[0]]) / temperature));
      let r = rng.uniform() * w.reduce((a, b) => a + b, 0);
      id = order[order.length - 1];
      for (let j = 0; j < order.length; j++) if ((r -= w[j]) <= 0) { id = order[j]; break; }
    }
    if (id === model.config.eosTokenId) break;
    out.push(id);
    logits = model.feed([id]);
  }
  return prompt + tok.decode(out);
}
for (const prompt of ["ROMEO:\n", "First Citizen:\nWe are", "KING HENRY VI:\n"]) {
  console.log(`--- greedy: ${JSON.stringify(prompt)}\n${generate(prompt, 80, 0, 0)}`);
  console.log(`--- sampled (T=0.8, top-k 40): ${JSON.stringify(prompt)}\n${generate(prompt, 80, 0.8, 40)}`);
}
