// `omni-dpo train`: preference training from a reference-style YAML, with Ctrl-C checkpointing.
import { parseArgs } from "node:util";
import { UsageError, formatRow, type Command } from "../args.js";

export const trainCommand: Command = {
  help: `Usage: omni-dpo train CONFIG.yaml [--set key=value ...] [--json]

Trains a causal LM on preference pairs with Omni-DPO or a baseline. CONFIG.yaml takes the
reference implementation's keys as they are (model_name_or_path, dataset_mixer, beta,
uni_dpo_*, pref_loss / loss_type, learning_rate, lr_scheduler_type, warmup_ratio,
num_train_epochs, per_device_train_batch_size, gradient_accumulation_steps, max_length,
max_prompt_length, logging_steps, eval_steps, save_steps, output_dir, ref_model, ...).

Writes output_dir/metrics.jsonl as it goes, checkpoints every save_steps, and the trained
model with its tokenizer to output_dir. Ctrl-C (or SIGTERM) saves a checkpoint and stops;
resume with --set resume_from_checkpoint=true.

  --set key=value   override a config key (repeatable; the value is read as YAML)
  --json            print the final result as JSON
`,
  async run(argv) {
    const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { set: { type: "string", multiple: true }, json: { type: "boolean" } } });
    if (positionals.length !== 1) throw new UsageError("train: expected one CONFIG.yaml");
    const { loadTrainConfig, parseOverride } = await import("../../train/config.js");
    const { train } = await import("../../train/trainer.js");
    const { Progress } = await import("../progress.js");
    const { config, warnings } = loadTrainConfig(positionals[0], (values.set ?? []).map(parseOverride));
    for (const w of warnings) console.error(`warning: ${w}`);
    let stopRequested = false;
    const onSignal = (signal: string) => {
      if (stopRequested) { console.error(`\n${signal} again: exiting without a checkpoint`); process.exit(130); }
      stopRequested = true;
      console.error(`\n${signal}: saving a checkpoint after this step, then stopping (again to exit now)`);
    };
    const sigint = () => onSignal("SIGINT");
    const sigterm = () => onSignal("SIGTERM");
    process.on("SIGINT", sigint);
    process.on("SIGTERM", sigterm);
    let bar: InstanceType<typeof Progress> | null = null;
    try {
      const result = await train(config, {
        onStatus: (m) => console.error(m),
        onProgress: (step, total, info) => { (bar ??= new Progress("training", total, true)).update(step, info); },
        onLog: (row) => { if (!values.json && String(Object.keys(row).find((k) => k.startsWith("eval_")) ?? "")) console.error(formatRow(row)); },
        shouldStop: () => stopRequested,
      });
      if (values.json) console.log(JSON.stringify(result));
      else if (result.interrupted) console.log(`stopped at step ${result.globalStep}/${result.totalSteps}; checkpoint ${result.checkpoint}`);
      else console.log(`trained ${result.globalStep} steps; model saved to ${result.outputDir}`);
      return result.interrupted ? 130 : 0;
    } finally {
      process.off("SIGINT", sigint);
      process.off("SIGTERM", sigterm);
    }
  },
};
