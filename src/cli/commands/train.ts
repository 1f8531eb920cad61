// `omni-dpo train`: preference training from a reference-style YAML, with checkpointing on
// Ctrl-C, SIGTERM and SIGHUP (a closed terminal).
import { parseArgs } from "node:util";
import { UsageError, formatRow, type Command } from "../args.js";
import { recipeKeysHelp } from "../../train/recipe-help.js";

export const trainCommand: Command = {
  help: `Usage: omni-dpo train CONFIG.yaml [--set key=value ...] [--json]

Trains a causal LM on preference pairs with Omni-DPO or a baseline. CONFIG.yaml takes the
reference implementation's keys as they are (listed below).

Writes output_dir/metrics.jsonl as it goes, checkpoints every save_steps (or epoch) and at
the end, and the trained model with its tokenizer, trainer_state.json, train_results.json,
all_results.json and a model card README.md to output_dir, as the HF Trainer does. Ctrl-C,
SIGTERM or SIGHUP saves a checkpoint and stops, exiting 130, 143 or 129 (128 + the signal);
the next run on that output_dir resumes from it. One run at a time holds an output_dir
(output_dir/train.lock). An unknown (misspelt) key is an error.

  --set key=value        override a config key (repeatable; the value is read as YAML)
  --allow-unknown-keys   ignore unknown keys with a warning instead of an error
  --json                 print the final result as JSON

Recipe keys, by group (type, default; where the default comes from):

${recipeKeysHelp()}`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { set: { type: "string", multiple: true }, json: { type: "boolean" }, "allow-unknown-keys": { type: "boolean" } } });
    if (positionals.length !== 1) throw new UsageError("train: expected one CONFIG.yaml");
    const { loadTrainConfig, parseOverride } = await import("../../train/config.js");
    const { train } = await import("../../train/trainer.js");
    const { Progress } = await import("../progress.js");
    const { config, warnings } = loadTrainConfig(positionals[0], (values.set ?? []).map(parseOverride), { allowUnknownKeys: values["allow-unknown-keys"] ?? false });
    for (const w of warnings) console.error(`warning: ${w}`);
    // Unix's convention for a process ended by a signal: 128 + its number.
    const exitCodes: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };
    let stopRequested: NodeJS.Signals | null = null;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signal === "SIGHUP") {
        // The terminal is gone: writing to it fails, and the failure must not end the run before its checkpoint.
        for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});
      }
      if (stopRequested) { console.error(`\n${signal} again: exiting without a checkpoint`); process.exit(exitCodes[signal]); }
      stopRequested = signal;
      console.error(`\n${signal}: saving a checkpoint after this step, then stopping (again to exit now)`);
    };
    const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
    for (const s of signals) process.on(s, onSignal);
    let bar: InstanceType<typeof Progress> | null = null;
    try {
      const result = await train(config, {
        onStatus: (m) => console.error(m),
        onWarning: (m) => console.error(`warning: ${m}`),
        onProgress: (step, total, info) => { (bar ??= new Progress("training", total, true)).update(step, info); },
        onLog: (row) => { if (!values.json && String(Object.keys(row).find((k) => k.startsWith("eval_")) ?? "")) console.error(formatRow(row)); },
        shouldStop: () => stopRequested !== null,
      });
      if (values.json) console.log(JSON.stringify(result));
      else if (result.alreadyFinished) console.log(`${result.outputDir} already holds the finished run (step ${result.globalStep}/${result.totalSteps}); nothing to train`);
      else if (result.interrupted) console.log(`stopped at step ${result.globalStep}/${result.totalSteps}; checkpoint ${result.checkpoint}`);
      else console.log(`trained ${result.globalStep} steps; model saved to ${result.outputDir}`);
      // Stopped by a signal, after its checkpoint: the signal's code (a run that finished anyway exits 0).
      return result.interrupted && stopRequested ? exitCodes[stopRequested]! : 0;
    } finally {
      for (const s of signals) process.off(s, onSignal);
    }
  },
};
