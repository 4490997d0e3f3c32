// kill -9 at random moments of a pretraining run that saves every other step (most kills land
// inside a save: six fsyncs and three renames), then --resume, over and over. After every kill:
// `latest` names a complete checkpoint holding the tokenizer, and the loss log holds every step up
// to it, each line identical to an uninterrupted run's. At the end the resumed run's weights, Adam
// moments and log equal the uninterrupted run's bit for bit.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { Mulberry32 } from "../../src/util/rng.js";
import { latestCheckpoint } from "../../src/train/checkpoint.js";
import { FIXTURES, TESTS_DIR } from "../helpers.js";

const CLI = resolve(TESTS_DIR, "..", "dist", "cli", "main.js");
const KILLS = 24;
const STEPS = 600; // enough that 24 incarnations, each killed within 60 ms of training, do not finish the run

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-kill-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const V = 48;
const data = join(tmp, "data");
mkdirSync(join(data, "1"), { recursive: true });
writeFileSync(
  join(data, "1", "data.jsonl"),
  Array.from({ length: 40 }, (_, i) =>
    JSON.stringify({ token_ids: Array.from({ length: 9 }, (_, t) => 3 + ((i * 5 + t * 3) % (V - 3))) }),
  ).join("\n") + "\n",
);
const cfg = join(tmp, "config.json");
writeFileSync(
  cfg,
  JSON.stringify({
    model_type: "mobilellm",
    vocab_size: V,
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 8,
    max_position_embeddings: 32,
  }),
);
const tokenizer = join(FIXTURES, "tokenizer", "nofallback-bpe300.model");

function pretrainArgs(out: string, first: boolean): string[] {
  return first
    ? [
        "pretrain",
        "--config",
        cfg,
        "--data",
        data,
        "--out",
        out,
        "--steps",
        String(STEPS),
        "--save-every",
        "2",
        "--batch-size",
        "2",
        "--seq-len",
        "8",
        "--lr",
        "0.01",
        "--backend",
        "ts",
        "--tokenizer",
        tokenizer,
      ]
    : ["pretrain", "--out", out, "--resume"]; // every other option comes back from run.json
}

function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    p.stderr.on("data", (b) => {
      stderr += String(b);
    });
    p.on("close", (code) => res({ code, stderr }));
  });
}

const size = (f: string) => (existsSync(f) ? statSync(f).size : 0);

describe("kill -9 during pretraining saves", () => {
  it(`${KILLS} kills at random moments lose nothing, and --resume is bit-exact`, async () => {
    const ref = join(tmp, "reference");
    const r = await run(pretrainArgs(ref, true));
    expect(r.code, r.stderr).toBe(0);
    const refLog = readFileSync(join(ref, "loss.jsonl"), "utf8")
      .split("\n")
      .filter((l) => l !== "");
    expect(refLog.length).toBe(STEPS);

    const out = join(tmp, "killed");
    const rng = new Mulberry32(19);
    let kills = 0,
      first = true,
      lastStep = 0;
    while (kills < KILLS) {
      const log = join(out, "loss.jsonl");
      const before = size(log);
      const child = spawn(process.execPath, [CLI, ...pretrainArgs(out, first)], { stdio: ["ignore", "ignore", "pipe"] });
      let stderr = "";
      child.stderr.on("data", (b) => {
        stderr += String(b);
      });
      const exited = new Promise<number | null>((res) => child.on("close", (code) => res(code)));
      let done = false,
        killed = false;
      void exited.then(() => {
        done = true;
      });
      // wait until this incarnation is training (its log grew), then kill it at a random moment
      while (!done && size(log) <= before) await sleep(5);
      if (!done) {
        await sleep(rng.next() * 60);
        killed = child.kill("SIGKILL");
      }
      const code = await exited;
      if (code === 0) break; // finished before the kill: no more steps to interrupt
      expect(killed, `the run failed by itself after ${kills} kills: ${stderr}`).toBe(true);
      kills++;
      first = false;

      // What a resume would see.
      const latest = latestCheckpoint(out);
      if (latest === null) continue;
      const step = Number(/checkpoint-(\d+)$/.exec(latest)![1]);
      expect(step).toBeGreaterThanOrEqual(lastStep);
      lastStep = step;
      for (const f of ["config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json", "tokenizer.model"]) {
        expect(existsSync(join(latest, f)), `${latest}/${f} after kill ${kills}`).toBe(true);
      }
      expect(readFileSync(join(latest, "tokenizer.model")).equals(readFileSync(tokenizer))).toBe(true);
      const lines = readFileSync(log, "utf8").split("\n");
      lines.pop(); // a line torn by the kill (or the empty string after the last newline)
      expect(lines.length, `loss.jsonl after kill ${kills} (latest ${latest})`).toBeGreaterThanOrEqual(step);
      expect(lines.slice(0, step)).toEqual(refLog.slice(0, step));
    }
    expect(kills).toBe(KILLS);
    expect(lastStep).toBeGreaterThan(0);

    const fin = await run(pretrainArgs(out, false));
    expect(fin.code, fin.stderr).toBe(0);
    expect(readFileSync(join(out, "loss.jsonl"), "utf8")).toBe(readFileSync(join(ref, "loss.jsonl"), "utf8"));
    for (const f of ["model.safetensors", "optimizer.safetensors", "tokenizer.model"]) {
      expect(readFileSync(join(out, `checkpoint-${STEPS}`, f)).equals(readFileSync(join(ref, `checkpoint-${STEPS}`, f))), f).toBe(true);
    }
  });
});
