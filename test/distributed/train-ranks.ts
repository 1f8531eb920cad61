// What the data-parallel trainer tests share: a tiny model and preference data on disk, a
// recipe written as YAML, the CLI run alone or through its launcher, and readers of what a
// run leaves in output_dir (weights, metrics).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { packageRoot } from "../../src/util/package-root.js";
import { loadSafetensors } from "../../src/models/safetensors.js";
import { MetricsSink, type MetricRow } from "../../src/train/metrics.js";
import { toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";
import type { RankRun } from "./ranks.js";

export const CLI = join(packageRoot(), "dist", "src", "cli", "main.js");

/** A toy model and `pairs` preference pairs under `root`. */
export function writeSetup(
  root: string,
  pairs: number,
  model: { tieWordEmbeddings?: boolean } = {},
): { model: string; data: string } {
  const name = model.tieWordEmbeddings ? "model-tied" : "model";
  return {
    model: writeToyModel(join(root, name), { seed: 3, ...model }),
    data: writeJsonl(join(root, "pairs.jsonl"), toyPairs(pairs, 5)),
  };
}

/** Writes a recipe YAML (values as JSON, which YAML reads) and returns its path. */
export function writeRecipe(file: string, keys: Record<string, unknown>): string {
  writeFileSync(
    file,
    Object.entries(keys)
      .map(([k, v]) => `${k}: ${JSON.stringify(v)}`)
      .join("\n") + "\n",
  );
  return file;
}

/** Starts `omni-dpo train` (or `command`: train-rm) with `args` (the launcher's flags among them, or none). */
export function startTrain(
  recipe: string,
  args: string[] = [],
  env: Record<string, string> = {},
  command = "train",
): { child: ChildProcess; done: Promise<RankRun> } {
  const child = spawn(process.execPath, [CLI, command, recipe, ...args], {
    env: { ...process.env, OMP_NUM_THREADS: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let output = "";
  child.stdout!.on("data", (d) => {
    stdout += d;
    output += d;
  });
  child.stderr!.on("data", (d) => {
    output += d;
  });
  const done = new Promise<RankRun>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal, stdout, output })),
  );
  return { child, done };
}

export function runTrain(
  recipe: string,
  args: string[] = [],
  env: Record<string, string> = {},
  command = "train",
): Promise<RankRun> {
  return startTrain(recipe, args, env, command).done;
}

/** The final model's tensors (a LoRA run's: its adapter's) as float64 values, by name. */
export function weightsOf(dir: string): Map<string, Float64Array> {
  const adapter = join(dir, "adapter_model.safetensors");
  const tensors = loadSafetensors(existsSync(adapter) ? adapter : join(dir, "model.safetensors"));
  const out = new Map<string, Float64Array>();
  for (const [name, t] of tensors) {
    out.set(name, Float64Array.from(t.to("float64").data() as Float64Array));
    t.dispose();
  }
  return out;
}

/** The largest difference between two runs' weights, over every tensor. */
export function maxWeightDifference(a: Map<string, Float64Array>, b: Map<string, Float64Array>): number {
  if ([...a.keys()].sort().join() !== [...b.keys()].sort().join())
    throw new Error("the two models have different tensors");
  let max = 0;
  for (const [name, x] of a) {
    const y = b.get(name)!;
    for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i] - y[i]));
  }
  return max;
}

export function metricRows(dir: string): MetricRow[] {
  const file = join(dir, "metrics.jsonl");
  return existsSync(file) ? MetricsSink.read(file) : [];
}

export function readJson(file: string): unknown {
  return JSON.parse(readFileSync(file, "utf8"));
}
