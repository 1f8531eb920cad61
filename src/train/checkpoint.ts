// Checkpoints: everything a run needs to continue exactly where it stopped. A checkpoint
// directory (output_dir/checkpoint-<step>) holds the model in Hugging Face layout, the
// optimizer's state tensors, transformers' trainer_state.json (for tools that read HF runs),
// and omni_dpo_state.json, this project's resume state (step, data position, scheduler, RNG,
// and the run's resolved config). It is written under a temporary name, every file and the
// directory fsynced, then renamed into place and output_dir fsynced, so a crash never leaves
// half of one under the final name. Deleting one (rotation, overwrite_output_dir) renames it to
// `*.deleting` first, so a deletion cut short is recognisable and finished at the next start.
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, mkdirSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import * as torch from "../torch/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import { savePretrained } from "../models/auto.js";
import { loadSafetensors, saveSafetensors } from "../models/safetensors.js";
import { fsyncPath, fsyncTree, isTempName, tempPath, writeJsonAtomic, writingTo } from "../util/files.js";
import type { Tokenizer } from "../text/index.js";
import { TRAINER_STATE, type HfTrainerState } from "./hf-outputs.js";

/** The optimizers a run can use (optim). */
export type TrainOptimizer = torch.Optimizer<torch.AdamWOptions> | torch.Optimizer<torch.SGDOptions>;

/** This project's resume state in a checkpoint (trainer_state.json is transformers' format). */
export const RESUME_STATE = "omni_dpo_state.json";

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
  /** Training pairs of the run (the data position counts in them). */
  trainPairs: number;
  /** The run's resolved config by recipe key, with `objective` and `objective_keys` (see resume.ts). */
  config: Record<string, unknown>;
  /** Processes that trained it (data parallelism); absent in older checkpoints: 1. */
  worldSize?: number;
  /** With several processes: each rank's generator state, rank r's at index r (rngState is rank 0's). */
  rngStates?: string[];
  /** The best checkpoint so far by metric_for_best_model (load_best_model_at_end), when tracked. */
  best?: BestCheckpoint | null;
}

/** transformers' best_model_checkpoint, best_metric and best_global_step. */
export interface BestCheckpoint {
  checkpoint: string;
  metric: number;
  step: number;
}

const PREFIX = "checkpoint-";
const DELETING = ".deleting";

export function checkpointDirs(outputDir: string): { step: number; dir: string }[] {
  if (!existsSync(outputDir)) return [];
  return (
    readdirSync(outputDir)
      // Every checkpoint-N, also one without its resume state: skipping it would silently restart the
      // run, and a later save of that step would replace it (checkResumable refuses it instead).
      .filter((n) => n.startsWith(PREFIX) && /^\d+$/.test(n.slice(PREFIX.length)))
      .filter((n) => statSync(join(outputDir, n)).isDirectory())
      .map((n) => ({ step: Number(n.slice(PREFIX.length)), dir: join(outputDir, n) }))
      .sort((a, b) => a.step - b.step)
  );
}

export function latestCheckpoint(outputDir: string): string | null {
  const all = checkpointDirs(outputDir);
  return all.length ? all[all.length - 1].dir : null;
}

export interface CheckpointParts {
  model: CausalLM;
  optimizer: TrainOptimizer;
  tokenizer?: Pick<Tokenizer, "save">;
  state: TrainerState;
  /** transformers' TrainerState for this checkpoint. */
  hfState: HfTrainerState;
  /** For a model with LoRA adapters (saved as a PEFT adapter): the base it names. */
  baseModelNameOrPath?: string;
  /** Writes the model to a directory in place of savePretrained (a reward model's classifier format). */
  saveModel?: (dir: string) => void;
  /** TR-DPO (sync_ref_model): the reference, which changes as the run trains, saved in ref_model/. */
  syncedReference?: CausalLM;
}

/** Where a checkpoint keeps TR-DPO's synced reference. */
export function syncedReferenceDir(checkpoint: string): string {
  const dir = join(checkpoint, "ref_model");
  if (!existsSync(join(dir, "config.json"))) {
    throw new Error(
      `${checkpoint}: no ref_model/ (the synced reference sync_ref_model trains with); it was written without ` +
        "sync_ref_model: resume it without, or set overwrite_output_dir: true to start afresh",
    );
  }
  return dir;
}

/** Deletes a checkpoint (or any directory) by renaming it to `<dir>.deleting` first, so a cut-short deletion is finished by cleanOutputDir. */
export function removeCheckpoint(dir: string): void {
  const doomed = dir + DELETING;
  rmSync(doomed, { recursive: true, force: true });
  renameSync(dir, doomed);
  fsyncPath(dirname(dir));
  rmSync(doomed, { recursive: true, force: true });
}

export async function saveTrainingCheckpoint(
  outputDir: string,
  parts: CheckpointParts,
  saveTotalLimit: number | null,
  keep: string | null = null,
): Promise<string> {
  const final = join(outputDir, `${PREFIX}${parts.state.globalStep}`);
  const tmp = tempPath(final);
  rmSync(tmp, { recursive: true, force: true });
  try {
    writingTo(tmp, () => mkdirSync(tmp, { recursive: true }));
    // The adapter alone for a LoRA model (its optimizer state is the adapter's too), else the whole model.
    const save =
      parts.saveModel ??
      ((dir: string) => savePretrained(parts.model, dir, { baseModelNameOrPath: parts.baseModelNameOrPath }));
    writingTo(tmp, () => save(tmp));
    if (parts.tokenizer) await parts.tokenizer.save(tmp);
    if (parts.syncedReference) {
      const ref = join(tmp, "ref_model");
      writingTo(ref, () => savePretrained(parts.syncedReference!, ref));
    }
    const dict = parts.optimizer.stateDict();
    const tensors: [string, torch.Tensor][] = [];
    const scalars: Record<string, Record<string, number>> = {};
    for (const [index, entry] of Object.entries(dict.state)) {
      for (const [name, v] of Object.entries(entry)) {
        if (v instanceof torch.Tensor) tensors.push([`${index}.${name}`, v]);
        else (scalars[index] ??= {})[name] = v;
      }
    }
    const optimizerFile = join(tmp, "optimizer.safetensors");
    writingTo(optimizerFile, () => saveSafetensors(optimizerFile, tensors));
    writeJsonAtomic(join(tmp, "optimizer.json"), { scalars, paramGroups: dict.paramGroups });
    writeJsonAtomic(join(tmp, RESUME_STATE), parts.state);
    writeJsonAtomic(join(tmp, TRAINER_STATE), parts.hfState);
    // Durable before it is visible: every file, then the directory, then the rename, then its parent.
    fsyncTree(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  if (existsSync(final)) removeCheckpoint(final); // a step saved again (a run resumed from an earlier checkpoint)
  writingTo(final, () => renameSync(tmp, final));
  fsyncPath(outputDir);
  if (saveTotalLimit !== null && saveTotalLimit > 0) {
    for (const old of rotatedOut(
      checkpointDirs(outputDir).map((c) => c.dir),
      saveTotalLimit,
      keep,
    ))
      removeCheckpoint(old);
  }
  return final;
}

/**
 * The checkpoints (oldest first) save_total_limit deletes, as transformers' rotation: the best
 * one (`keep`) is never deleted: it is ranked just before the latest, and a limit of 1 keeps 2
 * while the best is not the latest.
 */
export function rotatedOut(dirs: string[], limit: number, keep: string | null): string[] {
  const last = dirs.at(-1);
  const kept = keep !== null && dirs.includes(keep) && keep !== last;
  const order = kept ? [...dirs.filter((d) => d !== keep && d !== last), keep, last!] : dirs;
  const effective = kept && limit === 1 ? 2 : limit;
  return order.slice(0, Math.max(0, order.length - effective));
}

/**
 * Finishes what a killed run left in output_dir (and its reference cache): deletions cut short
 * (`*.deleting`) are completed, and temporary files and checkpoint directories (`*.tmp-<pid>`)
 * removed. Only call it while holding the run lock. Returns the names removed.
 */
export function cleanOutputDir(outputDir: string): string[] {
  const removed: string[] = [];
  for (const dir of [outputDir, join(outputDir, "ref_logps_cache")]) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      if (!name.endsWith(DELETING) && !isTempName(name)) continue;
      rmSync(join(dir, name), { recursive: true, force: true });
      removed.push(dir === outputDir ? name : join(basename(dir), name));
    }
  }
  if (removed.length) fsyncPath(outputDir);
  return removed;
}

export function readTrainerState(dir: string): TrainerState {
  const file = join(dir, RESUME_STATE);
  if (!existsSync(file)) {
    const hfOnly = existsSync(join(dir, TRAINER_STATE))
      ? ` (its ${TRAINER_STATE} is transformers' record, without the data position and RNG an exact resume needs)`
      : "";
    throw new Error(
      `${dir}: not an omni-dpo checkpoint: ${file} is missing${hfOnly}; ` +
        "the run cannot continue from it. " +
        "Set overwrite_output_dir: true (deleting its checkpoints) or choose a new output_dir to start afresh",
    );
  }
  const state = readJsonFile(file) as Partial<TrainerState>;
  const integers = ["globalStep", "epochIndex", "nextBatch", "schedulerStep", "totalSteps", "trainPairs"] as const;
  for (const field of integers) {
    if (!Number.isInteger(state[field]) || (state[field] as number) < 0) {
      throw new Error(`${file}: field '${field}' must be a non-negative integer, got ${JSON.stringify(state[field])}`);
    }
  }
  if (typeof state.epoch !== "number" || !Number.isFinite(state.epoch)) {
    throw new Error(`${file}: field 'epoch' must be a number, got ${JSON.stringify(state.epoch)}`);
  }
  if (typeof state.rngState !== "string") {
    throw new Error(`${file}: field 'rngState' must be a string, got ${JSON.stringify(state.rngState)}`);
  }
  return state as TrainerState;
}

/** A JSON file of a checkpoint, read whole; a bad one is an error naming it. */
function readJsonFile(file: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message}); the checkpoint is damaged`, { cause: e });
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`${file}: expected a JSON object; the checkpoint is damaged`);
  }
  return value as Record<string, unknown>;
}

interface OptimizerMeta {
  scalars: Record<string, Record<string, number>>;
  paramGroups: Record<string, unknown>[];
}

/** optimizer.json: the optimizer's scalar state by parameter index, and its parameter groups. */
function readOptimizerMeta(dir: string): OptimizerMeta {
  const file = join(dir, "optimizer.json");
  if (!existsSync(file)) throw new Error(`${dir}: ${file} is missing; the checkpoint cannot be resumed`);
  const meta = readJsonFile(file);
  const scalars = meta.scalars;
  if (typeof scalars !== "object" || scalars === null || Array.isArray(scalars)) {
    throw new Error(`${file}: field 'scalars' must be an object`);
  }
  for (const [index, values] of Object.entries(scalars as Record<string, unknown>)) {
    const bad =
      typeof values !== "object" || values === null
        ? [index, values]
        : Object.entries(values).find(([, v]) => typeof v !== "number" || !Number.isFinite(v));
    if (bad) {
      throw new Error(`${file}: field 'scalars.${index}' must hold finite numbers, got ${JSON.stringify(values)}`);
    }
  }
  const isObject = (g: unknown) => typeof g === "object" && g !== null && !Array.isArray(g);
  if (!Array.isArray(meta.paramGroups) || !meta.paramGroups.every(isObject)) {
    throw new Error(`${file}: field 'paramGroups' must be a list of objects`);
  }
  return meta as unknown as OptimizerMeta;
}

/**
 * Checks that `dir` holds everything a resume reads, before anything is trained or deleted: the
 * resume state, the optimizer's state (both files), the model's config and weights. Each
 * missing or damaged file is an error naming it. Returns the resume state.
 */
export function checkResumable(dir: string): TrainerState {
  const state = readTrainerState(dir);
  readOptimizerMeta(dir);
  const need = (names: string[], what: string) => {
    if (!names.some((n) => existsSync(join(dir, n)))) {
      throw new Error(`${dir}: ${what} is missing (${names.join(" or ")}); the checkpoint cannot be resumed`);
    }
  };
  need(["optimizer.safetensors"], "the optimizer's state");
  need(["config.json", "adapter_config.json"], "the model's config");
  need(["model.safetensors", "model.safetensors.index.json", "adapter_model.safetensors"], "the model's weights");
  return state;
}

/** Restores the optimizer's state saved by saveTrainingCheckpoint. */
export function loadOptimizerState(dir: string, optimizer: TrainOptimizer): void {
  const meta = readOptimizerMeta(dir);
  const tensors = loadSafetensors(join(dir, "optimizer.safetensors"));
  const state: torch.OptimizerStateDict["state"] = {};
  for (const [key, t] of tensors) {
    const dot = key.indexOf(".");
    (state[Number(key.slice(0, dot))] ??= {})[key.slice(dot + 1)] = t;
  }
  for (const [index, values] of Object.entries(meta.scalars)) Object.assign((state[Number(index)] ??= {}), values);
  try {
    optimizer.loadStateDict({ state, paramGroups: meta.paramGroups });
  } catch (e) {
    const files = `${join(dir, "optimizer.json")} and optimizer.safetensors`;
    throw new Error(`${files} do not fit this run's optimizer: ${(e as Error).message}`, { cause: e });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

export function rngStateToBase64(): string {
  const t = torch.getRngState();
  try {
    return Buffer.from(t.data() as Uint8Array).toString("base64");
  } finally {
    t.dispose();
  }
}

export function restoreRngState(base64: string): void {
  const bytes = Buffer.from(base64, "base64");
  const t = torch.tensor(new Uint8Array(bytes));
  try {
    torch.setRngState(t);
  } finally {
    t.dispose();
  }
}
