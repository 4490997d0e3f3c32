// Run TypeScript files (bench/, scripts/) directly on Node 20, which cannot strip types itself:
//   node --import ./scripts/ts-loader.mjs bench/tokenizer.bench.ts
// The hooks (ts-loader-hooks.mjs) resolve "./x.js" imports to "./x.ts" when only the .ts exists
// (NodeNext style) and compile each .ts module with the project's TypeScript (no type check).
import { register } from "node:module";

register("./ts-loader-hooks.mjs", import.meta.url);
