// The embedded demo: the reference's mathematical-reasoning pipeline in miniature.
//   1. a small Llama-style model SFT-trained on worked arithmetic solutions (shipped in
//      assets/arith-sft, reproducible with `omni-dpo demo sft`);
//   2. on-policy pairs: K samples per prompt at T = 0.8, scored by the verifier (final answer)
//      and a noisy process judge (steps), binarised as the reference does;
//   3. DPO, SimPO and Omni-DPO (optionally its ablations) trained from the same start on the
//      same pairs, over several seeds, hyperparameters chosen on a validation split;
//   4. greedy accuracy on held-out problems and pairwise accuracy on held-out pairs.
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import { createModel, loadModel, saveModel } from "../models/auto.js";
import type { CausalLM } from "../models/causal-lm.js";
import { generate } from "../models/generate.js";
import type { Tokenizer } from "../text/index.js";
import {
  arithScorer, arithTokenizer, formatPrompt, generateProblems, verify, workedSolution, writeArithTokenizer,
  type ArithProblem, type DifficultyName,
} from "../tasks/arith/index.js";
import { buildPairs, type Pair } from "../data/build.js";
import { tokenizePair, TOKENIZE_DEFAULTS } from "../data/tokenize.js";
import { evaluatePairs, pairLogps } from "../eval/pairwise.js";
import { objectiveFromConfig } from "../objectives/index.js";
import { loadTrainConfig } from "../train/config.js";
import { sftTrain } from "../train/sft.js";
import { train } from "../train/trainer.js";
import { MetricsSink } from "../train/metrics.js";
import { packageRoot } from "../util/package-root.js";
import { writeJsonAtomic, writeJsonLinesAtomic } from "../util/files.js";
import type { DemoResult, MethodResult, Spread } from "../report/demo-report.js";

export type { DemoResult, MethodResult, Spread };

/** How the shipped SFT checkpoint was made; `omni-dpo demo sft` repeats it. */
export const SFT_RECIPE = {
  difficulty: "medium" as DifficultyName, problems: 4000, problemSeed: 1, steps: 600, batchSize: 64, learningRate: 3e-3, seed: 0,
  model: { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 4 },
};

/** The demo's model is tiny: LibTorch's thread pool costs more than it saves on ops this small. */
function singleThreadForTinyModels(): void {
  if (!process.env.OMP_NUM_THREADS) torch.setNumThreads(1);
}

export function shippedSftDir(): string { return join(packageRoot(), "assets", "arith-sft"); }

/** Trains the demo's starting policy on worked solutions and saves it (model + tokenizer) to `dir`. */
export function trainSftModel(dir: string, onStep?: (step: number, total: number, loss: number) => void): { seconds: number; finalLoss: number } {
  const start = Date.now();
  singleThreadForTinyModels();
  const tokenizer = arithTokenizer();
  torch.manualSeed(SFT_RECIPE.seed);
  const model = createModel({
    architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: tokenizer.vocabSize, max_position_embeddings: 128,
    rms_norm_eps: 1e-6, tie_word_embeddings: true, bos_token_id: tokenizer.bosTokenId, eos_token_id: tokenizer.eosTokenId,
    ...SFT_RECIPE.model,
  });
  const problems = generateProblems(SFT_RECIPE.problems, { difficulty: SFT_RECIPE.difficulty, seed: SFT_RECIPE.problemSeed });
  const losses = sftTrain(model, tokenizer, problems.map((p) => ({ prompt: formatPrompt(p), completion: workedSolution(p) })), {
    maxSteps: SFT_RECIPE.steps, batchSize: SFT_RECIPE.batchSize, learningRate: SFT_RECIPE.learningRate, seed: SFT_RECIPE.seed, onStep,
  });
  mkdirSync(dir, { recursive: true });
  saveModel(model, dir);
  writeArithTokenizer(dir);
  writeJsonAtomic(join(dir, "sft_recipe.json"), { ...SFT_RECIPE, command: "omni-dpo demo sft --out DIR", finalLoss: losses[losses.length - 1] });
  model.dispose();
  return { seconds: (Date.now() - start) / 1000, finalLoss: losses[losses.length - 1] };
}

export interface MethodSpec { name: string; label: string; config: Record<string, unknown> }

/** The methods compared, with the reference's defaults; TUNING_GRID below picks the learning rate. */
export function methodSpecs(ablations: boolean): MethodSpec[] {
  const omni = { pref_loss: "uni_dpo", uni_dpo_qual_eta: 0.7, uni_dpo_tau_ref: 2.0, uni_dpo_perf_gamma: 3.0, uni_dpo_nll_lambda: 0.2, uni_dpo_tau_good: 8.0 };
  const specs: MethodSpec[] = [
    { name: "dpo", label: "DPO", config: { loss_type: "sigmoid" } },
    { name: "simpo", label: "SimPO", config: { pref_loss: "simpo", loss_type: "sigmoid", gamma_beta_ratio: 0.25 } },
    { name: "omni_dpo", label: "Omni-DPO", config: omni },
  ];
  if (ablations) {
    specs.push(
      { name: "omni_dpo_no_qual", label: "Omni-DPO w/o w_qual", config: { ...omni, uni_dpo_use_qual_weight: false } },
      { name: "omni_dpo_no_perf", label: "Omni-DPO w/o w_perf", config: { ...omni, uni_dpo_use_perf_weight: false } },
      { name: "omni_dpo_no_nll", label: "Omni-DPO w/o c-NLL", config: { ...omni, uni_dpo_nll_lambda: 0 } },
    );
  }
  return specs;
}

/** One grid point: the learning rate and beta a method trains with. */
export type Hyperparameters = MethodResult["hyperparameters"];

/**
 * Hyperparameters tried for every method on the validation split; without tuning, the first.
 * Measured while building the demo (README, "The demo"): with this model every method loses
 * held-out accuracy from lr 3e-5 up, so the grid spans the learning rate at the reference's beta.
 */
export const TUNING_GRID: readonly Hyperparameters[] = [3e-6, 1e-5, 3e-5].map((learning_rate) => ({ learning_rate, beta: 2.0 }));

export interface DemoOptions {
  quick?: boolean;
  seed?: number;
  /** Training seeds per method (default 3, quick 2). */
  seeds?: number;
  ablations?: boolean;
  /** Tune lr and beta on the validation split (default: on, off with quick). */
  tune?: boolean;
  outDir: string;
  judgeNoise?: number;
  /** Replaces the methods compared (default: methodSpecs(ablations)). */
  methods?: MethodSpec[];
  /** Replaces the tuning grid (every method); for experiments. */
  grid?: Hyperparameters[];
  /** Training epochs over the pairs (default 3, quick 2). */
  epochs?: number;
  /** The starting policy (default: the shipped assets/arith-sft, trained on the spot if absent). */
  sftDir?: string;
  /** Prompts used to build training pairs (default 1536, quick 512). */
  trainPrompts?: number;
  /** Overrides the problem-set sizes (tests use tiny ones). */
  sizes?: Partial<{ train: number; val: number; test: number; testPairs: number }>;
  onStatus?: (message: string) => void;
  onProgress?: (label: string, done: number, total: number) => void;
}

export function spread(runs: number[]): Spread {
  const mean = runs.reduce((a, b) => a + b, 0) / Math.max(runs.length, 1);
  const std = runs.length > 1 ? Math.sqrt(runs.reduce((a, b) => a + (b - mean) ** 2, 0) / (runs.length - 1)) : 0;
  return { mean, std, runs };
}

/** Greedy accuracy of `model` on problems: generate, then verify the final answer. */
export function greedyAccuracy(model: CausalLM, tokenizer: Tokenizer, problems: ArithProblem[]): number {
  let correct = 0;
  for (let i = 0; i < problems.length; i += 128) {
    const chunk = problems.slice(i, i + 128);
    const out = generate(model, chunk.map((p) => tokenizer.encode(formatPrompt(p))), {
      maxNewTokens: 64, eosTokenIds: [tokenizer.eosTokenId!], padTokenId: tokenizer.padTokenId,
    });
    out.tokens.forEach((t, j) => { if (verify(chunk[j], tokenizer.decode(t, { skipSpecialTokens: true }))) correct++; });
  }
  return correct / Math.max(problems.length, 1);
}

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const start = Date.now();
  const quick = options.quick ?? false;
  const seed = options.seed ?? 0;
  const seeds = options.seeds ?? (quick ? 2 : 3);
  const tune = options.tune ?? !quick;
  const status = options.onStatus ?? (() => {});
  const out = options.outDir;
  rmSync(join(out, "runs"), { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  singleThreadForTinyModels();

  // 1. The starting policy.
  let sftDir = options.sftDir ?? shippedSftDir();
  if (!existsSync(join(sftDir, "model.safetensors"))) {
    sftDir = join(out, "sft");
    status(`no shipped SFT checkpoint; training one (${SFT_RECIPE.steps} steps)`);
    trainSftModel(sftDir, (s, t) => options.onProgress?.("SFT", s, t));
  }
  const tokenizer = arithTokenizer();
  const sft = loadModel(sftDir);

  // 2. Problems: pair-building, validation and held-out sets never overlap.
  const sizes = quick ? { train: 512, val: 0, test: 200, testPairs: 96 } : { train: 1536, val: 160, test: 400, testPairs: 160 };
  if (options.trainPrompts) sizes.train = options.trainPrompts;
  Object.assign(sizes, options.sizes ?? {});
  if (options.grid && tune && !sizes.val) sizes.val = 160;
  const difficulty = SFT_RECIPE.difficulty;
  const used = new Set(generateProblems(SFT_RECIPE.problems, { difficulty, seed: SFT_RECIPE.problemSeed }).map(formatPrompt));
  const take = (n: number, s: number) => {
    const ps = generateProblems(n, { difficulty, seed: s, exclude: used });
    for (const p of ps) used.add(formatPrompt(p));
    return ps;
  };
  const trainProblems = take(sizes.train, 1000 + seed);
  const valProblems = sizes.val ? take(sizes.val, 2000 + seed) : [];
  const testProblems = take(sizes.test, 3000 + seed);
  const testPairProblems = take(sizes.testPairs, 4000 + seed);

  status("measuring the SFT model");
  const sftAccuracy = greedyAccuracy(sft, tokenizer, testProblems);

  // 3. On-policy pairs, scored by the verifier and the noisy process judge.
  const judgeNoise = options.judgeNoise ?? 1.5;
  const settings = { difficulty, samples: 8, temperature: 0.8, judge_noise: judgeNoise, judge_aggregate: "mean", chosen: "highest", rejected: "lowest", margin: 2, min_chosen_score: 6 };
  const scorer = arithScorer({ noise: judgeNoise, seed });
  const build = async (problems: ArithProblem[], label: string, s: number) => buildPairs(sft, tokenizer, problems.map(formatPrompt), scorer, {
    samples: settings.samples, temperature: settings.temperature, maxNewTokens: 64, chosen: "highest", rejected: "lowest",
    margin: settings.margin, minChosenScore: settings.min_chosen_score, seed: s, onProgress: (d, t) => options.onProgress?.(`sampling (${label})`, d, t),
  });
  status(`building pairs: ${settings.samples} samples per prompt at T=${settings.temperature}, judge noise ${judgeNoise}`);
  const trainData = await build(trainProblems, "train", seed);
  const testData = await build(testPairProblems, "held-out", seed + 1);
  if (trainData.pairs.length < 8) throw new Error(`only ${trainData.pairs.length} training pairs were built; the SFT model is too strong or too weak for this setup`);
  const pairsFile = join(out, "pairs.jsonl");
  const testPairsFile = join(out, "heldout_pairs.jsonl");
  writeJsonLinesAtomic(pairsFile, trainData.pairs);
  writeJsonLinesAtomic(testPairsFile, testData.pairs);
  const tokenizeOptions = { ...TOKENIZE_DEFAULTS, maxLength: 128, maxPromptLength: 32 };
  const testPairs = testData.pairs.map((p) => tokenizePair(p, tokenizer, tokenizeOptions));
  const pad = tokenizer.padTokenId!;
  const sftPairwise = evaluatePairs(sft, testPairs, { padTokenId: pad, reference: null }).accuracy;
  const weights = decouplingView(sft, tokenizer, trainData.pairs, tokenizeOptions);
  sft.dispose();

  // 4. Train each method from the same start on the same pairs.
  const specs = options.methods ?? methodSpecs(options.ablations ?? false);
  const base = {
    model_name_or_path: sftDir, dataset_mixer: { [pairsFile]: 1.0 }, max_length: 128, max_prompt_length: 32,
    lr_scheduler_type: "cosine", warmup_ratio: 0.1, num_train_epochs: options.epochs ?? (quick ? 2 : 3), per_device_train_batch_size: 16,
    per_device_eval_batch_size: 32, logging_steps: 2, save_strategy: "no", weight_decay: 0, report_to: "none",
    // The report's per-pair view: a small sample at a few points of each run (each log is a forward over the sample).
    pair_log_samples: 64, pair_logging_steps: 0.2,
  };
  const runOne = async (spec: MethodSpec, hp: Hyperparameters, runSeed: number, dir: string) => {
    const { config } = loadTrainConfig({ ...base, ...spec.config, ...hp, seed: runSeed, output_dir: dir, overwrite_output_dir: true });
    await train(config, { onProgress: (s, t) => options.onProgress?.(`${spec.label} seed ${runSeed}`, s, t) });
    return loadModel(dir);
  };
  const results: MethodResult[] = [];
  for (const spec of specs) {
    const candidates = options.grid ?? TUNING_GRID;
    let best = candidates[0];
    let bestVal: number | null = null;
    if (tune && valProblems.length) {
      for (const hp of candidates) {
        status(`tuning ${spec.label}: lr ${hp.learning_rate}, beta ${hp.beta}`);
        const model = await runOne(spec, hp, seed, join(out, "runs", `${spec.name}-tune`));
        const acc = greedyAccuracy(model, tokenizer, valProblems);
        model.dispose();
        if (bestVal === null || acc > bestVal) { bestVal = acc; best = hp; }
      }
      rmSync(join(out, "runs", `${spec.name}-tune`), { recursive: true, force: true });
    }
    const heldout: number[] = [];
    const pairwise: number[] = [];
    const curves: MethodResult["curves"] = [];
    for (let s = 0; s < seeds; s++) {
      status(`training ${spec.label} (lr ${best.learning_rate}, beta ${best.beta}), seed ${seed + s}`);
      const dir = join(out, "runs", `${spec.name}-seed${seed + s}`);
      const model = await runOne(spec, best, seed + s, dir);
      heldout.push(greedyAccuracy(model, tokenizer, testProblems));
      pairwise.push(evaluatePairs(model, testPairs, { padTokenId: pad, reference: null }).accuracy);
      curves.push({ seed: seed + s, dir, rows: MetricsSink.read(join(dir, "metrics.jsonl")) });
      model.dispose();
    }
    results.push({ name: spec.name, label: spec.label, hyperparameters: best, heldout_accuracy: spread(heldout), pairwise_accuracy: spread(pairwise), validation_accuracy: bestVal, curves });
  }
  return {
    sft_accuracy: spread([sftAccuracy]), sft_pairwise_accuracy: sftPairwise, methods: results,
    data: { train: trainData.stats, heldout: testData.stats, settings }, weights, wall_seconds: (Date.now() - start) / 1000, outDir: out,
  };
}

/**
 * w_qual = sigmoid(eta (S_w - S_l)) and the starting policy's w_perf = (1 - sigmoid(beta dpi - tau_ref))^gamma
 * for every training pair, with the demo's Omni-DPO settings (its method spec, at the grid's
 * beta): the paper's view that data quality and learning difficulty are different axes.
 */
function decouplingView(model: CausalLM, tokenizer: Tokenizer, pairs: Pair[], options: typeof TOKENIZE_DEFAULTS): DemoResult["weights"] {
  const omni = methodSpecs(false).find((m) => m.name === "omni_dpo")!;
  const o = objectiveFromConfig({ ...omni.config, beta: TUNING_GRID[0].beta });
  const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
  const logps = pairLogps(model, pairs.map((p) => tokenizePair(p, tokenizer, options)), tokenizer.padTokenId!, true, 64);
  return pairs.map((p, i) => ({
    w_qual: sigmoid(o.qualEta * (p.score_chosen - p.score_rejected)),
    w_perf: (1 - sigmoid(o.beta * (logps.chosen[i] - logps.rejected[i]) - o.tauRef)) ** o.perfGamma,
    correct_rejected: p.rejected_correct,
  }));
}
