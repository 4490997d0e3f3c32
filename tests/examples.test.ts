// Every command line in README.md and in every command's --help runs as written: extracted here
// and run with the built CLI in a scratch folder that holds small files under the names the
// examples use (corpus.txt, tasks/, the WikiText-2 parquet path, models/ -> the repo's), against
// the embedded default model. Hub ids (facebook/MobileLLM-125M) go to a local stand-in for the
// hub (tests/io/hub-fake.ts) serving the default model's files; nothing else is skipped.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetWriteFile } from "hyparquet-writer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commandHelp } from "../src/cli/command.js";
import { COMMANDS } from "../src/cli/commands/index.js";
import { Mulberry32 } from "../src/util/rng.js";
import { defaultModel } from "../src/load.js";
import { startFakeHub, type FakeHub } from "./io/hub-fake.js";
import { FIXTURES } from "./helpers.js";
import { HAS_BIN, mobilellmAsync, ROOT } from "./cli/bin-helpers.js";

/** Split a command line as sh does for the quoting the examples use ('...', "...", \\ in "..."). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | null = null,
    i = 0;
  while (i < line.length) {
    const ch = line[i]!;
    if (ch === " " || ch === "\t") {
      if (word !== null) words.push(word);
      word = null;
      i++;
    } else if (ch === "#" && word === null) {
      break; // a comment
    } else if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unclosed ' in: ${line}`);
      word = (word ?? "") + line.slice(i + 1, end);
      i = end + 1;
    } else if (ch === '"') {
      let j = i + 1,
        s = "";
      while (j < line.length && line[j] !== '"') {
        if (line[j] === "\\" && '"\\$`'.includes(line[j + 1] ?? "")) j++;
        s += line[j++];
      }
      if (j >= line.length) throw new Error(`unclosed " in: ${line}`);
      word = (word ?? "") + s;
      i = j + 1;
    } else {
      word = (word ?? "") + ch;
      i++;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

/** The mobilellm arguments of an example line, or null for lines that are not a mobilellm run. */
function exampleArgs(line: string): string[] | null {
  const words = shellWords(line.trim().replace(/^Example: /, ""));
  if (words[0] === "npx" && words[1] === "mobilellm") return words.slice(2);
  if (words[0] === "mobilellm") return words.slice(1);
  const run = words.indexOf("run");
  if (words[0] === "npm" || words.includes("&&")) {
    // `npm ci && npm run generate -- ARGS`: the package script "generate" is `mobilellm generate`.
    if (run >= 0 && words[run + 1] === "generate" && words[run + 2] === "--") return ["generate", ...words.slice(run + 3)];
    return null; // npm ci / npm test: installing and the test suite itself
  }
  return null;
}

function readmeExamples(): string[] {
  const lines: string[] = [];
  let inSh = false;
  for (const line of readFileSync(join(ROOT, "README.md"), "utf8").split("\n")) {
    if (line.startsWith("```")) inSh = line.trim() === "```sh";
    else if (inSh && exampleArgs(line)) lines.push(line);
  }
  return lines;
}

function helpExamples(): string[] {
  return COMMANDS.flatMap((c) =>
    commandHelp(c)
      .split("\n")
      .filter((l) => /^\s*(Example: )?mobilellm /.test(l)),
  );
}

describe("example extraction", () => {
  it("splits words like sh and finds the examples", () => {
    expect(shellWords(`npx mobilellm generate --prompt "The \\"capital\\"" --stop '\\n\\n' -n 20   # greedy`)).toEqual([
      "npx",
      "mobilellm",
      "generate",
      "--prompt",
      'The "capital"',
      "--stop",
      "\\n\\n",
      "-n",
      "20",
    ]);
    expect(exampleArgs(`npm ci && npm run generate -- --prompt "ROMEO:" --temperature 0.8`)).toEqual([
      "generate",
      "--prompt",
      "ROMEO:",
      "--temperature",
      "0.8",
    ]);
    expect(exampleArgs("npm ci && npm test")).toBeNull();
    expect(readmeExamples().length).toBeGreaterThanOrEqual(15);
    expect(helpExamples().length).toBeGreaterThanOrEqual(12);
    for (const c of COMMANDS)
      if (c.details?.includes("mobilellm ")) expect(helpExamples().some((l) => l.includes(`mobilellm ${c.name} `))).toBe(true);
  });
});

describe.skipIf(!HAS_BIN)("every README and --help command line runs as written", () => {
  let hub: FakeHub;
  const scratch: string[] = [];
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    const files = ["config.json", "model.safetensors", "tokenizer.model"].map((name) => ({
      name,
      data: readFileSync(join(defaultModel, name)),
      lfs: name !== "config.json",
    }));
    const commit = "c0ffee".padEnd(40, "0");
    hub = await startFakeHub([{ id: "facebook/MobileLLM-125M", refs: { main: commit }, commits: { [commit]: files } }]);
    env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: "", HF_HUB_OFFLINE: "", HF_TOKEN: "", MOBILELLM_PROGRESS_INTERVAL: "" };
  });
  afterAll(async () => {
    await hub?.close();
    for (const d of scratch) rmSync(d, { recursive: true, force: true });
  });

  /**
   * Seeded words of random syllables: enough distinct pairs for the README's 2048-piece
   * train-tokenizer line to get all 2048 pieces, so the model trained on it (vocabulary 2048)
   * never samples an id its tokenizer cannot decode.
   */
  function diverseText(words: number): string {
    const rng = new Mulberry32(7),
      syllables = ["ka", "ro", "mi", "te", "su", "lo", "ne", "pa", "vi", "do", "ha", "ze", "qu", "ith", "orn", "el"];
    const out: string[] = [];
    for (let i = 0; i < words; i++) {
      let w = "";
      for (let n = 1 + (rng.nextUint32() % 4); n > 0; n--) w += syllables[rng.nextUint32() % syllables.length];
      out.push(i % 12 === 11 ? `${w}.\n` : w);
    }
    return out.join(" ");
  }

  /** A scratch folder with the files the examples name. */
  function workFolder(): string {
    const work = mkdtempSync(join(tmpdir(), "mobilellm-examples-"));
    scratch.push(work);
    symlinkSync(join(ROOT, "models"), join(work, "models"));
    const text = readFileSync(join(defaultModel, "README.md"), "utf8");
    writeFileSync(join(work, "corpus.txt"), text + diverseText(40_000));
    mkdirSync(join(work, "wikitext-2-raw-v1"));
    const rows = text
      .split("\n")
      .slice(0, 50)
      .map((l) => ` ${l}\n`);
    parquetWriteFile({
      filename: join(work, "wikitext-2-raw-v1", "test-00000-of-00001.parquet"),
      columnData: [{ name: "text", data: rows, type: "STRING" }],
    });
    cpSync(join(FIXTURES, "eval"), join(work, "tasks"), { recursive: true });
    return work;
  }

  // Each source in order in its own folder: the README's pretraining lines make tok/, data/ and
  // runs/a that its later lines use; likewise train-tokenizer's help example makes tok/ for prepare's.
  for (const [source, lines] of [
    ["README.md", readmeExamples()],
    ["--help", helpExamples()],
  ] as const) {
    describe(source, () => {
      let work: string;
      beforeAll(() => {
        work = workFolder();
      });
      it.each(lines.map((l, i) => [i + 1, l.trim()] as const))("%i: %s", async (_i, line) => {
        // Asynchronously: the stand-in hub answers from this process.
        const r = await mobilellmAsync(exampleArgs(line)!, { cwd: work, env: { ...env, HF_HOME: join(work, "hf") } }).done;
        expect(r.code, `${line}\n${r.stderr}`).toBe(0);
      });
    });
  }
});
