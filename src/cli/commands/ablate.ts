// mobilellm ablate: the paper's design study at micro scale (src/ablate/).

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runAblation, type AblateData } from "../../ablate/run.js";
import { BUDGETS, STUDY_NAMES, type Budget, type Study } from "../../ablate/studies.js";
import { createProgress, formatDuration, type Progress } from "../../util/progress.js";
import { numberFlag, UsageError, type Command } from "../command.js";
import { parseThreads, THREADS_OPTION } from "../kernel-args.js";

/** tiny Shakespeare beside a checkout of the project (../shared/data), when it is there. */
const DEFAULT_TEXT = fileURLToPath(new URL("../../../../shared/data/tinyshakespeare.txt", import.meta.url));

export const ablate: Command = {
  name: "ablate",
  summary: "Reproduce the paper's design study at micro scale: train compared configurations, report (§2.2-2.3)",
  usage: "[--study NAME|all] [--budget tiny|small|medium] [--data DIR] [--out DIR] [--threads N]",
  options: {
    study: { type: "string", value: "NAME", description: `${STUDY_NAMES.join(", ")} or all (default: all)` },
    budget: {
      type: "string",
      value: "NAME",
      description: "tiny (about 15 min on 2 cores), small (the published report), medium (default: tiny)",
    },
    data: {
      type: "string",
      value: "DIR",
      description:
        "a `mobilellm prepare` folder (its last 10% of lines held out), or a .txt file (default: tiny Shakespeare from ../shared/data)",
    },
    out: {
      type: "string",
      value: "DIR",
      description: "report folder: report.md, summary.json, one SVG per study, runs/ (default: ablate-<budget>)",
    },
    steps: { type: "string", value: "N", description: "optimizer steps per run instead of the budget's (scales the tokens)" },
    seeds: { type: "string", value: "N", description: "seeds per configuration instead of the budget's (seeds 0..N-1)" },
    backend: { type: "string", value: "NAME", description: "kernel backend: wasm or ts (default: wasm)" },
    threads: THREADS_OPTION,
    quiet: { type: "boolean", short: "q", description: "no progress on stderr" },
  },
  details: [
    "Studies (MobileLLM, ICML 2024): ffn = SwiGLU vs ReLU feed-forward (§2.2.1); depth = deep-and-thin vs",
    "wide-and-shallow (§2.2.2); embedding = shared embedding with the saved parameters spent on depth vs a",
    "separate output layer (§2.2.3); gqa = fewer KV heads with the savings spent on width vs multi-head attention",
    "(§2.2.4); layer-sharing = none vs immediate vs repeat_all vs reverse (§2.3). Every configuration of a study",
    "is within 2% of the same parameter count and is trained with the same data, tokens, schedule and seeds",
    "(the pretrain recipe); the report compares validation loss and bits per byte on held-out text.",
    "",
    "Rerun the same command to continue an interrupted study: finished runs are kept and the unfinished one",
    "resumes bit-exactly from its checkpoint. Ctrl-C checkpoints the current run and exits.",
    "",
    "Example (one study, a few steps, on your corpus.txt; leave out --data for tiny Shakespeare):",
    "  mobilellm ablate --study ffn --budget tiny --steps 20 --seeds 1 --data corpus.txt --out ablate-try",
    "",
    "The published report (docs/ablations/) is `--budget small --threads 1`: 24 runs, about 25 minutes of",
    "one core's time.",
  ].join("\n"),

  async run(values, _positionals, { stderr, signal }) {
    const budgetName = (values.budget as string | undefined) ?? "tiny";
    if (!Object.hasOwn(BUDGETS, budgetName)) {
      throw new UsageError(`--budget must be ${Object.keys(BUDGETS).join(", ")}, got ${JSON.stringify(budgetName)}`);
    }
    const budget: Budget = { ...BUDGETS[budgetName as Budget["name"]] };
    const steps = numberFlag(values, "steps", { integer: true, min: 1 });
    if (steps !== undefined) {
      // the schedule scales with the steps: warmup a tenth, validation points every third
      Object.assign(budget, {
        steps,
        warmup: Math.min(budget.warmup, Math.floor(steps / 10)),
        evalEvery: Math.max(1, Math.round(steps / 3)),
      });
    }
    const seeds = numberFlag(values, "seeds", { integer: true, min: 1, max: 100 });
    if (seeds !== undefined) budget.seeds = Array.from({ length: seeds }, (_, i) => i);

    const study = (values.study as string | undefined) ?? "all";
    if (study !== "all" && !STUDY_NAMES.includes(study as Study["name"])) {
      throw new UsageError(`--study must be ${STUDY_NAMES.join(", ")} or all, got ${JSON.stringify(study)}`);
    }
    const backend = (values.backend as string | undefined) ?? "wasm";
    if (backend !== "ts" && backend !== "wasm") throw new UsageError(`--backend must be ts or wasm, got ${JSON.stringify(backend)}`);
    const threads = parseThreads(values.threads, backend);

    let data: AblateData;
    const dataArg = values.data as string | undefined;
    if (dataArg !== undefined) {
      if (!existsSync(dataArg)) throw new UsageError(`--data ${dataArg}: no such file or folder`);
      data = dataArg.endsWith(".txt") ? { text: dataArg } : { prepared: dataArg };
    } else if (existsSync(DEFAULT_TEXT)) {
      data = { text: DEFAULT_TEXT };
    } else {
      throw new UsageError(
        `no --data given and the default text (tiny Shakespeare, ../shared/data/tinyshakespeare.txt beside the project) ` +
          `is not there: pass --data with a \`mobilellm prepare\` folder or a .txt file`,
      );
    }
    const out = (values.out as string | undefined) ?? `ablate-${budget.name}`;

    let progress: Progress | undefined;
    const log = (m: string) => (progress ? progress.log(m) : stderr.write(`${m}\n`));
    const res = await runAblation({
      budget,
      studies: study === "all" ? STUDY_NAMES : [study as Study["name"]],
      data,
      out,
      backend,
      ...(threads !== undefined ? { threads } : {}),
      signal,
      log,
      onProgress: (p) => {
        // counted in percent of the planned work (every run's steps × its multiply-adds per token)
        progress ??= createProgress({
          label: "ablate",
          total: 100,
          unit: "%",
          stream: stderr,
          quiet: values.quiet === true,
          alwaysFinalLine: true,
          timeLeft: false,
        });
        progress.update(
          Math.floor((100 * p.done) / p.total),
          `study ${p.study}  run ${p.run} (${p.runIndex}/${p.runs})  step ${p.step}/${p.steps}  loss ${p.loss.toFixed(4)}` +
            (p.etaSeconds !== undefined ? `  time left ${formatDuration(p.etaSeconds)}` : ""),
        );
      },
    });
    progress?.done();
    stderr.write(
      res.stopped === "finished"
        ? `${res.reportDir}/report.md: ${res.trained.length} runs trained, ${res.skipped.length} already finished\n`
        : `interrupted: rerun the same command to continue (${res.reportDir})\n`,
    );
  },
};
