// What the Hugging Face Trainer leaves in output_dir, in its formats, so tools that read an HF
// run read this one: trainer_state.json (transformers' TrainerState, in output_dir and in each
// checkpoint), train_results.json / eval_results.json / all_results.json (Trainer.save_metrics
// with the alignment-handbook scripts' keys), and a model card README.md. The project's own
// resume state is elsewhere (checkpoint.ts).
import { existsSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../util/files.js";
import type { MetricRow } from "./metrics.js";

/** transformers' TrainerState, as save_to_json writes it. */
export interface HfTrainerState {
  best_global_step: number | null;
  best_metric: number | null;
  best_model_checkpoint: string | null;
  epoch: number;
  eval_steps: number;
  global_step: number;
  is_hyper_param_search: boolean;
  is_local_process_zero: boolean;
  is_world_process_zero: boolean;
  log_history: MetricRow[];
  logging_steps: number;
  max_steps: number;
  num_input_tokens_seen: number;
  num_train_epochs: number;
  save_steps: number;
  stateful_callbacks: Record<string, unknown>;
  total_flos: number;
  train_batch_size: number;
  trial_name: null;
  trial_params: null;
}

export interface HfStateInputs {
  globalStep: number;
  epoch: number;
  maxSteps: number;
  numTrainEpochs: number;
  /** The resolved step intervals (0 where the strategy is not "steps", as transformers leaves them). */
  loggingSteps: number;
  evalSteps: number;
  saveSteps: number;
  trainBatchSize: number;
  logHistory: MetricRow[];
  /** The run is over (its last step is done). */
  finished: boolean;
  /** The best checkpoint by metric_for_best_model, when tracked. */
  best?: { checkpoint: string; metric: number; step: number } | null;
}

export function hfTrainerState(s: HfStateInputs): HfTrainerState {
  return {
    // Without metric_for_best_model (or load_best_model_at_end) no best checkpoint is tracked: None, as transformers.
    best_global_step: s.best?.step ?? null,
    best_metric: s.best?.metric ?? null,
    best_model_checkpoint: s.best?.checkpoint ?? null,
    epoch: s.epoch,
    eval_steps: s.evalSteps,
    global_step: s.globalStep,
    is_hyper_param_search: false,
    is_local_process_zero: true,
    is_world_process_zero: true,
    log_history: s.logHistory,
    logging_steps: s.loggingSteps,
    max_steps: s.maxSteps,
    num_input_tokens_seen: 0, // include_num_input_tokens_seen is off, as transformers' default
    num_train_epochs: s.numTrainEpochs,
    save_steps: s.saveSteps,
    stateful_callbacks: {
      TrainerControl: {
        args: {
          should_epoch_stop: false,
          should_evaluate: false,
          should_log: false,
          should_save: s.finished,
          should_training_stop: s.finished,
        },
        attributes: {},
      },
    },
    // TRL's DPOTrainer reports 0: its batches have no input_ids, so transformers' floating_point_ops
    // estimate counts no tokens. Reported the same way rather than as a number of another kind.
    total_flos: 0,
    train_batch_size: s.trainBatchSize,
    trial_name: null,
    trial_params: null,
  };
}

export const TRAINER_STATE = "trainer_state.json";

/** Writes `<split>_results.json` and merges the metrics into all_results.json, as Trainer.save_metrics(combined=True). */
export function saveMetrics(outputDir: string, split: "train" | "eval", metrics: Record<string, number>): void {
  writeJsonAtomic(join(outputDir, `${split}_results.json`), metrics);
  const all = join(outputDir, "all_results.json");
  let merged: Record<string, number> = {};
  if (existsSync(all)) {
    try {
      merged = JSON.parse(readFileSync(all, "utf8")) as Record<string, number>;
    } catch {
      merged = {};
    }
  }
  writeJsonAtomic(all, { ...merged, ...metrics });
}

/** The train metrics transformers' speed_metrics and the handbook's run_dpo.py report. */
export function trainMetrics(m: {
  runtimeSeconds: number;
  samples: number;
  steps: number;
  trainLoss: number;
  epoch: number;
  trainSamples: number;
}): Record<string, number> {
  const runtime = Math.round(m.runtimeSeconds * 1e4) / 1e4;
  return {
    epoch: m.epoch,
    total_flos: 0,
    train_loss: m.trainLoss,
    train_runtime: runtime,
    train_samples: m.trainSamples,
    train_samples_per_second: Math.round((m.samples / m.runtimeSeconds) * 1e3) / 1e3,
    train_steps_per_second: Math.round((m.steps / m.runtimeSeconds) * 1e3) / 1e3,
  };
}

export interface ModelCard {
  runName: string | null;
  baseModel: string;
  outputDir: string;
  adapter: boolean;
  lossType: string;
  beta: number | undefined;
  /** How sequence log-probs were taken, and why (lengthNormText). */
  logProbs?: string;
  dataFiles: string[];
  /** The held-out evaluation file(s), when the run had one (eval_file / eval_data_path). */
  evalFiles?: string[];
  trainPairs: number;
  evalPairs: number;
  hyperparameters: Record<string, unknown>;
  trainMetrics: Record<string, number>;
  evalMetrics: Record<string, number> | null;
  version: string;
}

const cell = (v: unknown) =>
  typeof v === "number"
    ? String(Math.abs(v) > 0 && Math.abs(v) < 1e-3 ? v.toExponential(3) : Math.round(v * 1e6) / 1e6)
    : String(v);

/** The model card README.md: what was trained, how, on what data, and the final metrics, with the hub's YAML header. */
export function modelCardText(c: ModelCard): string {
  const title = c.runName ?? basename(c.outputDir);
  const table = (rows: [string, unknown][]) =>
    ["| | |", "| --- | --- |", ...rows.map(([k, v]) => `| ${k} | ${cell(v)} |`)].join("\n");
  const lines = [
    "---",
    `base_model: ${JSON.stringify(c.baseModel)}`,
    `library_name: ${c.adapter ? "peft" : "transformers"}`,
    "tags:",
    ...[...new Set(["omni-dpo", "dpo", c.lossType])].map((t) => `- ${t}`),
    "---",
    "",
    `# ${title}`,
    "",
    `This ${c.adapter ? "LoRA adapter" : "model"} is \`${c.baseModel}\` fine-tuned on preference pairs with the \`${c.lossType}\` objective` +
      `${c.beta === undefined ? "" : ` (beta ${c.beta})`} by omni-dpo ${c.version}.`,
    "",
    ...(c.logProbs ? [`The objective used ${c.logProbs}.`, ""] : []),
    "## Data",
    "",
    ...c.dataFiles.map((f) => `- \`${f}\``),
    "",
    `${c.trainPairs} training pairs${c.evalPairs ? `, ${c.evalPairs} evaluation pairs` : ""}.`,
    ...(c.evalFiles?.length ? ["", "Evaluated on:", "", ...c.evalFiles.map((f) => `- \`${f}\``)] : []),
    "",
    "## Training",
    "",
    table(Object.entries(c.hyperparameters)),
    "",
    "## Results",
    "",
    table(Object.entries(c.trainMetrics)),
    ...(c.evalMetrics ? ["", table(Object.entries(c.evalMetrics))] : []),
    "",
  ];
  return lines.join("\n");
}

export function writeModelCard(c: ModelCard): void {
  writeFileAtomic(join(c.outputDir, "README.md"), modelCardText(c));
}

/** The log_history of a checkpoint's trainer_state.json (the rows logged up to its step); [] without one. */
export function readLogHistory(checkpoint: string): MetricRow[] {
  const file = join(checkpoint, TRAINER_STATE);
  if (!existsSync(file)) return [];
  let state: Partial<HfTrainerState>;
  try {
    state = JSON.parse(readFileSync(file, "utf8")) as Partial<HfTrainerState>;
  } catch (e) {
    throw new Error(`${file}: not readable as JSON (${(e as Error).message}); this checkpoint is damaged`, {
      cause: e,
    });
  }
  if (!Array.isArray(state.log_history)) throw new Error(`${file}: field 'log_history': missing or not a list`);
  return state.log_history;
}
