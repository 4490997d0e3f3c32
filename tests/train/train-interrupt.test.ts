// Ctrl-C during `mobilellm pretrain` (the built CLI, in a child process): the child finishes the
// step it is in, writes a checkpoint, says where, and exits with 130; `--resume` then continues
// and ends with exactly the weights and losses of a run that was never interrupted.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseLossLog } from "../../src/train/loss-curve.js";
import { cli } from "../cli/cli-helpers.js";
import { TESTS_DIR } from "../helpers.js";

const BIN = join(TESTS_DIR, "..", "dist", "cli", "main.js");
if (!existsSync(BIN)) console.log("train-interrupt: skipped (dist/ is missing: `npm test` builds it first)");

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-interrupt-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const V = 40,
  STEPS = 150;
const data = join(tmp, "data");
mkdirSync(join(data, "1"), { recursive: true });
writeFileSync(
  join(data, "1", "data.jsonl"),
  Array.from({ length: 50 }, (_, i) =>
    JSON.stringify({ token_ids: Array.from({ length: 17 }, (_, t) => 3 + ((i * 5 + t * (1 + (i % 3))) % (V - 3))) }),
  ).join("\n") + "\n",
);
const config = join(tmp, "config.json");
writeFileSync(
  config,
  JSON.stringify({
    model_type: "mobilellm",
    vocab_size: V,
    hidden_size: 24,
    intermediate_size: 40,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 32,
    layer_sharing: false,
  }),
);
const args = (out: string) => [
  "pretrain",
  "--config",
  config,
  "--data",
  data,
  "--out",
  out,
  "--steps",
  String(STEPS),
  "--batch-size",
  "4",
  "--lr",
  "1e-2",
  "--backend",
  "ts",
  "--save-every",
  "1000",
];

/** Lines of loss.jsonl written so far (one per step). */
function stepsLogged(out: string): number {
  const f = join(out, "loss.jsonl");
  return existsSync(f)
    ? readFileSync(f, "utf8")
        .split("\n")
        .filter((l) => l.trim()).length
    : 0;
}

describe.skipIf(!existsSync(BIN))("pretrain interrupted by SIGINT", () => {
  it("checkpoints the finished step, exits 130, and --resume ends bit-identical to an uninterrupted run", async () => {
    const ref = join(tmp, "ref");
    expect((await cli(args(ref))).code).toBe(0);

    const out = join(tmp, "run");
    const child = spawn(process.execPath, [BIN, ...args(out)], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    let sent = false;
    const poll = setInterval(() => {
      if (!sent && stepsLogged(out) >= 3) {
        sent = true;
        child.kill("SIGINT");
      }
    }, 10);
    const code = await exited;
    clearInterval(poll);
    expect(sent, `the child finished all ${STEPS} steps before it could be interrupted:\n${stderr}`).toBe(true);
    expect(code, stderr).toBe(130);
    const m = /interrupted after step (\d+): the run continues from (\S+checkpoint-(\d+)) with --resume/.exec(stderr);
    expect(m, stderr).not.toBeNull();
    const step = Number(m![1]);
    expect(step).toBeGreaterThanOrEqual(3);
    expect(step).toBeLessThan(STEPS);
    expect(Number(m![3])).toBe(step);
    expect(readFileSync(join(out, "latest"), "utf8").trim()).toBe(`checkpoint-${step}`);

    const resumed = await cli(["pretrain", "--data", data, "--out", out, "--resume"]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(new RegExp(`resuming from .*checkpoint-${step} at step ${step}`));
    expect(readFileSync(join(out, `checkpoint-${STEPS}`, "model.safetensors"))).toEqual(
      readFileSync(join(ref, `checkpoint-${STEPS}`, "model.safetensors")),
    );
    const losses = (dir: string) => parseLossLog(readFileSync(join(dir, "loss.jsonl"), "utf8")).map((r) => r.loss);
    expect(losses(out)).toEqual(losses(ref));
  }, 120_000);
});
