// The rm pipeline's reward model: a small sequence classifier trained by `omni-dpo train-rm`'s
// trainer (trainRewardModel, the Bradley-Terry loss) on pairs the noisy process judge labels,
// from the policy's own samples of prompts that no other stage of the demo sees; then it scores
// the on-policy samples the other pipelines use. It starts from the SFT checkpoint (its body, a
// fresh one-label score head), as reward models usually start from the policy's SFT model.
// Trained once with RM_RECIPE and shipped in assets/arith-rm (with its held-out pairs), as the
// SFT start is; `omni-dpo demo rm --out DIR` remakes it, and the demo trains it when it is absent.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSequenceClassifier, type Pair, type ScoredSamples, type Tokenizer } from "../../src/index.js";
import { tokenizePair, TOKENIZE_DEFAULTS } from "../../src/data/tokenize.js";
import { packageRoot } from "../../src/util/package-root.js";
import { writeJsonAtomic, writeJsonLinesAtomic } from "../../src/util/files.js";
import type { RewardModelJob, SampleJob } from "./jobs.js";
import { textPairs } from "./pipelines.js";

/**
 * How the demo's reward model is made: its prompts (hard problems apart from the SFT set, drawn
 * with `problemSeed`; the demo's other sets avoid them), K samples of the SFT start at the demo's
 * temperature, labelled by the process judge at `judgeNoise`, a fifth of the prompts held out.
 */
export const RM_RECIPE = {
  prompts: 1024,
  problemSeed: 4000,
  sampleSeed: 1001,
  samples: 8,
  temperature: 0.8,
  judgeNoise: 1.5,
  heldoutShare: 0.2,
};

/** The trainer's keys for it (YAML keys of `omni-dpo train-rm`; model, data and output are added). */
export const RM_TRAINER = {
  learning_rate: 1e-3,
  num_train_epochs: 16,
  per_device_train_batch_size: 32,
  lr_scheduler_type: "cosine",
  warmup_ratio: 0.1,
  weight_decay: 0,
  max_length: 128,
  max_prompt_length: 32,
  logging_steps: 5,
  save_strategy: "no",
  report_to: "none",
  overwrite_output_dir: true,
  seed: 1000,
} as const;

export const RM_RECIPE_FILE = "rm_recipe.json";
export const RM_HELDOUT_FILE = "heldout_pairs.jsonl";

/** The token ids the reward model reads for one answer: exactly as the trainer tokenised its pairs. */
function rewardRow(tokenizer: Tokenizer, prompt: string, response: string): number[] {
  const options = {
    ...TOKENIZE_DEFAULTS,
    maxLength: RM_TRAINER.max_length,
    maxPromptLength: RM_TRAINER.max_prompt_length,
  };
  return tokenizePair({ prompt, chosen: response, rejected: response }, tokenizer, options).chosenInputIds;
}

/** The reward model in `dir` scoring (prompt, response) items: one number each. */
export function scoreResponses(dir: string, tokenizer: Tokenizer, items: { prompt: string; response: string }[]) {
  const model = loadSequenceClassifier(dir);
  try {
    const rows = items.map((x) => rewardRow(tokenizer, x.prompt, x.response));
    return model.scoreTokenLists(rows, { batchSize: 128 }).map((s) => s[0]);
  } finally {
    model.dispose();
  }
}

/** Every sample's reward, as [prompt][sample]. */
export function scoreSamples(dir: string, tokenizer: Tokenizer, samples: ScoredSamples): number[][] {
  const items = samples.scored.flatMap((xs, i) =>
    xs.map((s) => ({ prompt: samples.prompts[i], response: s.response })),
  );
  const flat = scoreResponses(dir, tokenizer, items);
  let k = 0;
  return samples.scored.map((xs) => xs.map(() => flat[k++]));
}

/** Share of `pairs` whose chosen answer the reward model scores above the rejected one (ties count half). */
export function pairwiseAccuracy(dir: string, tokenizer: Tokenizer, pairs: Pair[]): number {
  const chosen = scoreResponses(
    dir,
    tokenizer,
    pairs.map((p) => ({ prompt: p.prompt, response: p.chosen })),
  );
  const rejected = scoreResponses(
    dir,
    tokenizer,
    pairs.map((p) => ({ prompt: p.prompt, response: p.rejected })),
  );
  const wins = chosen.reduce((n, c, i) => n + (c > rejected[i] ? 1 : c === rejected[i] ? 0.5 : 0), 0);
  return wins / Math.max(pairs.length, 1);
}

export function shippedRewardModelDir(): string {
  return join(packageRoot(), "assets", "arith-rm");
}

/** A reward model made by makeRewardModel: its directory, pair counts and how long it took. */
export interface RewardModelInfo {
  dir: string;
  trainPairs: number;
  heldoutPairs: number;
  trainSeconds: number;
}

/** The reward model in `dir` (made by makeRewardModel), or null when it has none. */
export function readRewardModel(dir: string): (RewardModelInfo & { heldout: Pair[] }) | null {
  if (!existsSync(join(dir, "model.safetensors")) || !existsSync(join(dir, RM_RECIPE_FILE))) return null;
  const recipe = JSON.parse(readFileSync(join(dir, RM_RECIPE_FILE), "utf8")) as {
    trainPairs: number;
    trainSeconds: number;
  };
  const heldout = readFileSync(join(dir, RM_HELDOUT_FILE), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Pair);
  return {
    dir,
    trainPairs: recipe.trainPairs,
    heldoutPairs: heldout.length,
    trainSeconds: recipe.trainSeconds,
    heldout,
  };
}

/**
 * Makes the reward model in `dir` by RM_RECIPE: samples of `prompts` from the SFT start, paired
 * best against worst by the judge (the text pipeline's rule, so its pairs are the kind the judge
 * labels most reliably), the trainer on the first four fifths of the prompts' pairs; the
 * rest are written beside it (heldout_pairs.jsonl) with the recipe. `run` runs the two jobs (the
 * demo's worker pool, or this process).
 */
export async function makeRewardModel(
  dir: string,
  sftDir: string,
  prompts: string[],
  run: { sample(job: SampleJob): Promise<ScoredSamples>; train(job: RewardModelJob): Promise<{ seconds: number }> },
): Promise<RewardModelInfo> {
  const { samples, temperature, judgeNoise, sampleSeed, heldoutShare } = RM_RECIPE;
  const scored = await run.sample({
    kind: "sample",
    id: "sample/reward-model",
    sftDir,
    prompts,
    samples,
    temperature,
    judgeNoise,
    seed: sampleSeed,
  });
  const trainPrompts = new Set(prompts.slice(0, prompts.length - Math.round(prompts.length * heldoutShare)));
  const { pairs } = textPairs(scored);
  const train = pairs.filter((p) => trainPrompts.has(p.prompt));
  const heldout = pairs.filter((p) => !trainPrompts.has(p.prompt));
  if (train.length < 32 || heldout.length < 8)
    throw new Error(`reward model: only ${train.length} + ${heldout.length} judge-labelled pairs`);
  const scratch = mkdtempSync(join(tmpdir(), "omni-dpo-rm-pairs-"));
  let seconds: number;
  try {
    const file = join(scratch, "train_pairs.jsonl");
    writeJsonLinesAtomic(file, train);
    ({ seconds } = await run.train({
      kind: "reward-model",
      id: "reward-model",
      recipe: { ...RM_TRAINER, model_name_or_path: sftDir, dataset_mixer: { [file]: 1.0 }, output_dir: dir },
    }));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  writeJsonLinesAtomic(join(dir, RM_HELDOUT_FILE), heldout);
  writeJsonAtomic(join(dir, RM_RECIPE_FILE), {
    ...RM_RECIPE,
    trainer: RM_TRAINER,
    start: "the SFT checkpoint (assets/arith-sft) with a fresh one-label score head",
    pairs: "best against worst judge score of each prompt's samples (prompts with identical or tied samples give none)",
    command: "omni-dpo demo rm --out DIR",
    trainPairs: train.length,
    heldoutPairs: heldout.length,
    trainSeconds: seconds,
  });
  return { dir, trainPairs: train.length, heldoutPairs: heldout.length, trainSeconds: seconds };
}
