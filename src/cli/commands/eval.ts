// mobilellm eval: zero-shot commonsense reasoning (the MobileLLM paper's eight tasks) in the style
// of lm-evaluation-harness, on local JSONL/parquet files in the datasets' own field layout.

import { existsSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { evaluateTask } from "../../eval/files.js";
import type { TaskResult } from "../../eval/harness.js";
import { countRows } from "../../eval/data.js";
import { createProgress } from "../../util/progress.js";
import { detailTable, resultsTable, type ModelResults } from "../../eval/report.js";
import { findTask, TASKS, type McTask } from "../../eval/tasks/index.js";
import { loadTokenizer } from "../../load.js";
import { checkModelFolder, loadModel } from "../../load.js";
import { numberFlag, UsageError, type Command } from "../command.js";
import { LOAD_OPTIONS, loadFlags, resolveModelArg } from "../model-arg.js";

/** The data file of `task`: FILE itself, or DIR/<task>.jsonl or DIR/<task>.parquet. */
function dataFile(data: string, task: McTask, single: boolean): string {
  if (!existsSync(data)) throw new Error(`${data}: not found; pass --data with a folder of <task>.jsonl files or one task's file`);
  if (!statSync(data).isDirectory()) {
    if (!single) throw new UsageError("--data FILE works with a single --task; give a folder holding <task>.jsonl files for several tasks");
    return data;
  }
  for (const ext of [".jsonl", ".parquet"]) {
    const file = join(data, task.name + ext);
    if (existsSync(file)) return file;
  }
  throw new Error(`${data}: no ${task.name}.jsonl or ${task.name}.parquet (${task.dataset}, ${task.split} split; fields: ${task.fields})`);
}

export const evalCommand: Command = {
  name: "eval",
  summary: "Zero-shot commonsense reasoning (BoolQ, PIQA, SIQA, HellaSwag, WinoGrande, ARC, OBQA)",
  usage: "[--model DIR ...] --task NAME[,NAME...]|all --data DIR|FILE [--limit N] [--metric acc|acc_norm] [--dtype TYPE] [--json]",
  options: {
    model: {
      type: "string",
      short: "m",
      value: "DIR",
      description: "checkpoint folder (repeat for one table row per model)",
      multiple: true,
    },
    task: {
      type: "string",
      value: "NAME",
      description: `task(s), comma-separated, or all: ${TASKS.map((t) => t.name).join(", ")}`,
      default: "all",
    },
    data: { type: "string", value: "DIR|FILE", description: "folder of <task>.jsonl / <task>.parquet files, or one task's file" },
    tokenizer: { type: "string", value: "PATH", description: "tokenizer folder or tokenizer.model (default: the model folder)" },
    limit: { type: "string", value: "N", description: "evaluate only the first N items of each task" },
    metric: { type: "string", value: "NAME", description: "metric in the summary table: acc or acc_norm", default: "acc" },
    "no-bos": {
      type: "boolean",
      description:
        "do not prepend BOS to contexts (older lm-evaluation-harness releases; current ones add it, as MobileLLM's tokenizer does)",
    },
    resume: { type: "string", value: "FILE", description: "append each finished item here; rerun to continue" },
    ...LOAD_OPTIONS,
    quiet: { type: "boolean", short: "q", description: "no progress on stderr (by default a bar on a terminal, else a line every 10 s)" },
    json: { type: "boolean", description: "print one JSON object (per-task metrics; no per-item records)" },
  },
  details: [
    "Data layout (the Hugging Face datasets' own fields, one JSON object per line):",
    ...TASKS.map((t) => `  ${t.name.padEnd(14)} ${t.dataset} [${t.split}]: ${t.fields}`),
    "",
    "Prompts and choices follow lm-evaluation-harness; each choice is scored by the summed",
    "log-probability of its tokens; acc_norm divides by the choice's length in characters.",
    "The table's columns follow the paper's order (see README, Evaluation).",
    "",
    "Examples (tasks/ holding piqa.jsonl, arc_easy.jsonl, ... in the datasets' own fields):",
    "  mobilellm eval --task piqa,arc_easy --data tasks --limit 20",
    "  mobilellm eval --task all --data tasks --resume eval-resume.jsonl --json",
  ].join("\n"),
  async run(values, _positionals, { stdout, stderr, signal }) {
    if (values.data === undefined) throw new UsageError("give the data with --data DIR (holding <task>.jsonl files) or --data FILE");
    const names = (values.task as string) === "all" ? TASKS.map((t) => t.name) : (values.task as string).split(",").map((s) => s.trim());
    const tasks = names.map(
      (n) =>
        findTask(n) ??
        (() => {
          throw new UsageError(`unknown task ${JSON.stringify(n)}; choose from ${TASKS.map((t) => t.name).join(", ")} or all`);
        })(),
    );
    const limit = numberFlag(values, "limit", { integer: true, min: 1 });
    const metric = values.metric as string;
    if (metric !== "acc" && metric !== "acc_norm") throw new UsageError(`--metric must be acc or acc_norm, got ${JSON.stringify(metric)}`);
    const load = loadFlags(values);
    const files = tasks.map((t) => dataFile(values.data as string, t, tasks.length === 1));
    const modelArgs = (values.model as string[] | undefined) ?? [undefined];
    if (modelArgs.length > 1 && values.resume !== undefined) throw new UsageError("--resume works with a single --model");

    const rows: ModelResults[] = [];
    for (const modelArg of modelArgs) {
      const modelDir = await resolveModelArg(modelArg, { signal, quiet: values.quiet === true });
      await checkModelFolder(modelDir);
      const tokenizer = await loadTokenizer((values.tokenizer as string | undefined) ?? modelDir);
      await using model = await loadModel(modelDir, { ...load, log: (m) => stderr.write(m + "\n") });
      const results: TaskResult[] = [];
      for (let i = 0; i < tasks.length; i++) {
        const task = tasks[i]!,
          rows = await countRows(files[i]!);
        const progress = createProgress({
          label: task.name,
          total: limit !== undefined ? Math.min(limit, rows) : rows,
          unit: "items",
          stream: stderr,
          quiet: values.quiet === true,
        });
        let correct = 0,
          done = 0;
        let result: TaskResult;
        try {
          result = await evaluateTask(model, tokenizer, task, files[i]!, {
            addBos: !values["no-bos"],
            signal,
            ...(limit !== undefined ? { limit } : {}),
            ...(values.resume !== undefined ? { resumeFile: values.resume as string } : {}),
            onItem: (n, item) => {
              done = n;
              if (item.pred === item.gold) correct++;
              progress.update(n, `acc ${((100 * correct) / n).toFixed(1)}`);
            },
          });
        } catch (e) {
          progress.done();
          if (signal.aborted) {
            const resume = values.resume as string | undefined;
            stderr.write(
              resume !== undefined
                ? `interrupted in ${task.name} after ${done} items; every finished item is saved in ${resume}; run the same command again to continue from there\n`
                : `interrupted in ${task.name} after ${done} items; nothing was saved. Add --resume FILE to keep finished items across runs\n`,
            );
          }
          throw e;
        }
        progress.done();
        results.push(result);
      }
      rows.push({ model: basename(resolve(modelDir)), results });
    }

    if (values.json) {
      const models = rows.map((m) => ({ model: m.model, results: m.results.map(({ items: _items, ...r }) => r) }));
      stdout.write(JSON.stringify({ addBos: !values["no-bos"], models }) + "\n");
      return;
    }
    stdout.write(
      resultsTable(rows, metric) + "\n" + rows.map((m) => (rows.length > 1 ? `${m.model}\n` : "") + detailTable(m.results)).join("\n"),
    );
  },
};
