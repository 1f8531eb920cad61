// Where a run starts: afresh, or from a checkpoint (the latest in output_dir automatically, as
// alignment-handbook's scripts do, or one named by resume_from_checkpoint), and whether that
// checkpoint's run may continue under this config. Each checkpoint stores the resolved config
// it was made with; a key changed since is, by the table's `resume` column (keys.ts):
// - "hard" (data, batching, lengths): always refused, since the saved data position would
//   point at other examples;
// - "soft" (optimisation, schedule, objective): refused on an automatic resume, since it
//   would silently continue the old run under new settings, and accepted with a warning when
//   resume_from_checkpoint names the checkpoint.
// A checkpoint at the run's last step is a finished run: nothing to train.
import { existsSync } from "node:fs";
import { ConfigError, type TrainConfig } from "./config.js";
import { fieldOf, specOf, SUPPORTED_KEYS } from "./keys.js";
import { checkpointDirs, checkResumable, latestCheckpoint, removeCheckpoint, type TrainerState } from "./checkpoint.js";

/** The run's resolved config by recipe key, plus the objective (resolved, and its keys as given). */
export function configRecord(config: TrainConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of SUPPORTED_KEYS) out[key] = (config as unknown as Record<string, unknown>)[fieldOf(key)];
  out.objective = config.objective;
  out.objective_keys = config.objectiveKeys;
  return out;
}

/** JSON with object keys sorted, so equal values compare equal whatever order a YAML wrote them in. */
function canonical(v: unknown): string {
  return (
    JSON.stringify(v, (_k, x: unknown) =>
      x && typeof x === "object" && !Array.isArray(x)
        ? Object.fromEntries(
            Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
          )
        : x,
    ) ?? "undefined"
  );
}

export interface ConfigChange {
  key: string;
  saved: unknown;
  current: unknown;
}

function show(v: unknown): string {
  return v === undefined ? "(unset)" : v === null ? "None" : typeof v === "string" ? v : canonical(v);
}

export function formatChanges(changes: ConfigChange[]): string {
  return changes.map((c) => `${c.key}: ${show(c.saved)} -> ${show(c.current)}`).join(", ");
}

/** What differs between a checkpoint's record and this run's, split by how a resume treats it. */
export function configChanges(
  saved: Record<string, unknown>,
  current: Record<string, unknown>,
): { hard: ConfigChange[]; soft: ConfigChange[] } {
  const hard: ConfigChange[] = [];
  const soft: ConfigChange[] = [];
  // A key newer than the checkpoint is absent from its record: unchanged if this run leaves it at its default.
  const newAtDefault = (key: string) =>
    !(key in saved) && canonical(current[key]) === canonical(specOf(key)?.default ?? null);
  const differs = (key: string) => canonical(saved[key]) !== canonical(current[key]) && !newAtDefault(key);
  for (const key of [...SUPPORTED_KEYS, "train_pairs"]) {
    const check = key === "train_pairs" ? "hard" : specOf(key)!.resume;
    if (check && differs(key)) (check === "hard" ? hard : soft).push({ key, saved: saved[key], current: current[key] });
  }
  if (differs("objective")) {
    // Named by the recipe's own keys where they differ; by the resolved options when only a default moved.
    const [a, b] = [saved.objective_keys, current.objective_keys] as Record<string, unknown>[];
    const keys = [...new Set([...Object.keys(a ?? {}), ...Object.keys(b ?? {})])].sort();
    const byKey = keys
      .filter((k) => canonical(a?.[k]) !== canonical(b?.[k]))
      .map((k) => ({ key: k, saved: a?.[k], current: b?.[k] }));
    const [x, y] = [saved.objective, current.objective] as Record<string, unknown>[];
    const fields = [...new Set([...Object.keys(x ?? {}), ...Object.keys(y ?? {})])].sort();
    const byField = fields
      .filter((k) => canonical(x?.[k]) !== canonical(y?.[k]))
      .map((k) => ({ key: `objective ${k}`, saved: x?.[k], current: y?.[k] }));
    soft.push(...(byKey.length ? byKey : byField));
  }
  return { hard, soft };
}

export interface ResumePlan {
  /** The checkpoint to continue from; null: start afresh. */
  dir: string | null;
  state: TrainerState | null;
  /** The checkpoint is at (or past) the run's last step: nothing is left to train. */
  finished: boolean;
}

export interface ResumeNotices {
  onStatus?: (message: string) => void;
  onWarning?: (message: string) => void;
}

/** Decides where the run starts; call it holding the run lock (it may delete checkpoints for overwrite_output_dir). */
export function planResume(
  config: TrainConfig,
  run: { trainPairs: number; totalSteps: number },
  notices: ResumeNotices = {},
): ResumePlan {
  const latest = latestCheckpoint(config.outputDir);
  let dir: string | null = null;
  const named = typeof config.resumeFromCheckpoint === "string";
  if (typeof config.resumeFromCheckpoint === "string") {
    if (!existsSync(config.resumeFromCheckpoint))
      throw new Error(`resume_from_checkpoint: ${config.resumeFromCheckpoint} does not exist`);
    dir = config.resumeFromCheckpoint;
  } else if (config.resumeFromCheckpoint === true) {
    if (!latest) throw new Error(`resume_from_checkpoint: no checkpoint found in ${config.outputDir}`);
    dir = latest;
  } else if (latest && config.resumeFromCheckpoint === null) {
    if (config.overwriteOutputDir) {
      for (const c of checkpointDirs(config.outputDir)) removeCheckpoint(c.dir);
    } else {
      dir = latest;
      notices.onStatus?.(
        `${config.outputDir} holds ${latest}; resuming from it (set overwrite_output_dir: true to start afresh)`,
      );
    }
  }
  if (!dir) return { dir: null, state: null, finished: false };

  const state = checkResumable(dir);
  if (!state.config) {
    throw new ConfigError(
      `resume_from_checkpoint: ${dir} holds no record of its config (an older omni-dpo wrote it), so a resume cannot be checked; ` +
        "set overwrite_output_dir: true (or a new output_dir) to start afresh",
    );
  }
  const { hard, soft } = configChanges(
    { ...state.config, train_pairs: state.trainPairs },
    { ...configRecord(config), train_pairs: run.trainPairs },
  );
  if (hard.length) {
    throw new ConfigError(
      `resume_from_checkpoint: ${dir} was made with different data, batch or length settings (${formatChanges(hard)}); ` +
        "restore them, or set overwrite_output_dir: true (or a new output_dir) to start afresh",
    );
  }
  if (soft.length && !named) {
    throw new ConfigError(
      `${dir} was made with other settings (${formatChanges(soft)}), and resuming would continue the old run under them silently. ` +
        `To start afresh, set overwrite_output_dir: true (or a new output_dir); to continue that run with the new settings, set resume_from_checkpoint: ${dir}`,
    );
  }
  if (soft.length) {
    (notices.onWarning ?? notices.onStatus)?.(
      `resuming from ${dir} with changed settings (${formatChanges(soft)}): the new values apply from step ${state.globalStep + 1}; ` +
        "the optimizer's moments, the schedule's position and the data position carry over",
    );
  }
  return { dir, state, finished: state.globalStep >= run.totalSteps };
}
