// The embedded demo: the paper's two data pipelines in miniature, as an experiment a reviewer
// would accept.
//   1. the start: a small Llama-style model SFT-trained on worked arithmetic solutions (shipped
//      in assets/arith-sft, reproducible with `omni-dpo demo sft`), right about half the time;
//   2. on-policy pairs: K samples per prompt at T = 0.8, scored by a verifier (final answer) and
//      a noisy process judge (steps), binarised by the math pipeline's rules and by the text
//      pipeline's (the judge alone; apps/demo/pipelines.ts), once per pair-building seed; the rm
//      pipeline trains a small reward model on judge-labelled pairs of prompts no other stage
//      sees and binarises the same samples by its scores (apps/demo/reward-model.ts);
//   3. RFT (SFT on the chosen answers), DPO, SimPO and Omni-DPO (optionally its ablations) from
//      the same start, each at the learning rate its validation accuracy picks, over training
//      seeds x pair seeds, and again at 2x and 4x the learning rate DPO picked;
//   4. greedy accuracy on held-out problems, paired differences with 95% intervals
//      (apps/demo/statistics.ts).
// Every run is a job for a pool of worker processes (apps/demo/runs.ts), one per core.
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import {
  createModel,
  loadModel,
  objectiveFromConfig,
  saveModel,
  sftTrain,
  type Tokenizer,
  torch,
} from "../../src/index.js";
import {
  arithTokenizer,
  formatPrompt,
  generateProblems,
  workedSolution,
  writeArithTokenizer,
  type ArithProblem,
  type DifficultyName,
} from "../tasks/arith/index.js";
import type { BuildStats, Pair, ScoredSamples } from "../../src/data/build.js";
import { batchesOf, pairLogps } from "../../src/logprobs/pairs.js";
import { objectiveInputs, referenceLogpsOptions } from "../../src/logprobs/objective-inputs.js";
import { MetricsSink, type MetricRow } from "../../src/train/metrics.js";
import { greedyCorrect } from "./evaluate.js";
import {
  judgeAgreement,
  labelQuality,
  pipelinePairs,
  PIPELINES,
  rescalePairs,
  rmPairs,
  type JudgeAgreement,
  type LabelQuality,
  type PipelineName,
  type ScoreScale,
} from "./pipelines.js";
import { JobPool, type TrainJob } from "./runs.js";
import {
  makeRewardModel,
  readRewardModel,
  RM_RECIPE,
  RM_TRAINER,
  shippedRewardModelDir,
  type RewardModelInfo,
} from "./reward-model.js";
import {
  average,
  pairedDifference,
  quantiles,
  spread,
  verdict,
  type PairedDifference,
  type Quantiles,
  type Spread,
} from "./statistics.js";

import { tokenizePair, TOKENIZE_DEFAULTS } from "../../src/data/tokenize.js";
import { pairValues } from "../../src/objectives/index.js";
import { packageRoot } from "../../src/util/package-root.js";
import { writeJsonAtomic, writeJsonLinesAtomic } from "../../src/util/files.js";

export { greedyAccuracy, greedyCorrect } from "./evaluate.js";
export { spread, type Spread } from "./statistics.js";

/**
 * How the shipped SFT checkpoint was made; `omni-dpo demo sft` repeats it. The cosine schedule
 * spans `steps` but the checkpoint is taken at `saveAtStep`: a policy that is right about half
 * the time when sampling, with systematic errors left for preference learning to fix (a fully
 * trained one is ~97% right and leaves no room; the old 600-step medium one was right 8% of the
 * time when sampling, so its chosen answers were rare lucky samples).
 */
export const SFT_RECIPE = {
  difficulty: "hard" as DifficultyName,
  problems: 20_000,
  problemSeed: 1,
  steps: 1500,
  saveAtStep: 800,
  batchSize: 64,
  learningRate: 3e-3,
  seed: 0,
  model: {
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 4,
  },
};

/** The demo's model is tiny: LibTorch's thread pool costs more than it saves on ops this small. */
function singleThreadForTinyModels(): void {
  if (!process.env.OMP_NUM_THREADS) torch.setNumThreads(1);
}

export function shippedSftDir(): string {
  return join(packageRoot(), "assets", "arith-sft");
}

/** Trains the demo's starting policy on worked solutions and saves it (model + tokenizer) to `dir`. */
export function trainSftModel(
  dir: string,
  onStep?: (step: number, total: number, loss: number) => void,
  saveAtStep: number = SFT_RECIPE.saveAtStep,
): { seconds: number; finalLoss: number } {
  const start = Date.now();
  singleThreadForTinyModels();
  const tokenizer = arithTokenizer();
  torch.manualSeed(SFT_RECIPE.seed);
  const model = createModel({
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: tokenizer.vocabSize,
    max_position_embeddings: 128,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    bos_token_id: tokenizer.bosTokenId,
    eos_token_id: tokenizer.eosTokenId,
    ...SFT_RECIPE.model,
  });
  const problems = generateProblems(SFT_RECIPE.problems, {
    difficulty: SFT_RECIPE.difficulty,
    seed: SFT_RECIPE.problemSeed,
  });
  const losses = sftTrain(
    model,
    tokenizer,
    problems.map((p) => ({ prompt: formatPrompt(p), completion: workedSolution(p) })),
    {
      maxSteps: SFT_RECIPE.steps,
      stopAtStep: saveAtStep,
      batchSize: SFT_RECIPE.batchSize,
      learningRate: SFT_RECIPE.learningRate,
      seed: SFT_RECIPE.seed,
      onStep,
    },
  );
  mkdirSync(dir, { recursive: true });
  saveModel(model, dir);
  writeArithTokenizer(dir);
  writeJsonAtomic(join(dir, "sft_recipe.json"), {
    ...SFT_RECIPE,
    saveAtStep,
    command: `omni-dpo demo sft --out DIR --save-at-step ${saveAtStep}`,
    finalLoss: losses[losses.length - 1],
  });
  model.dispose();
  return { seconds: (Date.now() - start) / 1000, finalLoss: losses[losses.length - 1] };
}

export interface MethodSpec {
  name: string;
  label: string;
  /** The recipe keys that make the method, with the reference's defaults. */
  config: Record<string, unknown>;
  /** Learning rates tried on the validation split. */
  grid: readonly number[];
}

/**
 * Learning rates each kind of method tries on validation. Measured on the shipped start (1024
 * prompts, 2 epochs, batch 32): the preference losses peak near 2e-5 and fall apart from 8e-5,
 * RFT is flat from 4e-5 to 1.6e-4.
 */
export const PREFERENCE_GRID = [1e-5, 2e-5, 4e-5] as const;
export const RFT_GRID = [1e-5, 4e-5, 1.6e-4] as const;
/** The robustness sweep: every method at these multiples of the learning rate DPO picked. */
export const LR_MULTIPLES = [2, 4] as const;
/**
 * The sweep's runs: training seed 0 on this many of the pair seeds (the first ones). Two keep the
 * default demo within 10 minutes on two cores; the sweep reports means, not intervals.
 */
export const SWEEP_PAIR_SEEDS = 2;

/** The methods compared: the simple baseline, DPO, SimPO and Omni-DPO (with the Math recipe's settings). */
export function methodSpecs(ablations: boolean): MethodSpec[] {
  const omni = {
    pref_loss: "uni_dpo",
    uni_dpo_qual_eta: 0.7,
    uni_dpo_tau_ref: 2.0,
    uni_dpo_perf_gamma: 3.0,
    uni_dpo_nll_lambda: 0.2,
    uni_dpo_tau_good: 8.0,
  };
  const specs: MethodSpec[] = [
    // Rejection-sampling fine-tuning: next-token NLL of the chosen answers only (TRL's `sft` loss type).
    // Every method on per-token mean log-probs, the Uni-DPO reference trainers' setting the demo
    // was designed and measured with (a recipe of TRL keys alone would sum them, as TRL does).
    { name: "rft", label: "RFT", config: { loss_type: "sft", dpo_length_norm: true }, grid: RFT_GRID },
    { name: "dpo", label: "DPO", config: { loss_type: "sigmoid", dpo_length_norm: true }, grid: PREFERENCE_GRID },
    {
      name: "simpo",
      label: "SimPO",
      config: { pref_loss: "simpo", loss_type: "sigmoid", gamma_beta_ratio: 0.25 },
      grid: PREFERENCE_GRID,
    },
    { name: "omni_dpo", label: "Omni-DPO", config: omni, grid: PREFERENCE_GRID },
  ];
  if (ablations) {
    specs.push(
      {
        name: "omni_dpo_no_qual",
        label: "Omni-DPO w/o w_qual",
        config: { ...omni, uni_dpo_use_qual_weight: false },
        grid: PREFERENCE_GRID,
      },
      {
        name: "omni_dpo_no_perf",
        label: "Omni-DPO w/o w_perf",
        config: { ...omni, uni_dpo_use_perf_weight: false },
        grid: PREFERENCE_GRID,
      },
      {
        name: "omni_dpo_no_nll",
        label: "Omni-DPO w/o c-NLL",
        config: { ...omni, uni_dpo_nll_lambda: 0 },
        grid: PREFERENCE_GRID,
      },
    );
  }
  return specs;
}

/** The recipe keys every run shares (one place, so all methods train alike). */
const BASE_RECIPE = {
  max_length: 128,
  max_prompt_length: 32,
  beta: 2.0,
  lr_scheduler_type: "cosine",
  warmup_ratio: 0.1,
  num_train_epochs: 2,
  per_device_train_batch_size: 32,
  precompute_ref_log_probs: true,
  weight_decay: 0,
  logging_steps: 2,
  save_strategy: "no",
  report_to: "none",
  overwrite_output_dir: true,
} as const;

export interface DemoSizes {
  train: number;
  val: number;
  test: number;
}
/** Problems per set: pair-building prompts, validation (learning-rate choice), held-out (the result), reward model. */
export const DEMO_SIZES: Record<"full" | "quick", DemoSizes> = {
  full: { train: 1024, val: 300, test: 600 },
  quick: { train: 384, val: 200, test: 400 },
};

/** The rm pipeline's default η: 1 on raw scores makes w_qual the reward model's own P(label right). */
export const RM_ETA = 1;
/** Training seeds x pair-building seeds of the reported runs. */
export const DEMO_SEEDS: Record<"full" | "quick", { train: number; pair: number }> = {
  full: { train: 2, pair: 3 },
  quick: { train: 1, pair: 2 },
};

export interface DemoOptions {
  /** Which pipelines build the pairs (default all; "both" is its old name). */
  pipeline?: PipelineName | "all" | "both";
  /** The rm pipeline's Omni-DPO η (default RM_ETA). */
  rmEta?: number;
  /**
   * How the rm pipeline's reward-model scores become the pairs' scores, which w_qual reads
   * (default raw; rescalePairs):
   *   - raw: the reward model's own scores. Trained with the Bradley-Terry loss, σ(r_w − r_l) is
   *     its probability that the label is right, so at η = 1 w_qual is exactly that probability;
   *   - std: divided by the population standard deviation of the pairs' gaps (per pair seed),
   *     the scaling half of the reference's margin normalisation;
   *   - z: each pair's gap replaced by the reference's normalised margin (gap − mean) / std
   *     (scores z and 0), which also centres it, so half the pairs get w_qual below 0.5.
   */
  rmScale?: ScoreScale;
  /** The text pipeline's judge scores as its Omni-DPO's w_qual reads them (default raw; as rmScale). */
  textScale?: ScoreScale;
  /** The rm pipeline's reward model (default: the shipped assets/arith-rm, trained on the spot if absent). */
  rmDir?: string;
  quick?: boolean;
  /** Base seed: the problem sets, and the first training and pair seed (default 0). */
  seed?: number;
  trainSeeds?: number;
  pairSeeds?: number;
  ablations?: boolean;
  /** Worker processes (default: one per core). */
  jobs?: number;
  outDir: string;
  /** The process judge's noise, in score points (default 1.5). */
  judgeNoise?: number;
  /** The starting policy (default: the shipped assets/arith-sft, trained on the spot if absent). */
  sftDir?: string;
  /** Replaces the methods compared (default: methodSpecs(ablations)). */
  methods?: MethodSpec[];
  /** Overrides the problem-set sizes (tests use tiny ones). */
  sizes?: Partial<DemoSizes>;
  onStatus?: (message: string) => void;
  onProgress?: (label: string, done: number, total: number) => void;
}

/** One reported run: its seeds and held-out accuracy. */
export interface Cell {
  train_seed: number;
  pair_seed: number;
  accuracy: number;
}

export interface MethodResult {
  name: string;
  label: string;
  learning_rate: number;
  /** Validation accuracy of every learning rate tried (the tuning runs). */
  validation: { learning_rate: number; accuracy: number }[];
  heldout_accuracy: Spread;
  cells: Cell[];
  /** The reported runs' output_dir and metrics (training seed 0's, per pair seed), for the report's curves. */
  curves: { name: string; dir: string; rows: MetricRow[] }[];
}

export interface Comparison extends PairedDifference {
  a: string;
  b: string;
  verdict: ReturnType<typeof verdict>;
}

export interface SweepPoint {
  name: string;
  learning_rate: number;
  lr_multiple: number;
  heldout_accuracy: Spread;
}

export interface PipelineResult {
  name: PipelineName;
  sft_accuracy: Spread;
  methods: MethodResult[];
  /** Every method against DPO, and every method against the start. */
  comparisons: Comparison[];
  lr_sweep: SweepPoint[];
  /** Per pair seed: the pairs built and how often their labels are wrong. */
  data: {
    pair_seed: number;
    pairs: number;
    prompts: number;
    identical_dropped: number;
    no_pair: number;
    correct_share: number;
    labels: LabelQuality;
  }[];
  /** Per training pair of the first pair seed: w_qual and the starting policy's w_perf (the paper's decoupling view). */
  weights: { w_qual: number; w_perf: number; correct_rejected: boolean; correct_chosen: boolean }[];
  /** The rm pipeline's reward model and what its labels are worth (absent in the other pipelines). */
  reward_model?: RewardModelReport;
}

export interface RewardModelReport {
  /** Judge-labelled pairs it trained on and was held out on, from prompts no other stage sees. */
  train_pairs: number;
  heldout_pairs: number;
  /** Share of the held-out pairs it orders as the judge does. */
  heldout_accuracy: number;
  train_seconds: number;
  eta: number;
  scale: ScoreScale;
  /** Per pair seed: the gap distribution of the pairs built (raw reward-model units) and agreement with the judge. */
  per_pair_seed: { pair_seed: number; gap: Quantiles; judge: JudgeAgreement }[];
  /** w_qual of the first pair seed's training pairs, at `eta` on the scaled scores. */
  w_qual: Quantiles;
}

export interface DemoResult {
  pipelines: PipelineResult[];
  settings: Record<string, unknown>;
  wall_seconds: number;
  outDir: string;
}

/** Everything a demo run will do, decided before any job runs: sets, seeds, methods, sizes. */
export interface DemoPlan {
  outDir: string;
  /**
   * The rm pipeline's reward model: its directory and whether it must be trained first, its
   * prompts (RM_RECIPE's, apart from every other set), η and score scaling.
   */
  rm: { dir: string; train: boolean; prompts: string[]; eta: number; scale: ScoreScale };
  textScale: ScoreScale;
  /** The starting policy's directory, and whether it must be trained first (no shipped checkpoint). */
  sft: { dir: string; train: boolean };
  pipelines: PipelineName[];
  specs: MethodSpec[];
  sizes: DemoSizes;
  trainSeeds: number[];
  pairSeeds: number[];
  /** The learning-rate sweep's pair seeds: the first SWEEP_PAIR_SEEDS of pairSeeds. */
  sweepSeeds: number[];
  /**
   * The tuning runs' training seed: none of the reported runs uses it, so the runs a learning
   * rate is chosen on are not the runs it is judged by.
   */
  tuneSeed: number;
  difficulty: DifficultyName;
  /** Pair-building prompts, validation problems (the learning rate) and held-out problems (the result): disjoint, and apart from the SFT set. */
  trainPrompts: string[];
  valProblems: ArithProblem[];
  testProblems: ArithProblem[];
  judgeNoise: number;
  sampling: { samples: number; temperature: number };
  /** Training runs at most (a sweep point that is also a reported run is trained once). */
  plannedRuns: number;
}

/** The plan of a demo run: no model is loaded or trained, no job started. */
export function planDemo(options: DemoOptions): DemoPlan {
  const mode = options.quick ? "quick" : "full";
  const seed = options.seed ?? 0;
  const sizes = { ...DEMO_SIZES[mode], ...options.sizes };
  const trainSeeds = range(options.trainSeeds ?? DEMO_SEEDS[mode].train, seed);
  const pairSeeds = range(options.pairSeeds ?? DEMO_SEEDS[mode].pair, seed);
  const sweepSeeds = pairSeeds.slice(0, SWEEP_PAIR_SEEDS);
  const all = options.pipeline === undefined || options.pipeline === "all" || options.pipeline === "both";
  const pipelines = all ? [...PIPELINES] : [options.pipeline as PipelineName];
  const specs = options.methods ?? methodSpecs(options.ablations ?? false);
  if (!specs.some((m) => m.name === "dpo"))
    throw new Error("the demo compares every method with DPO: the methods must include 'dpo'");
  const shipped = options.sftDir ?? shippedSftDir();
  const sft = existsSync(join(shipped, "model.safetensors"))
    ? { dir: shipped, train: false }
    : { dir: join(options.outDir, "sft"), train: true };

  // The SFT set, pair-building, validation and held-out sets never overlap.
  const difficulty = SFT_RECIPE.difficulty;
  const used = new Set(
    generateProblems(SFT_RECIPE.problems, { difficulty, seed: SFT_RECIPE.problemSeed }).map(formatPrompt),
  );
  const take = (n: number, s: number) => {
    const ps = generateProblems(n, { difficulty, seed: s, exclude: used });
    for (const p of ps) used.add(formatPrompt(p));
    return ps;
  };
  const rmPrompts = rewardModelPrompts(new Set(used));
  for (const p of rmPrompts) used.add(p);
  const rmDir = options.rmDir ?? shippedRewardModelDir();
  const rm = existsSync(join(rmDir, "model.safetensors"))
    ? { dir: rmDir, train: false }
    : { dir: join(options.outDir, "reward-model"), train: true };
  const trainPrompts = take(sizes.train, 1000 + seed).map(formatPrompt);
  const valProblems = take(sizes.val, 2000 + seed);
  const testProblems = take(sizes.test, 3000 + seed);
  const runs = (p: PipelineName) =>
    pipelineSpecs(specs, p).reduce(
      (n, m) => n + m.grid.length + trainSeeds.length * pairSeeds.length + LR_MULTIPLES.length * sweepSeeds.length,
      0,
    );
  return {
    outDir: options.outDir,
    rm: { ...rm, prompts: rmPrompts, eta: options.rmEta ?? RM_ETA, scale: options.rmScale ?? "raw" },
    textScale: options.textScale ?? "raw",
    sft,
    pipelines,
    specs,
    sizes,
    trainSeeds,
    pairSeeds,
    sweepSeeds,
    tuneSeed: seed + 1000,
    difficulty,
    trainPrompts,
    valProblems,
    testProblems,
    judgeNoise: options.judgeNoise ?? 1.5,
    sampling: { samples: 8, temperature: 0.8 },
    plannedRuns: pipelines.reduce((n, p) => n + runs(p), 0),
  };
}

/**
 * The reward model's prompts, fixed by its recipe (it is shipped, so they cannot depend on the
 * run): drawn after the default demo's own sets (seed 0, full sizes) and apart from them and from
 * `sft`. Every run's sets then avoid these, so seed 0's are unchanged by them.
 */
function rewardModelPrompts(sft: Set<string>): string[] {
  const used = sft;
  const take = (n: number, seed: number) => {
    const ps = generateProblems(n, { difficulty: SFT_RECIPE.difficulty, seed, exclude: used }).map(formatPrompt);
    for (const p of ps) used.add(p);
    return ps;
  };
  const { train, val, test } = DEMO_SIZES.full;
  [train, val, test].forEach((n, i) => take(n, 1000 * (i + 1)));
  return take(RM_RECIPE.prompts, RM_RECIPE.problemSeed);
}

/**
 * The methods a pipeline compares: all of them, but the rm pipeline leaves out RFT (the preference
 * losses are what its question is about, and its runs must fit the demo's time).
 */
export function pipelineSpecs(specs: MethodSpec[], pipeline: PipelineName): MethodSpec[] {
  return pipeline === "rm" ? specs.filter((m) => m.name !== "rft") : specs;
}

/** The pairs one pipeline built from one pair seed's samples, and the file they were written to. */
interface PairSet {
  file: string;
  pairs: Pair[];
  stats: BuildStats;
  /** The rm pipeline's: the judge's scores of each pair's answers, and the gaps in raw reward-model units. */
  judge?: { chosen: number; rejected: number }[];
  rawGaps?: number[];
}

/** The rm pipeline's reward model and its accuracy on its held-out pairs, measured in this run. */
type RewardModelRun = RewardModelInfo & { accuracy: number };

/** Where a training run's logs go. */
function runDirectory(
  plan: DemoPlan,
  pipeline: PipelineName,
  spec: MethodSpec,
  lr: number,
  trainSeed: number,
  pairSeed: number,
): string {
  return join(plan.outDir, "runs", runId(pipeline, spec, lr, trainSeed, pairSeed).replaceAll("/", "-"));
}

function runId(pipeline: PipelineName, spec: MethodSpec, lr: number, trainSeed: number, pairSeed: number): string {
  return `${pipeline}/${spec.name}/lr${lr}/t${trainSeed}/p${pairSeed}`;
}

/**
 * A failed job fails the pool and every job after it; the first error is the one reported
 * (through whichever result is awaited), the others must not surface as unhandled rejections.
 */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/**
 * The demo's jobs on a worker pool, each started once however often it is asked for: samples
 * once per pair seed (started at once), pairs once per pipeline and pair seed, and a training
 * run once per (pipeline, method, learning rate, training seed, pair seed).
 */
class DemoJobs {
  readonly #samples: Map<number, Promise<ScoredSamples>>;
  readonly #pairSets = new Map<string, Promise<PairSet>>();
  readonly #runs = new Map<string, Promise<number[]>>();
  #rewardModel: Promise<RewardModelRun> | null = null;
  #finished = 0;

  constructor(
    readonly plan: DemoPlan,
    readonly pool: JobPool,
    private readonly onProgress?: DemoOptions["onProgress"],
  ) {
    const { sft, trainPrompts, sampling, judgeNoise } = plan;
    this.#samples = new Map(
      plan.pairSeeds.map((p) => [
        p,
        quiet(
          pool
            .run({
              kind: "sample",
              id: `sample/${p}`,
              sftDir: sft.dir,
              prompts: trainPrompts,
              ...sampling,
              judgeNoise,
              seed: p,
            })
            .then((s) => {
              this.tick();
              return s;
            }),
        ),
      ]),
    );
  }

  /** Counts one planned job as done (the progress bar's total is every sample job and planned run). */
  tick(): void {
    this.onProgress?.("demo runs", ++this.#finished, this.plan.pairSeeds.length + this.plan.plannedRuns);
  }

  /**
   * The rm pipeline's reward model, trained once: the policy's samples of its own prompts, paired
   * and labelled by the judge; a fifth of the prompts held out for its pairwise accuracy.
   */
  rewardModel(): Promise<RewardModelRun> {
    this.#rewardModel ??= quiet(
      (async () => {
        const { sft, rm } = this.plan;
        if (rm.train)
          await makeRewardModel(rm.dir, sft.dir, rm.prompts, {
            sample: (job) => this.pool.run(job),
            train: (job) => this.pool.run(job),
          });
        const made = readRewardModel(rm.dir);
        if (!made) throw new Error(`${rm.dir}: no reward model (model.safetensors and rm_recipe.json)`);
        const { heldout, ...info } = made;
        const accuracy = await this.pool.run({
          kind: "reward-accuracy",
          id: "reward-accuracy",
          dir: rm.dir,
          pairs: heldout,
        });
        return { ...info, accuracy };
      })(),
    );
    return this.#rewardModel;
  }

  /** The pairs of one pipeline and pair seed: the math and text rules on the judge's scores, or the reward model's. */
  #buildPairs(pipeline: PipelineName, pairSeed: number, samples: ScoredSamples): Promise<Omit<PairSet, "file">> {
    if (pipeline === "text") {
      const built = pipelinePairs(pipeline, samples, pairSeed);
      return Promise.resolve({ ...built, pairs: rescalePairs(built.pairs, this.plan.textScale) });
    }
    if (pipeline === "math") return Promise.resolve(pipelinePairs(pipeline, samples, pairSeed));
    return this.rewardModel().then(async ({ dir }) => {
      const rewards = await this.pool.run({ kind: "reward-score", id: `reward-score/${pairSeed}`, dir, samples });
      const raw = rmPairs(samples, rewards);
      const rawGaps = raw.pairs.map((p) => p.score_chosen - p.score_rejected);
      return { ...raw, pairs: rescalePairs(raw.pairs, this.plan.rm.scale), rawGaps };
    });
  }

  pairSet(pipeline: PipelineName, pairSeed: number): Promise<PairSet> {
    const key = `${pipeline}/${pairSeed}`;
    if (!this.#pairSets.has(key))
      this.#pairSets.set(
        key,
        quiet(
          this.#samples.get(pairSeed)!.then(async (s) => {
            const built = await this.#buildPairs(pipeline, pairSeed, s);
            if (built.pairs.length < 8)
              throw new Error(
                `${pipeline} pipeline, pair seed ${pairSeed}: only ${built.pairs.length} pairs were built; the starting policy is too strong or too weak for this setup`,
              );
            const file = join(this.plan.outDir, `pairs-${pipeline}-seed${pairSeed}.jsonl`);
            writeJsonLinesAtomic(file, built.pairs);
            return { file, ...built };
          }),
        ),
      );
    return this.#pairSets.get(key)!;
  }

  /** Trains one run and resolves to its greedy correctness (0/1 per problem) on `problems`. */
  train(
    pipeline: PipelineName,
    spec: MethodSpec,
    lr: number,
    trainSeed: number,
    pairSeed: number,
    problems: ArithProblem[],
    keepLogs: boolean,
  ): Promise<number[]> {
    const id = runId(pipeline, spec, lr, trainSeed, pairSeed);
    if (!this.#runs.has(id))
      this.#runs.set(
        id,
        quiet(
          this.pairSet(pipeline, pairSeed).then(async ({ file }) => {
            // The rm pipeline's Omni-DPO reads its reward model's scores at its own η.
            const eta =
              pipeline === "rm" && spec.config.pref_loss === "uni_dpo" ? { uni_dpo_qual_eta: this.plan.rm.eta } : {};
            const job: TrainJob = {
              kind: "train",
              id,
              evaluate: problems,
              keepLogs,
              recipe: {
                ...BASE_RECIPE,
                ...spec.config,
                ...eta,
                model_name_or_path: this.plan.sft.dir,
                dataset_mixer: { [file]: 1.0 },
                learning_rate: lr,
                seed: trainSeed,
                output_dir: runDirectory(this.plan, pipeline, spec, lr, trainSeed, pairSeed),
                // The report's per-pair view, for the runs it shows.
                pair_log_samples: keepLogs ? 64 : 0,
                pair_logging_steps: 0.25,
              },
            };
            const r = await this.pool.run(job);
            this.tick();
            return r.correct;
          }),
        ),
      );
    return this.#runs.get(id)!;
  }
}

/** One method's measurements in one pipeline: its chosen learning rate and the reported runs' correctness. */
interface MethodRuns {
  spec: MethodSpec;
  lr: number;
  validation: MethodResult["validation"];
  cells: { t: number; p: number }[];
  /** Per cell, greedy correctness on the held-out problems. */
  corrects: number[][];
}

/**
 * The runs of one pipeline: each method's tuning runs (validation, first pair seed, the tuning
 * seed) pick its learning rate; its reported runs (every training x pair seed) at that rate; the
 * sweep at its own rate and at 2x and 4x DPO's (training seed 0, the plan's sweep seeds).
 */
async function runPipeline(
  jobs: DemoJobs,
  pipeline: PipelineName,
): Promise<{ methods: MethodRuns[]; lrSweep: SweepPoint[] }> {
  const { tuneSeed, pairSeeds, sweepSeeds, trainSeeds, valProblems, testProblems } = jobs.plan;
  const specs = pipelineSpecs(jobs.plan.specs, pipeline);
  const tuned = new Map(
    specs.map((spec) => [
      spec.name,
      Promise.all(
        spec.grid.map((lr) => jobs.train(pipeline, spec, lr, tuneSeed, pairSeeds[0], valProblems, false)),
      ).then((corrects) => {
        const validation = spec.grid.map((learning_rate, i) => ({ learning_rate, accuracy: average(corrects[i]) }));
        return { validation, lr: validation.reduce((a, b) => (b.accuracy > a.accuracy ? b : a)).learning_rate };
      }),
    ]),
  );
  const methods = await Promise.all(
    specs.map(async (spec): Promise<MethodRuns> => {
      const { validation, lr } = await tuned.get(spec.name)!;
      const cells = trainSeeds.flatMap((t) => pairSeeds.map((p) => ({ t, p })));
      const corrects = await Promise.all(
        cells.map(({ t, p }) => jobs.train(pipeline, spec, lr, t, p, testProblems, true)),
      );
      return { spec, lr, validation, cells, corrects };
    }),
  );
  const dpoLr = (await tuned.get("dpo")!).lr;
  const sweepRates = (m: MethodRuns) => {
    // A multiple that is the method's own rate is its reported runs: those planned jobs are done.
    for (const k of LR_MULTIPLES) if (k * dpoLr === m.lr) sweepSeeds.forEach(() => jobs.tick());
    return [m.lr, ...LR_MULTIPLES.map((k) => k * dpoLr)].filter((lr, i, all) => all.indexOf(lr) === i);
  };
  const lrSweep = await Promise.all(
    methods.flatMap((m) =>
      sweepRates(m).map(async (lr): Promise<SweepPoint> => {
        const corrects = await Promise.all(
          sweepSeeds.map((p) => jobs.train(pipeline, m.spec, lr, trainSeeds[0], p, testProblems, lr === m.lr)),
        );
        return {
          name: m.spec.name,
          learning_rate: lr,
          lr_multiple: lr / dpoLr,
          heldout_accuracy: spread(corrects.map(average)),
        };
      }),
    ),
  );
  return { methods, lrSweep };
}

/**
 * One pipeline's result from its runs: every method against DPO and against the start (paired
 * differences), the pairs' label quality per pair seed, the decoupling view, and the reported
 * runs' metrics for the curves.
 */
function analysePipeline(
  plan: DemoPlan,
  pipeline: PipelineName,
  runs: { methods: MethodRuns[]; lrSweep: SweepPoint[] },
  pairSets: PairSet[],
  sftCorrect: number[],
  tokenizer: Tokenizer,
  rewardModel: RewardModelRun | null,
): PipelineResult {
  const { methods } = runs;
  const dpo = methods.find((m) => m.spec.name === "dpo")!;
  const compare = (a: string, b: string, ca: number[][], cb: number[][]): Comparison => {
    const d = pairedDifference(ca, cb);
    return { a, b, ...d, verdict: verdict(d) };
  };
  // With --ablations, full Omni-DPO against each variant without one part: that part's own effect.
  const omni = methods.find((m) => m.spec.name === "omni_dpo");
  const ablated = omni ? methods.filter((m) => m.spec.name.startsWith("omni_dpo_no_")) : [];
  const comparisons = [
    ...methods.filter((m) => m !== dpo).map((m) => compare(m.spec.name, "dpo", m.corrects, dpo.corrects)),
    ...ablated.map((m) => compare("omni_dpo", m.spec.name, omni!.corrects, m.corrects)),
    ...methods.map((m) =>
      compare(
        m.spec.name,
        "sft",
        m.corrects,
        m.corrects.map(() => sftCorrect),
      ),
    ),
  ];
  const data = pairSets.map(({ pairs, stats }, i) => ({
    pair_seed: plan.pairSeeds[i],
    pairs: stats.pairs,
    prompts: stats.prompts,
    identical_dropped: stats.identicalDropped,
    no_pair: stats.noPair,
    correct_share: stats.correctShare,
    labels: labelQuality(pairs),
  }));
  const eta = pipeline === "rm" ? plan.rm.eta : undefined;
  const weights = decouplingView(plan.sft.dir, tokenizer, pairSets[0].pairs, eta);
  return {
    name: pipeline,
    sft_accuracy: spread([average(sftCorrect)]),
    comparisons,
    lr_sweep: runs.lrSweep,
    data,
    weights,
    ...(rewardModel && {
      reward_model: {
        train_pairs: rewardModel.trainPairs,
        heldout_pairs: rewardModel.heldoutPairs,
        heldout_accuracy: rewardModel.accuracy,
        train_seconds: rewardModel.trainSeconds,
        eta: plan.rm.eta,
        scale: plan.rm.scale,
        per_pair_seed: pairSets.map((s, i) => ({
          pair_seed: plan.pairSeeds[i],
          gap: quantiles(s.rawGaps!),
          judge: judgeAgreement(
            s.pairs.map((p, k) => ({ ...p, score_chosen: s.rawGaps![k], score_rejected: 0 })),
            s.judge!,
          ),
        })),
        w_qual: quantiles(weights.map((w) => w.w_qual)),
      },
    }),
    methods: methods.map((m) => ({
      name: m.spec.name,
      label: m.spec.label,
      learning_rate: m.lr,
      validation: m.validation,
      heldout_accuracy: spread(m.corrects.map(average)),
      cells: m.cells.map(({ t, p }, i) => ({ train_seed: t, pair_seed: p, accuracy: average(m.corrects[i]) })),
      curves: plan.pairSeeds.map((p) => {
        const dir = runDirectory(plan, pipeline, m.spec, m.lr, plan.trainSeeds[0], p);
        return {
          name: `${pipeline}: ${m.spec.label} pair seed ${p}`,
          dir,
          rows: MetricsSink.read(join(dir, "metrics.jsonl")),
        };
      }),
    })),
  };
}

/** The settings a result records, so a reader can tell exactly what was run. */
function demoSettings(plan: DemoPlan): Record<string, unknown> {
  return {
    sft: plan.sft.dir,
    difficulty: plan.difficulty,
    sizes: plan.sizes,
    train_seeds: plan.trainSeeds,
    pair_seeds: plan.pairSeeds,
    tune_seed: plan.tuneSeed,
    judge_noise: plan.judgeNoise,
    ...plan.sampling,
    math_rules: { chosen: "highest", rejected: "lowest", margin: 2, min_chosen_score: 6 },
    text_rules: "best vs worst judge score",
    ...(plan.pipelines.includes("rm") && {
      rm_rules: "best vs worst reward-model score",
      reward_model: {
        dir: plan.rm.dir,
        recipe: RM_RECIPE,
        trainer: RM_TRAINER,
        pairs: "best against worst judge score",
        start: "the SFT checkpoint with a fresh score head",
        eta: plan.rm.eta,
        scale: plan.rm.scale,
      },
    }),
    recipe: BASE_RECIPE,
    methods: Object.fromEntries(plan.specs.map((m) => [m.name, { ...m.config, grid: m.grid }])),
    text_scale: plan.textScale,
    lr_multiples: LR_MULTIPLES,
    sweep_pair_seeds: plan.sweepSeeds,
  };
}

/** The demo: plan it, train the start if none is shipped, run every job on a worker pool, analyse each pipeline. */
export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const start = Date.now();
  const plan = planDemo(options);
  const status = options.onStatus ?? (() => {});
  rmSync(join(plan.outDir, "runs"), { recursive: true, force: true });
  mkdirSync(join(plan.outDir, "runs"), { recursive: true });
  singleThreadForTinyModels();
  if (plan.sft.train) {
    status(`no shipped SFT checkpoint; training one (${SFT_RECIPE.saveAtStep} steps)`);
    trainSftModel(plan.sft.dir, (s, t) => options.onProgress?.("SFT", s, t));
  }
  if (plan.pipelines.includes("rm") && plan.rm.train)
    status(`no shipped reward model; training one into ${plan.rm.dir}`);
  const { pipelines, specs, trainSeeds, pairSeeds, sizes, sampling } = plan;
  status(
    `${pipelines.join(", ")} pipeline${pipelines.length > 1 ? "s" : ""}: ${specs.length} methods (the rm pipeline: ` +
      `${pipelineSpecs(specs, "rm").length}), ${trainSeeds.length} training x ${pairSeeds.length} pair seeds, ` +
      `${sizes.train} prompts x ${sampling.samples} samples, ${sizes.val} validation and ${sizes.test} held-out problems; up to ${plan.plannedRuns} training runs`,
  );
  const tokenizer = arithTokenizer();
  const pool = new JobPool(options.jobs);
  try {
    const jobs = new DemoJobs(plan, pool, options.onProgress);
    const sftCorrect = (() => {
      const sft = loadModel(plan.sft.dir);
      try {
        return greedyCorrect(sft, tokenizer, plan.testProblems);
      } finally {
        sft.dispose();
      }
    })();
    const results = await Promise.all(
      pipelines.map(async (pipeline) => {
        const runs = await runPipeline(jobs, pipeline);
        const pairSets = await Promise.all(pairSeeds.map((p) => jobs.pairSet(pipeline, p)));
        const rewardModel = pipeline === "rm" ? await jobs.rewardModel() : null;
        return analysePipeline(plan, pipeline, runs, pairSets, sftCorrect, tokenizer, rewardModel);
      }),
    );
    return {
      pipelines: results,
      outDir: plan.outDir,
      wall_seconds: (Date.now() - start) / 1000,
      settings: demoSettings(plan),
    };
  } finally {
    pool.close();
  }
}

function range(n: number, from: number): number[] {
  return Array.from({ length: n }, (_, i) => from + i);
}

/**
 * w_qual and the starting policy's w_perf for every training pair, as the loss computes them
 * (objectiveInputs, the trainer's function, with the demo's Omni-DPO settings; the starting
 * policy is its own reference): the paper's view that data quality and learning difficulty are
 * different axes.
 */
function decouplingView(sftDir: string, tokenizer: Tokenizer, pairs: Pair[], eta?: number): PipelineResult["weights"] {
  const omni = methodSpecs(false).find((m) => m.name === "omni_dpo")!;
  const o = objectiveFromConfig({
    ...omni.config,
    ...(eta === undefined ? {} : { uni_dpo_qual_eta: eta }),
    beta: BASE_RECIPE.beta,
  });
  const model = loadModel(sftDir);
  try {
    const options = {
      ...TOKENIZE_DEFAULTS,
      maxLength: BASE_RECIPE.max_length,
      maxPromptLength: BASE_RECIPE.max_prompt_length,
    };
    const tokenized = pairs.map((p) => ({
      ...tokenizePair(p, tokenizer, options),
      scoreChosen: p.score_chosen,
      scoreRejected: p.score_rejected,
    }));
    const padTokenId = tokenizer.padTokenId!;
    const weights: { w_qual: number[]; w_perf: number[] } = { w_qual: [], w_perf: [] };
    torch.noGrad(() => {
      for (const batch of batchesOf(tokenized, 64)) {
        torch.tidy(() => {
          const reference = () =>
            pairLogps(model, batch, padTokenId, true, batch.length, undefined, referenceLogpsOptions(o));
          const { metrics } = pairValues(
            objectiveInputs(model, batch, o, { padTokenId, lengthNorm: true, reference }).inputs,
            o,
          );
          for (const k of ["w_qual", "w_perf"] as const) {
            const v = metrics[k];
            weights[k].push(...(typeof v === "number" ? batch.map(() => v) : v)); // a weight switched off is one number
          }
        });
      }
    });
    return pairs.map((p, i) => ({
      w_qual: weights.w_qual[i],
      w_perf: weights.w_perf[i],
      correct_rejected: p.rejected_correct,
      correct_chosen: p.chosen_correct,
    }));
  } finally {
    model.dispose();
  }
}

/** `omni-dpo demo rm`: the shipped reward model remade by its recipe, in this process, from the shipped SFT start. */
export async function remakeRewardModel(dir: string): Promise<RewardModelInfo> {
  singleThreadForTinyModels();
  const plan = planDemo({ outDir: dir, pipeline: "rm", rmDir: join(dir, "none") });
  mkdirSync(dir, { recursive: true });
  const { executeJob } = await import("./runs.js");
  return makeRewardModel(dir, plan.sft.dir, plan.rm.prompts, {
    sample: (job) => executeJob(job) as Promise<ScoredSamples>,
    train: (job) => executeJob(job) as Promise<{ seconds: number }>,
  });
}
