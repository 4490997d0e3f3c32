// Throughput of the pytorch_model.bin reader: CRC-32 alone, a contiguous tensor read (one
// ranged read + CRC on the destination), a transposed tensor (gather), and opening a checkpoint
// (directory + unpickling). Run: npm run bench:pytorch-read   (writes a ~64 MB temp file)

import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Bench } from "tinybench";
import { crc32 } from "../src/io/zip.js";
import { openPytorchCheckpoint } from "../src/io/files.js";
import { stateDictPickle, torchZip } from "../tests/io/pytorch-helpers.js";

const R = 4096,
  C = 8192; // one [4096, 8192] f16 tensor: 32M elements, 64 MB
const bytes = new Uint8Array(R * C * 2);
for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 2654435761) >>> 24;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mobilellm-bench-"));
const file = path.join(dir, "pytorch_model.bin");
fs.writeFileSync(
  file,
  torchZip(
    stateDictPickle([
      { name: "w", storageType: "HalfStorage", key: "0", storageNumel: R * C, offset: 0, shape: [R, C], stride: [C, 1] },
      { name: "wT", storageType: "HalfStorage", key: "0", storageNumel: R * C, offset: 0, shape: [C, R], stride: [1, C] },
    ]),
    new Map([["0", bytes]]),
    { zip64: true },
  ),
);
const ckpt = await openPytorchCheckpoint(file);
const dst = new Uint8Array(bytes.length);
const fixture = path.join(
  import.meta.dirname ?? path.dirname(new URL(import.meta.url).pathname),
  "..",
  "tests",
  "fixtures",
  "tiny-gqa",
  "pytorch_model.bin",
);

const bench = new Bench({ iterations: 5, warmupIterations: 1 });
bench
  .add("crc32 64 MB (in memory)", () => void crc32(bytes))
  .add("read contiguous [4096, 8192] f16 (64 MB, CRC checked)", () => ckpt.tensors.get("w")!.read(dst))
  .add("read transposed [8192, 4096] f16 (64 MB, gather)", () => ckpt.tensors.get("wT")!.read(dst))
  .add("open tiny-gqa pytorch_model.bin (directory + unpickle)", async () => (await openPytorchCheckpoint(fixture)).close());
await bench.run();
const mb = bytes.length / 2 ** 20;
console.table(
  bench.tasks.map((t) => {
    const r = t.result as { latency?: { mean: number } };
    const ms = r.latency?.mean ?? NaN;
    return { task: t.name, "mean ms": ms.toFixed(2), "MB/s": t.name.includes("64 MB") ? (mb / (ms / 1000)).toFixed(0) : "" };
  }),
);
ckpt.close();
fs.rmSync(dir, { recursive: true, force: true });
