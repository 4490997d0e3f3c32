// The import graph of a TypeScript/JavaScript module tree, read from the source text: which modules
// an entry reaches through `import ... from`, `export ... from`, `import "x"` and literal
// `import("x")`, and which of them import a Node built-in (`node:fs`, or a bare `fs`). Used by
// tests/browser-imports.test.ts to keep the browser entry free of Node.

import { existsSync, readFileSync, statSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve } from "node:path";

export interface NodeImport {
  /** The importing module, relative to `root`. */
  module: string;
  specifier: string;
  /** "static": import/export ... from, import "x" (always loaded); "dynamic": import("x") (loaded when run). */
  kind: "static" | "dynamic";
}

const BUILTINS = new Set(builtinModules);

/** Is `spec` a Node built-in module ("node:fs", "fs", "fs/promises")? */
export function isNodeBuiltin(spec: string): boolean {
  return spec.startsWith("node:") || BUILTINS.has(spec) || BUILTINS.has(spec.split("/")[0]!);
}

/**
 * The specifiers a module's text imports, by kind. Comments are stripped first (a commented-out
 * import is none), and `import type` / `export type` bring no code, so they are no edges.
 */
export function importsOf(text: string): { specifier: string; kind: "static" | "dynamic" }[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`\\])\/\/.*$/gm, "$1");
  const out: { specifier: string; kind: "static" | "dynamic" }[] = [];
  const statement = /(?:^|[;\n}])\s*(import|export)\s+(type\s+)?([^"'`;]*?)\s*(?:from\s*)?["']([^"']+)["']/g;
  for (const m of code.matchAll(statement)) {
    const [, keyword, typeOnly, clause] = m;
    if (typeOnly) continue;
    if (keyword === "export" && !/^(\*(\s+as\s+\w+)?|\{[^}]*\})$/.test(clause!)) continue;
    out.push({ specifier: m[4]!, kind: "static" });
  }
  for (const m of code.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g)) out.push({ specifier: m[1]!, kind: "dynamic" });
  return out;
}

/** A relative specifier as a file: "./x.js" is ./x.ts in a TypeScript tree. */
function resolveFile(from: string, spec: string): string | undefined {
  const base = resolve(dirname(from), spec);
  const candidates = [base, base.replace(/\.js$/, ".ts"), base.replace(/\.mjs$/, ".mts"), `${base}.ts`, join(base, "index.ts")];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

/**
 * Walk every module `entry` reaches (static and literal dynamic relative imports) and list each
 * Node built-in import on the way, plus the modules reached. A relative import that resolves to
 * no file is an error (the walk must not silently stop).
 */
export function nodeImportsReachable(entry: string, root = dirname(entry)): { reached: string[]; nodeImports: NodeImport[] } {
  const seen = new Set<string>();
  const nodeImports: NodeImport[] = [];
  const todo = [resolve(entry)];
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const { specifier, kind } of importsOf(readFileSync(file, "utf8"))) {
      if (specifier.startsWith(".")) {
        const target = resolveFile(file, specifier);
        if (!target) throw new Error(`${relative(root, file)}: import "${specifier}" resolves to no file`);
        todo.push(target);
      } else if (isNodeBuiltin(specifier)) {
        nodeImports.push({ module: relative(root, file), specifier, kind });
      }
    }
  }
  return { reached: [...seen].map((f) => relative(root, f)).sort(), nodeImports };
}
