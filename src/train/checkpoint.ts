// Checkpoints: everything a run needs to continue exactly where it stopped. A checkpoint
// directory (output_dir/checkpoint-<step>) holds the model in Hugging Face layout, the
// optimizer's state tensors, and trainer_state.json (step, data position, scheduler, RNG).
// It is written under a temporary name and renamed, so a crash never leaves half of one.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import { saveModel } from "../models/auto.js";
import { loadSafetensors, saveSafetensors } from "../models/safetensors.js";
import { writeJsonAtomic } from "../util/files.js";
import type { Tokenizer } from "../text/index.js";

export interface TrainerState {
  globalStep: number;
  /** Epochs done as a fraction, as the HF trainer logs it. */
  epoch: number;
  /** Where the data loader resumes: epoch index and the next micro-batch within it. */
  epochIndex: number;
  nextBatch: number;
  schedulerStep: number;
  /** Base64 of the CPU generator's state. */
  rngState: string;
  totalSteps: number;
  /** The config fingerprint a resumed run must match (batch size, data, seed...). */
  fingerprint: string;
}

const PREFIX = "checkpoint-";

export function checkpointDirs(outputDir: string): { step: number; dir: string }[] {
  if (!existsSync(outputDir)) return [];
  return readdirSync(outputDir)
    .filter((n) => n.startsWith(PREFIX) && /^\d+$/.test(n.slice(PREFIX.length)) && existsSync(join(outputDir, n, "trainer_state.json")))
    .map((n) => ({ step: Number(n.slice(PREFIX.length)), dir: join(outputDir, n) }))
    .sort((a, b) => a.step - b.step);
}

export function latestCheckpoint(outputDir: string): string | null {
  const all = checkpointDirs(outputDir);
  return all.length ? all[all.length - 1].dir : null;
}

export interface CheckpointParts {
  model: CausalLM;
  optimizer: torch.Optimizer<torch.AdamWOptions>;
  tokenizer?: Tokenizer;
  state: TrainerState;
}

export async function saveTrainingCheckpoint(outputDir: string, parts: CheckpointParts, saveTotalLimit: number | null): Promise<string> {
  const final = join(outputDir, `${PREFIX}${parts.state.globalStep}`);
  const tmp = `${final}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  saveModel(parts.model, tmp);
  if (parts.tokenizer) await parts.tokenizer.save(tmp);
  const dict = parts.optimizer.stateDict();
  const tensors: [string, torch.Tensor][] = [];
  const scalars: Record<string, Record<string, number>> = {};
  for (const [index, entry] of Object.entries(dict.state)) {
    for (const [name, v] of Object.entries(entry)) {
      if (v instanceof torch.Tensor) tensors.push([`${index}.${name}`, v]);
      else (scalars[index] ??= {})[name] = v;
    }
  }
  saveSafetensors(join(tmp, "optimizer.safetensors"), tensors);
  writeJsonAtomic(join(tmp, "optimizer.json"), { scalars, paramGroups: dict.paramGroups });
  writeJsonAtomic(join(tmp, "trainer_state.json"), parts.state);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  if (saveTotalLimit !== null && saveTotalLimit > 0) {
    const all = checkpointDirs(outputDir);
    for (const old of all.slice(0, Math.max(0, all.length - saveTotalLimit))) rmSync(old.dir, { recursive: true, force: true });
  }
  return final;
}

export function readTrainerState(dir: string): TrainerState {
  const file = join(dir, "trainer_state.json");
  if (!existsSync(file)) throw new Error(`${dir}: not a checkpoint (no trainer_state.json)`);
  return JSON.parse(readFileSync(file, "utf8")) as TrainerState;
}

/** Restores the optimizer's state saved by saveTrainingCheckpoint. */
export function loadOptimizerState(dir: string, optimizer: torch.Optimizer<torch.AdamWOptions>): void {
  const meta = JSON.parse(readFileSync(join(dir, "optimizer.json"), "utf8")) as {
    scalars: Record<string, Record<string, number>>; paramGroups: Record<string, unknown>[];
  };
  const tensors = loadSafetensors(join(dir, "optimizer.safetensors"));
  const state: torch.OptimizerStateDict["state"] = {};
  for (const [key, t] of tensors) {
    const dot = key.indexOf(".");
    (state[Number(key.slice(0, dot))] ??= {})[key.slice(dot + 1)] = t;
  }
  for (const [index, values] of Object.entries(meta.scalars)) Object.assign((state[Number(index)] ??= {}), values);
  try {
    optimizer.loadStateDict({ state, paramGroups: meta.paramGroups });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

export function rngStateToBase64(): string {
  const t = torch.getRngState();
  try { return Buffer.from((t.data() as Uint8Array)).toString("base64"); } finally { t.dispose(); }
}

export function restoreRngState(base64: string): void {
  const bytes = Buffer.from(base64, "base64");
  const t = torch.tensor(new Uint8Array(bytes));
  try { torch.setRngState(t); } finally { t.dispose(); }
}
