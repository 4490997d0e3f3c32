// Tokenizer encode/decode throughput with MobileLLM's tokenizer.model.
//
// Run (Node 20 cannot run .ts itself; the loader compiles src/ on the fly):
//   npm run bench:tokenizer   (node --import ./scripts/ts-loader.mjs bench/tokenizer.bench.ts)
// Needs ../shared/tokenizer/tokenizer.model and ../shared/data/tinyshakespeare.txt (read, never
// copied). "cold" empties the tokenizer's per-word cache before every iteration (untimed), as for
// text never seen before; "warm" keeps it, as when the same words come again.

import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Bench } from "tinybench";
import { Tokenizer, parseModelProto } from "../src/tokenizer/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const shared = join(here, "..", "..", "shared");
const modelPath = join(shared, "tokenizer", "tokenizer.model");
const textPath = join(shared, "data", "tinyshakespeare.txt");
if (!existsSync(modelPath) || !existsSync(textPath)) {
  console.log(`tokenizer bench: skipped, needs ${modelPath} and ${textPath}`);
  process.exit(0);
}

const model = parseModelProto(new Uint8Array(readFileSync(modelPath)), modelPath);
const MB = 1 << 20;

// 1 MB of English: the start of tiny Shakespeare (1.06 MiB) cut to 1 MiB of UTF-8 (all ASCII).
const english = readFileSync(textPath, "utf8").slice(0, MB);

// ~100 KB of CJK + emoji, generated: Chinese/Japanese/Korean runs, emoji, spaces and newlines.
const cjkAlphabet = [..."的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年", ..."日本語のテキストです", ..."한국어문장입니다"];
const emoji = ["😀", "🚀", "👩‍💻", "🇯🇵", "❤️", "🎉"];
let seed = 12345;
const rand = (n: number): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0), seed % n);
let cjk = "";
while (Buffer.byteLength(cjk, "utf8") < 100_000) {
  const r = rand(20);
  cjk += r === 0 ? "\n" : r < 3 ? " " : r < 5 ? emoji[rand(emoji.length)] : cjkAlphabet[rand(cjkAlphabet.length)];
}
const cjkBytes = Buffer.byteLength(cjk, "utf8");

const tok = new Tokenizer(model, modelPath);
const englishIds = tok.encode(english);
const fresh = { beforeEach: () => tok.clearCache() };

const bench = new Bench({ time: 2000, warmupTime: 500 });
bench
  .add("encode 1 MiB English (cold)", () => void tok.encode(english), fresh)
  .add("encode 1 MiB English (warm)", () => void tok.encode(english))
  .add(`encode ${(cjkBytes / 1000).toFixed(0)} KB CJK+emoji (cold)`, () => void tok.encode(cjk), fresh)
  .add("decode 1 MiB English ids", () => void tok.decode(englishIds));

const bytesPerRun = [MB, MB, cjkBytes, MB];
const cold = (): void => tok.clearCache();
const runs: [(() => void) | null, () => void][] = [
  [cold, () => void tok.encode(english)],
  [null, () => void tok.encode(english)],
  [cold, () => void tok.encode(cjk)],
  [null, () => void tok.decode(englishIds)],
];
await bench.run();

// Wall time is inflated when other processes share the cores, so also report the mean process
// CPU time per run (setup untimed, as above), over at least 20 runs and 0.5 s of CPU.
const cpuMs = runs.map(([setup, run]) => {
  let total = 0;
  let n = 0;
  while (n < 20 || total < 500) {
    setup?.();
    const t0 = process.cpuUsage().user;
    run();
    total += (process.cpuUsage().user - t0) / 1000;
    n++;
  }
  return total / n;
});

console.table(
  bench.tasks.map((task, i) => {
    const r = task.result;
    const ms = r.state === "completed" ? r.latency.mean : NaN;
    return {
      task: task.name,
      "mean ms (wall)": ms.toFixed(1),
      "MB/s (wall)": (bytesPerRun[i]! / MB / (ms / 1000)).toFixed(1),
      samples: r.state === "completed" ? r.latency.samplesCount : 0,
      "CPU ms": cpuMs[i]!.toFixed(1),
      "MB/s (CPU)": (bytesPerRun[i]! / MB / (cpuMs[i]! / 1000)).toFixed(1),
    };
  }),
);
console.log(`English: ${englishIds.length - 1} tokens for ${MB} bytes; CJK+emoji: ${cjkBytes} bytes`);
