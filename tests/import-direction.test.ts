// The layers' dependencies point one way: kernels <- model <- generate / eval / train <- cli.
// A file may import its own layer and the layers below it, never one above it or a sibling
// (generate, eval and train use the model and know nothing of each other). Folders outside the
// chain (io, tokenizer, util, the top-level files) are not ranked here.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, posix, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = join(dirname(fileURLToPath(import.meta.url)), "..", "src");

/** Rank of each layer: a file may import only layers of a lower rank (or its own folder). */
const LAYERS: Record<string, number> = { kernels: 0, model: 1, generate: 2, eval: 2, train: 2, cli: 3 };

/** Every relative import of a file: `import … from`, `export … from`, `import("…")`. */
function importsOf(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.[^"']+)["']/gm)) out.push(m[1]!);
  return out;
}

/** The violations in a graph of src-relative posix paths -> src-relative imported paths. */
function layerViolations(graph: Map<string, string[]>): string[] {
  const layerOf = (file: string) => file.split("/")[0]!;
  const bad: string[] = [];
  for (const [file, targets] of graph) {
    const from = layerOf(file),
      rankFrom = LAYERS[from];
    if (rankFrom === undefined) continue;
    for (const target of targets) {
      const to = layerOf(target),
        rankTo = LAYERS[to];
      if (rankTo === undefined || to === from) continue;
      if (rankTo >= rankFrom) bad.push(`${file} imports ${target} (${from} may not depend on ${to})`);
    }
  }
  return bad;
}

function sourceGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".ts")) {
        const file = relative(SRC, p).split("\\").join("/");
        graph.set(
          file,
          importsOf(readFileSync(p, "utf8")).map((s) => posix.normalize(posix.join(posix.dirname(file), s))),
        );
      }
    }
  };
  walk(SRC);
  return graph;
}

describe("import direction", () => {
  it("src/ has no import against the layer order kernels <- model <- generate/eval/train <- cli", () => {
    const graph = sourceGraph();
    expect(graph.size).toBeGreaterThan(50);
    expect([...graph.values()].flat().length).toBeGreaterThan(100); // the scan does see the imports
    expect(layerViolations(graph)).toEqual([]);
  });

  it("the check catches each kind of wrong-way import", () => {
    const text = `import { a } from "../generate/generate.js";\nexport { b } from "../cli/main.js";\nconst c = await import("../eval/harness.js");`;
    expect(importsOf(text)).toEqual(["../generate/generate.js", "../cli/main.js", "../eval/harness.js"]);
    expect(
      layerViolations(
        new Map([
          ["model/model.ts", ["generate/generate.js", "kernels/kernels.js"]], // upward: bad; downward: fine
          ["kernels/ts/index.ts", ["model/config.js"]],
          ["eval/harness.ts", ["train/rng.js", "model/model.js", "util/argmax.js"]], // sibling: bad
          ["generate/generate.ts", ["cli/main.js", "generate/sampling.js"]],
          ["cli/main.ts", ["train/index.js", "io/hub.js"]],
        ]),
      ),
    ).toEqual([
      "model/model.ts imports generate/generate.js (model may not depend on generate)",
      "kernels/ts/index.ts imports model/config.js (kernels may not depend on model)",
      "eval/harness.ts imports train/rng.js (eval may not depend on train)",
      "generate/generate.ts imports cli/main.js (generate may not depend on cli)",
    ]);
  });
});
