// The browser entry (src/browser.ts -> dist/browser.js) must not reach any Node built-in: a page
// (or a bundler targeting browsers) cannot load `node:fs`. The checker is tried on small
// synthetic module trees first, so the check itself is known to fail when it should.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { TESTS_DIR } from "./helpers.js";
import { importsOf, nodeImportsReachable } from "./import-graph.js";

const SRC = join(TESTS_DIR, "..", "src");

const tmp = mkdtempSync(join(tmpdir(), "mobilellm-imports-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function tree(name: string, files: Record<string, string>): string {
  const dir = join(tmp, name);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(dir, f, ".."), { recursive: true });
    writeFileSync(join(dir, f), text);
  }
  return join(dir, "entry.ts");
}

describe("the import-graph checker", () => {
  it("finds a node: import two modules away, a bare builtin, export-from, side-effect and dynamic imports", () => {
    const entry = tree("bad", {
      "entry.ts": `import { a } from "./a.js";\nexport * from "./b.js";\nimport type { T } from "./types.js";\n// import { x } from "node:child_process";\n`,
      "a.ts": `import { c } from "./sub/c.js";\nexport const a = c;\n`,
      "sub/c.ts": `import { readFileSync } from "node:fs";\nexport const c = 1;\n`,
      "b.ts": `export { join } from "path";\nimport "node:process";\nexport async function f() { return import("node:os"); }\nexport const g = () => import("./d.js");\n`,
      "d.ts": `import * as wt from "worker_threads";\n`,
      "types.ts": `import { Buffer } from "node:buffer";\nexport type T = Buffer;\n`,
    });
    const { reached, nodeImports } = nodeImportsReachable(entry);
    expect(reached).toEqual(["a.ts", "b.ts", "d.ts", "entry.ts", "sub/c.ts"]); // a type-only import is no edge
    expect(nodeImports.map((i) => `${i.module} ${i.specifier} ${i.kind}`).sort()).toEqual([
      "b.ts node:os dynamic",
      "b.ts node:process static",
      "b.ts path static",
      "d.ts worker_threads static",
      "sub/c.ts node:fs static",
    ]);
  });

  it("passes a clean tree, and refuses an import that resolves to no file", () => {
    expect(
      nodeImportsReachable(tree("clean", { "entry.ts": `import { a } from "./a.js";\n`, "a.ts": `export const a = "node:fs";\n` }))
        .nodeImports,
    ).toEqual([]);
    expect(() => nodeImportsReachable(tree("missing", { "entry.ts": `import { a } from "./nope.js";\n` }))).toThrow(
      /entry\.ts: import "\.\/nope\.js" resolves to no file/,
    );
  });

  it("reads multi-line imports and ignores strings that merely look like imports", () => {
    expect(importsOf(`import {\n  a,\n  b,\n} from "node:fs";\nconst s = "import x from 'node:os'";\n`).map((i) => i.specifier)).toEqual([
      "node:fs",
    ]);
  });
});

describe("src/browser.ts", () => {
  const { reached, nodeImports } = nodeImportsReachable(join(SRC, "browser.ts"), SRC);

  it("reaches the model, kernels, tokenizer, readers and platform layer (the walk is real)", () => {
    for (const m of [
      "model/model.ts",
      "kernels/wasm/index.ts",
      "tokenizer/tokenizer.ts",
      "io/gguf.ts",
      "io/zip.ts",
      "platform/url.ts",
      "io/hub-browser.ts",
      "eval/perplexity.ts",
      "eval/harness.ts",
      "eval/tasks/index.ts",
    ]) {
      expect(reached).toContain(m);
    }
  });

  it("imports no Node built-in, statically or dynamically (Node-only code reaches them through process.getBuiltinModule)", () => {
    expect(nodeImports.map((i) => `${i.module} imports ${i.specifier} (${i.kind})`)).toEqual([]);
  });

  it("the Node entry does reach Node modules (the same check sees them)", () => {
    const node = nodeImportsReachable(join(SRC, "index.ts"), SRC);
    expect(node.nodeImports.some((i) => i.kind === "static" && i.specifier === "node:fs")).toBe(true);
  });
});
