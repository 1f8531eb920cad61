// The preference trainer: data in, aligned model out, for one process or many. It follows the
// Hugging Face trainer's semantics (AdamW or SGD with decay groups, its schedules, gradient
// accumulation, clipping, logging/eval/save by steps or epoch, checkpoints, a final checkpoint,
// its output files, exact resume) and TRL's DPO step (one forward over chosen and rejected
// together, a frozen or precomputed reference, dropout off).
//
// It is composed of two parts it does not itself decide: a parallelism strategy
// (distributed/strategy.ts: one process, DDP, ZeRO-1), which owns every collective, and
// callbacks (callbacks/), which carry everything around the steps: metrics.jsonl, TensorBoard,
// the pair log, early stopping, progress, user code. The loop runs the same steps for any
// number of processes and calls the strategy wherever they must agree. As TRL's DPOTrainer,
// each part of a step is a method a subclass can override (computeLoss, optimizerStep,
// evaluate, log, save, resume, createOptimizer).
import { copyFileSync, existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import { Tokenizer } from "../text/index.js";
import { loadModel, savePretrained } from "../models/auto.js";
import { isAdapterDirectory } from "../models/peft.js";
import { defaultLoraTargets } from "../models/registry.js";
import { attachLora, loraOf, type SettingNames } from "../nn/lora.js";
import type { CausalLM } from "../models/causal-lm.js";
import { holdOut, mixDatasets } from "../data/mixer.js";
import { readPreferenceFile } from "../data/readers.js";
import { DataError, where, type PreferenceRecord } from "../data/records.js";
import { tokenizeRecords, type TokenizedPair } from "../data/tokenize.js";
import { pairValues, preferenceLoss, REFERENCE_LOSSES, requiredInputs } from "../objectives/index.js";
import { fsyncPath, writeJsonAtomic, writingTo } from "../util/files.js";
import { ConfigError, HUB_HINT, type TrainConfig } from "./config.js";
import { plainBackprop, RecomputeTape, type Backprop } from "../nn/recompute.js";
import { batchesOf, pairLogps, type PairVision } from "../logprobs/pairs.js";
import { tokenizeImageRecords } from "../data/image-tokenize.js";
import type { ImagePreferenceRecord } from "../data/image-records.js";
import { freezeVisionParts, imagePairCutting, imageRecordReader, tokenizerSaver, visionOf } from "./vision.js";
import { objectiveInputs, referenceLogpsOptions, type ObjectiveInputs } from "../logprobs/objective-inputs.js";
import { applyOptimizerStep, createOptimizer, epochOrder, resolveSteps, stepGroups } from "./steps.js";
import { syncedReferenceDir } from "./checkpoint.js";
import { CachedReference, LiveReference, precomputeReference, type ReferenceSource } from "./reference.js";
import { assertFinite, MetricAverager, NonFiniteMetricError, type MetricRow } from "./metrics.js";
import {
  cleanOutputDir,
  loadOptimizerState,
  RESUME_STATE,
  readTrainerState,
  restoreRngState,
  rngStateToBase64,
  saveTrainingCheckpoint,
  type BestCheckpoint,
  type TrainerState,
  type TrainOptimizer,
} from "./checkpoint.js";
import {
  hfTrainerState,
  readLogHistory,
  saveMetrics,
  trainMetrics,
  TRAINER_STATE,
  writeModelCard,
  type HfTrainerState,
} from "./hf-outputs.js";
import { packageVersion } from "../util/package-root.js";
import { configRecord, planResume, type ResumePlan } from "./resume.js";
import { checkTrainingVocab } from "./vocab-check.js";
import { RunLock } from "./run-lock.js";
import { lengthNormText } from "./length-norm.js";
import { pairSample } from "./pair-log.js";
import {
  CallbackList,
  EarlyStoppingCallback,
  GenerationEvalCallback,
  ReferenceSyncCallback,
  HooksCallback,
  MetricsFileCallback,
  PairLogCallback,
  TrainerControl,
  trackerCallbacks,
  type CallbackEvent,
  type TrainerCallback,
  type TrainerEvent,
  type TrainerRunState,
} from "./callbacks/index.js";
import type { ParallelStrategy } from "./distributed/strategy.js";
import { strategyFor } from "./distributed/strategies.js";

export interface TrainHooks {
  /** Each logged row (train and eval), as written to metrics.jsonl (a shorthand for a callback's onLog). */
  onLog?: (row: MetricRow) => void;
  /** After each optimizer step: steps done, the total, "loss L lr R" (a shorthand for a callback's onStepEnd). */
  onProgress?: (step: number, total: number, info: string) => void;
  /** Phases before the loop ("tokenizing", "reference log-probs 10/40"...). */
  onStatus?: (message: string) => void;
  /** Things the user should know but that do not stop the run (a resume accepting changed settings); default: onStatus. */
  onWarning?: (message: string) => void;
  /**
   * Checked between optimizer steps (a signal handler's flag): when it returns true on any
   * process, the run checkpoints that step and stops, to be resumed (TrainResult.interrupted).
   */
  shouldStop?: () => boolean;
}

export interface TrainOptions extends TrainHooks {
  /** Called at each point of the loop, after the built-in ones (metrics.jsonl, trackers, the pair log, early stopping). */
  callbacks?: TrainerCallback[];
  /** How this process works with others; default: from the environment (WORLD_SIZE...) and zero_stage. */
  strategy?: ParallelStrategy;
}

export interface TrainResult {
  outputDir: string;
  globalStep: number;
  totalSteps: number;
  /** Stopped by shouldStop (a signal) before the last step, after a checkpoint: rerun to resume. */
  interrupted: boolean;
  /** Ended by a callback (control.shouldTrainingStop: early stopping...) before the planned last step; the model was saved. */
  stoppedEarly: boolean;
  checkpoint: string | null;
  lastTrainRow: MetricRow | null;
  lastEvalRow: MetricRow | null;
  /** output_dir already held this run, finished (its final checkpoint): nothing was trained. */
  alreadyFinished: boolean;
}

export interface PreparedData {
  train: TokenizedPair[];
  eval: TokenizedPair[];
  tokenizer: Tokenizer;
  /** A vision-language model's processor and image bounds (its pairs carry images); null for text. */
  vision: PairVision | null;
}

/** One micro-batch through the policy and the objective. */
export interface MicroBatchOutput {
  /** The batch's mean loss: a scalar tensor, with its graph when grad mode is on. */
  loss: torch.Tensor;
  /** The objective's metrics (plain numbers, the reference's names). */
  metrics: Record<string, number>;
  /** Attention-mask tokens in the batch (for tokens_per_second). */
  tokens: number;
  /** What backward must recompute after loss.backward() (the LM head's chunks, checkpointed layers); absent without grad. */
  recompute?: RecomputeTape | null;
}

/** Reads, validates and tokenises everything before any training (and before any output). */
export async function prepareData(
  config: TrainConfig,
  status?: (m: string) => void,
  warn?: (m: string) => void,
): Promise<PreparedData> {
  status?.("reading data");
  for (const file of [...Object.keys(config.datasetMixer ?? {}), config.evalFile].filter(
    (f): f is string => f !== null,
  )) {
    if (!existsSync(file)) {
      const key =
        file === config.evalFile ? "eval_file" : config.datasetName !== null ? "dataset_name" : "dataset_mixer";
      throw new DataError([
        `${config.source}: key '${key}': ${file}: file not found (if it names a Hugging Face Hub dataset: ${HUB_HINT})`,
      ]);
    }
  }
  // A vision-language model's data are image preference records (TRL's or LLaMA-Factory's format).
  const vision = visionOf(config);
  if (vision) status?.(imagePairCutting(config));
  const imageSizes = new Map<string, { width: number; height: number }>();
  if (!vision && config.dataset !== null) {
    throw new DataError([
      `${config.source}: key 'dataset': dataset_info.json entries are read for image pairs ` +
        `(a vision-language model); ${config.modelNameOrPath} takes no images: give its data in dataset_mixer`,
    ]);
  }
  const read = (vision ? imageRecordReader(imageSizes, config) : readPreferenceFile) as (
    f: string,
  ) => Promise<AnyRecord[]>;
  // The Math recipe's train_data_path is read whole and in order (its data.py); the mixer shuffles.
  const mixed =
    config.trainDataPath !== null
      ? await read(config.trainDataPath)
      : await mixDatasets(config.datasetMixer!, config.seed, read);
  let trainRecords: AnyRecord[] = mixed;
  let evalRecords: AnyRecord[] = [];
  const evalFile = config.evalFile ?? config.evalDataPath;
  if (evalFile) evalRecords = await read(evalFile);
  else if (config.testSplitSize > 0)
    ({ train: trainRecords, test: evalRecords } = holdOut(mixed, config.testSplitSize));
  if (config.doEval === false) evalRecords = [];
  if (config.maxSamples !== null) {
    trainRecords = trainRecords.slice(0, config.maxSamples);
    evalRecords = evalRecords.slice(0, config.maxSamples);
  }
  // The Math data.py's order: sanity_check's first 100, the EOT token, then max_training_samples.
  if (config.sanityCheck) {
    trainRecords = trainRecords.slice(0, 100);
    evalRecords = evalRecords.slice(0, 100);
  }
  if (config.eotToken) {
    trainRecords = trainRecords.map((r) => withEotToken(r, config.eotToken));
    evalRecords = evalRecords.map((r) => withEotToken(r, config.eotToken));
  }
  if (config.maxTrainingSamples > 0) {
    if (config.maxTrainingSamples > trainRecords.length) {
      throw new DataError([
        `max_training_samples: ${config.maxTrainingSamples} asked for, but the training data hold ${trainRecords.length} records`,
      ]);
    }
    trainRecords = trainRecords.slice(0, config.maxTrainingSamples);
  }
  checkScores([...trainRecords, ...evalRecords], config);
  status?.("tokenizing");
  if (vision) {
    // LLaMA-Factory's qwen2_vl template and pairwise processor, cut at max_length (its cutoff_len).
    const all = tokenizeImageRecords(
      [...trainRecords, ...evalRecords] as ImagePreferenceRecord[],
      vision.processor,
      vision.options,
      imageSizes,
    );
    const tokenizer = vision.processor.tokenizer;
    if (tokenizer.eosTokenId === undefined)
      throw new DataError([`${config.modelNameOrPath}: the tokenizer has no eos_token`]);
    return { train: all.slice(0, trainRecords.length), eval: all.slice(trainRecords.length), tokenizer, vision };
  }
  const tokenizer = Tokenizer.fromPretrainedSync(config.modelNameOrPath);
  if (tokenizer.eosTokenId === undefined)
    throw new DataError([`${config.modelNameOrPath}: the tokenizer has no eos_token`]);
  const options = {
    maxLength: config.maxLength,
    maxPromptLength: config.maxPromptLength,
    truncationMode: config.truncationMode,
    maxCompletionLength: config.maxCompletionLength ?? undefined,
    chatTemplate: config.chatTemplate ?? undefined,
    chatTemplateSource: `${config.source}: chat_template`,
    chatRendering: config.chatRendering,
    onWarning: warn,
  };
  // One pass over both splits: one chat_rendering warning for the run, not one per split.
  const all = tokenizeRecords([...trainRecords, ...evalRecords] as PreferenceRecord[], tokenizer, options);
  return { train: all.slice(0, trainRecords.length), eval: all.slice(trainRecords.length), tokenizer, vision: null };
}

/** A record of either kind: text (PreferenceRecord) or with images (ImagePreferenceRecord). */
type AnyRecord = PreferenceRecord | ImagePreferenceRecord;

/** The Math data.py's eot_token: appended to each text answer not already ending with it (conversations end their turns through the template). */
function withEotToken(r: AnyRecord, eot: string): AnyRecord {
  if ("images" in r)
    throw new DataError([
      `${where(r.source)}: eot_token applies to text records; image records end turns through the template`,
    ]);
  const add = (t: PreferenceRecord["chosen"], field: string) => {
    if (typeof t !== "string")
      throw new DataError([
        `${where(r.source)}: field '${field}': eot_token applies to text answers; this record is a conversation`,
      ]);
    return t.endsWith(eot) ? t : t + eot;
  };
  return { ...r, chosen: add(r.chosen, "chosen"), rejected: add(r.rejected, "rejected") };
}

function checkScores(records: AnyRecord[], config: TrainConfig): void {
  const needed = requiredInputs(config.objective);
  if (!needed.has("scoreChosen")) return;
  const missing = records.filter((r) => r.scoreChosen === undefined || r.scoreRejected === undefined);
  if (missing.length) {
    const field = (r: AnyRecord) => (r.scoreChosen === undefined ? "score_chosen" : "score_rejected");
    throw new DataError(
      missing
        .slice(0, 20)
        .map((r) => `${where(r.source)}: field '${field(r)}': missing, and ${needed.get("scoreChosen")} needs it`),
      missing.length,
    );
  }
}

/** The first line a run prints: its objective and how sequence log-probs are taken, and why. */
export function runHeader(config: TrainConfig): string {
  const beta = (config.objective as { beta?: number }).beta;
  const lengthNorm = lengthNormText({ value: config.dpoLengthNorm, reason: config.dpoLengthNormReason });
  return `objective: ${config.objective.lossType}${beta === undefined ? "" : ` (beta ${beta})`}; ${lengthNorm}`;
}

/** logging/eval/save steps as a step count: a fraction of the run in (0, 1) rounds up, as transformers does. */
export { resolveSteps } from "./steps.js";

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const round = (x: number) => Math.round(x * 1e4) / 1e4;
/** The recipe's names of the LoRA settings, for errors. */
export const LORA_KEYS: SettingNames = {
  r: "key 'lora_r'",
  alpha: "key 'lora_alpha'",
  dropout: "key 'lora_dropout'",
  targetModules: "key 'lora_target_modules'",
  modulesToSave: "key 'lora_modules_to_save'",
  useRslora: "key 'use_rslora'",
};

export class PreferenceTrainer {
  data!: PreparedData;
  padTokenId = 0;
  policy!: CausalLM;
  optimizer!: TrainOptimizer;
  scheduler!: torch.LRScheduler;
  /** How this process works with the others (one process: SingleProcess). */
  readonly strategy: ParallelStrategy;
  /** Reference log-probs per split; null for losses without a reference (SimPO). */
  reference: { train: ReferenceSource; eval: ReferenceSource } | null = null;
  /** The live reference model, when the reference is not precomputed. */
  referenceModel: CausalLM | null = null;
  totalSteps = 0;
  batchesPerEpoch = 0;
  /** Optimizer steps done, and where the data resume: epoch index and next micro-batch in it. */
  globalStep = 0;
  epochIndex = 0;
  nextBatch = 0;
  /** Epochs done as a fraction, as the HF trainer logs it. */
  epoch = 0;
  lastTrainRow: MetricRow | null = null;
  lastEvalRow: MetricRow | null = null;
  /** Every row logged so far (transformers' log_history): a resumed run's starts with its checkpoint's. */
  logHistory: MetricRow[] = [];
  /** The last checkpoint written (or resumed from). */
  checkpoint: string | null = null;
  /** The checkpoint this session resumed from. */
  resumedFrom: string | null = null;
  /** The best checkpoint so far by metric_for_best_model, tracked when that or load_best_model_at_end is set. */
  best: BestCheckpoint | null = null;
  /** Step intervals resolved against the run's length (null: not by steps). */
  intervals: { logging: number | null; eval: number | null; save: number | null } = {
    logging: null,
    eval: null,
    save: null,
  };
  /** What callbacks ask of the loop. */
  readonly control = new TrainerControl();
  /** The last train row's interval: this process's attention-mask tokens and training seconds (the strategy combines the processes'). */
  lastInterval = { tokens: 0, seconds: 0 };
  #callbacks = new CallbackList([]);
  /** The policy's trainable parameters (all, or the LoRA adapters), in registration order. */
  #trainable: torch.Tensor[] = [];
  readonly #averager = new MetricAverager();
  #tokensSinceLog = 0;
  /** When the current logging interval began (performance.now(), ms), moved on by whatever is not training (evaluation, checkpoints, callbacks). */
  #timeSinceLog = performance.now();
  /** This session's summed step losses and steps (train_loss), and when it started training. */
  #lossSum = 0;
  #stepsThisSession = 0;
  #startedAt = Date.now();

  constructor(
    readonly config: TrainConfig,
    readonly hooks: TrainOptions = {},
  ) {
    this.strategy = hooks.strategy ?? strategyFor(config);
  }

  /** Runs the whole training: data, lock, resume point, models, the loop, the final model and checkpoint. */
  async train(): Promise<TrainResult> {
    this.strategy.begin(this.config, (m) => this.hooks.onStatus?.(m));
    try {
      return await this.#run();
    } finally {
      this.strategy.end();
    }
  }

  async #run(): Promise<TrainResult> {
    const { config, hooks, strategy } = this;
    hooks.onStatus?.(runHeader(config));
    this.data = await prepareData(config, hooks.onStatus, hooks.onWarning);
    if (this.data.train.length === 0) throw new DataError(["no training pairs after the held-out split"]);
    // Early stopping on a generation-eval metric (eval_gen_*) watches eval_generation_file, not eval pairs.
    const watched = config.metricForBestModel ?? "loss";
    const onGeneration = /^(eval_)?gen_/.test(watched);
    if (config.earlyStoppingPatience !== null && onGeneration && config.evalGenerationFile === null) {
      throw new ConfigError(
        `${config.source}: key 'early_stopping_patience': metric_for_best_model ${watched} comes from ` +
          "generation eval, and this run has no eval_generation_file",
      );
    }
    if (config.earlyStoppingPatience !== null && !onGeneration && this.data.eval.length === 0) {
      throw new DataError([
        `${config.source}: key 'early_stopping_patience': early stopping watches the evaluation, and this run has no eval pairs ` +
          "(set eval_data_path, or test_split_size with dataset_mixer)",
      ]);
    }
    this.padTokenId = config.paddingValue ?? this.data.tokenizer.padTokenId ?? this.data.tokenizer.eosTokenId!;
    checkTrainingVocab(config, this.data, this.padTokenId);
    this.batchesPerEpoch = this.epochBatches(0).length;
    const updatesPerEpoch = Math.ceil(this.batchesPerEpoch / config.gradientAccumulationSteps);
    this.totalSteps =
      config.maxSteps > 0 ? config.maxSteps : Math.max(1, Math.ceil(config.numTrainEpochs * updatesPerEpoch));

    this.checkLoadBest();
    const lock = this.openOutputDir();
    try {
      const plan = this.planRun();
      if (plan.finished) return this.#finishedRun(plan);

      const device = strategy.device(config);
      torch.manualSeed(config.seed);
      this.setUpReference(device, plan.dir);
      // Dropout stays off in the policy, as TRL's disable_dropout does by default.
      this.policy = this.loadPolicy(plan.dir, device);
      this.#trainable = this.policy.parameters().filter((p) => p.requiresGrad);
      this.optimizer = this.createOptimizer();
      this.scheduler = new torch.LRScheduler(this.optimizer, {
        type: config.lrSchedulerType,
        totalSteps: this.totalSteps,
        warmupSteps: config.warmupSteps,
        warmupRatio: config.warmupRatio,
        baseLr: config.learningRate,
        kwargs: (config.lrSchedulerKwargs as Record<string, unknown> | null) ?? {},
      });
      this.intervals = {
        logging: config.loggingStrategy === "steps" ? resolveSteps(config.loggingSteps, this.totalSteps) : null,
        eval: resolveSteps(config.evalSteps, this.totalSteps),
        save: resolveSteps(config.saveSteps, this.totalSteps),
      };
      this.#callbacks = new CallbackList([...this.builtinCallbacks(), ...(hooks.callbacks ?? [])]);
      if (plan.dir) this.resume(plan.dir, plan.state!);
      this.#call("onTrainBegin");

      this.#startedAt = Date.now();
      const end = await this.#loop();
      if (end !== "interrupted") {
        const weights = this.strategy.gatherWeights();
        try {
          await this.saveFinalModel();
        } finally {
          weights.release();
        }
        // Last, as the HF trainer's end-of-run save: its presence means the run finished and
        // output_dir holds its model, so a rerun says so instead of redoing the tail.
        if (config.saveStrategy !== "no") await this.save();
      }
      this.#call("onTrainEnd");
      return this.#result(end === "interrupted", end === "stopped", false);
    } finally {
      try {
        this.#callbacks.close();
      } finally {
        this.optimizer?.dispose();
        this.policy?.dispose();
        this.referenceModel?.dispose();
        lock.release();
      }
    }
  }

  /**
   * The callbacks every run has, before the caller's: metrics.jsonl, the trackers report_to
   * names, the pair log, early stopping when early_stopping_patience is set, and the hooks.
   */
  builtinCallbacks(): TrainerCallback[] {
    const { config } = this;
    const header =
      config.pairLogSamples > 0
        ? {
            pair_log: 1 as const,
            ids: pairSample(this.data.train.length, config.pairLogSamples, config.seed),
            loss: this.lossName(),
            total_steps: this.totalSteps,
          }
        : null;
    const pairSteps = resolveSteps(config.pairLoggingSteps ?? config.loggingSteps, this.totalSteps);
    const early = EarlyStoppingCallback.fromConfig(config);
    const generation = GenerationEvalCallback.fromConfig(config);
    const sync =
      config.syncRefModel && this.referenceModel
        ? [new ReferenceSyncCallback(this.referenceModel, config.refModelMixupAlpha, config.refModelSyncSteps)]
        : [];
    return [
      ...sync,
      new MetricsFileCallback(config.outputDir),
      ...trackerCallbacks(config),
      new PairLogCallback(
        config.outputDir,
        header,
        pairSteps,
        (ids) => this.pairValues(ids),
        this.strategy.collectiveForward,
      ),
      ...(early ? [early] : []),
      ...(generation ? [generation] : []),
      new HooksCallback(this.hooks),
    ];
  }

  /** load_best_model_at_end's needs, as transformers checks them: eval data, and an evaluation at every checkpoint. */
  checkLoadBest(): void {
    const { config } = this;
    if (!config.loadBestModelAtEnd) return;
    const fail = (why: string) => {
      throw new ConfigError(`${config.source}: key 'load_best_model_at_end': ${why}`);
    };
    const metric = this.bestMetric()!.name;
    const saveStrategy = config.saveStrategy ?? "steps";
    const saveSteps = resolveSteps(config.saveSteps, this.totalSteps);
    // A generation-eval metric: its own steps must fall on every checkpoint.
    if (metric.startsWith("eval_gen_")) {
      if (config.evalGenerationFile === null)
        fail(`${metric} comes from generation eval, and this run has no eval_generation_file`);
      const genSteps = resolveSteps(config.evalGenerationSteps ?? config.evalSteps, this.totalSteps);
      if (saveStrategy !== "steps" || saveSteps === null || genSteps === null || saveSteps % genSteps !== 0)
        fail(
          `checkpoints must be evaluated: save_steps (${saveSteps ?? "unset"}) must be a multiple of ` +
            `eval_generation_steps (${genSteps ?? "unset"})`,
        );
      return;
    }
    if (this.data.eval.length === 0) fail("the best model is chosen by its evaluation, and this run has no eval pairs");
    const evalStrategy =
      config.evalStrategy ?? config.evaluationStrategy ?? (config.evalSteps !== null ? "steps" : "no");
    if (evalStrategy !== saveStrategy) {
      fail(`checkpoints must be evaluated: save_strategy (${saveStrategy}) must equal eval_strategy (${evalStrategy})`);
    }
    const evalSteps = resolveSteps(config.evalSteps, this.totalSteps);
    if (saveStrategy === "steps" && evalSteps !== null && saveSteps !== null && saveSteps % evalSteps !== 0) {
      fail(`checkpoints must be evaluated: save_steps (${saveSteps}) must be a multiple of eval_steps (${evalSteps})`);
    }
  }

  /** Holds output_dir for this run (its lock) and clears what an interrupted run left there: the main process's work; the others wait. */
  openOutputDir(): { release(): void } {
    const lock = this.strategy.isMainProcess ? this.#lockOutputDir() : { release() {} };
    this.strategy.barrier();
    return lock;
  }

  #lockOutputDir(): { release(): void } {
    const { config, hooks } = this;
    const lock = RunLock.acquire(config.outputDir, hooks.onStatus);
    try {
      const leftovers = cleanOutputDir(config.outputDir);
      if (leftovers.length)
        hooks.onStatus?.(`removed what an interrupted run left in ${config.outputDir}: ${leftovers.join(", ")}`);
    } catch (e) {
      lock.release();
      throw e;
    }
    return lock;
  }

  /** Where the run starts: afresh, from a checkpoint, or nowhere (output_dir holds it finished). The main process plans (it may delete checkpoints); the others follow. */
  planRun(): ResumePlan {
    // The main process plans; a plan it refuses (a damaged checkpoint, a missing
    // resume_from_checkpoint) is shared like a plan, so every rank stops with its reason instead
    // of waiting for a plan that never comes.
    let mine: ResumePlan | null = null;
    let refusal: unknown = null;
    if (this.strategy.isMainProcess) {
      try {
        mine = planResume(this.config, { trainPairs: this.data.train.length, totalSteps: this.totalSteps }, this.hooks);
      } catch (e) {
        refusal = e;
      }
    }
    const shared = JSON.parse(
      this.strategy.fromMain(
        "plan",
        !this.strategy.isMainProcess
          ? null
          : JSON.stringify(
              refusal !== null
                ? {
                    refused: refusal instanceof Error ? refusal.message : String(refusal),
                    config: refusal instanceof ConfigError,
                  }
                : { dir: mine!.dir, finished: mine!.finished },
            ),
      ),
    );
    if (refusal !== null) throw refusal;
    if (shared.refused !== undefined) {
      const message = `the main process refused to start the run: ${shared.refused}`;
      throw shared.config ? new ConfigError(message) : new Error(message);
    }
    return (
      mine ?? { dir: shared.dir, finished: shared.finished, state: shared.dir ? readTrainerState(shared.dir) : null }
    );
  }

  /** Epoch `epochIndex`'s order of the training pairs (a shuffle seeded by seed + epoch). */
  epochOrder(epochIndex: number): number[] {
    return epochOrder(this.data.train.length, this.config.seed, epochIndex);
  }

  /** This process's micro-batches of epoch `epochIndex`, as training-pair indices: its share of the order in batches of per_device_train_batch_size. */
  epochBatches(epochIndex: number): number[][] {
    return batchesOf(this.strategy.shardEpoch(this.epochOrder(epochIndex)), this.config.perDeviceTrainBatchSize);
  }

  /**
   * The policy: the checkpoint being resumed, else model_name_or_path; with use_peft, LoRA
   * adapters on its frozen weights (a resumed LoRA checkpoint is an adapter directory and
   * brings its own); the same on every process.
   */
  loadPolicy(checkpoint: string | null, device: torch.Device): CausalLM {
    const { config } = this;
    const model = loadModel(checkpoint ?? config.modelNameOrPath, {
      device,
      dtype: config.torchDtype ?? "float32",
    }).eval() as CausalLM;
    if (config.usePeft && !loraOf(model)) {
      try {
        attachLora(
          model,
          {
            r: config.loraR,
            alpha: config.loraAlpha,
            dropout: config.loraDropout,
            targetModules:
              (config.loraTargetModules as string[] | string | null) ??
              defaultLoraTargets(model, "key 'lora_target_modules'"),
            modulesToSave: (config.loraModulesToSave as string[] | null) ?? [],
            useRslora: config.useRslora,
          },
          config.source,
          LORA_KEYS,
        );
      } catch (e) {
        model.dispose();
        throw e;
      }
    }
    // LLaMA-Factory's defaults for a vision-language model: the vision tower (and projector) stay fixed.
    const frozen = freezeVisionParts(model, config);
    if (frozen.length)
      this.hooks.onStatus?.(
        `vision: ${frozen.length} parameters frozen (freeze_vision_tower, freeze_multi_modal_projector)`,
      );
    this.strategy.prepareModel(model, config.seed);
    return model;
  }

  /** The reference: precomputed once (only the policy stays in memory), a live frozen model, or with LoRA the policy with its adapters off. */
  setUpReference(device: torch.Device, checkpoint: string | null = null): void {
    const { config, data, hooks } = this;
    if (!REFERENCE_LOSSES.has(config.objective.lossType)) return;
    if (config.referenceFree) {
      // TRL's reference_free: a uniform reference, every log-prob 0; no model is loaded.
      const zeros: ReferenceSource = {
        logps: (pairs) => ({ chosen: pairs.map(() => 0), rejected: pairs.map(() => 0) }),
      };
      this.reference = { train: zeros, eval: zeros };
      return;
    }
    const { ldAlpha } = referenceLogpsOptions(config.objective);
    if (config.usePeft && config.refModel === null && !config.precomputeRefLogProbs) {
      // As TRL with a PEFT model and no ref_model: the same network with its adapters off, so
      // the base weights are in memory once. Read at each call: the policy is loaded after this.
      const disabled: ReferenceSource = {
        logps: (pairs) =>
          loraOf(this.policy)!.withAdaptersDisabled(() =>
            pairLogps(this.policy, pairs, this.padTokenId, config.dpoLengthNorm, Math.max(1, pairs.length), undefined, {
              ldAlpha,
              vision: data.vision,
            }),
          ),
      };
      this.reference = { train: disabled, eval: disabled };
      return;
    }
    const referenceDir = config.refModel ?? config.modelNameOrPath;
    const dtype = config.torchDtype ?? "float32";
    if (config.precomputeRefLogProbs) {
      // Values differ with the weights' dtype and autocast, which the cache key does not cover:
      // other precisions cache in a directory of their own (float32's stays where it was).
      const precision = (split: "train" | "eval") =>
        [dtype === "float32" ? "" : dtype, this.mixedPrecision(split) ? "autocast-bf16" : ""].filter(Boolean).join("-");
      const compute = (pairs: TokenizedPair[], label: "train" | "eval") =>
        this.withMixedPrecision(label, device, () =>
          precomputeReference({
            pairs,
            modelDir: referenceDir,
            cacheDir: join(config.outputDir, "ref_logps_cache", precision(label)),
            lengthNorm: config.dpoLengthNorm,
            ldAlpha,
            batchSize: config.precomputeRefBatchSize ?? config.perDeviceEvalBatchSize,
            padTokenId: this.padTokenId,
            loadModel: () => loadModel(referenceDir, { device, dtype }),
            onProgress: (done, total) => hooks.onStatus?.(`reference log-probs (${label}) ${done}/${total}`),
            sharding: this.strategy.referenceSharding(),
            onNotice: hooks.onWarning ?? hooks.onStatus,
            vision: data.vision,
          }),
        );
      const train = compute(data.train, "train");
      const evalValues = data.eval.length ? compute(data.eval, "eval") : null;
      hooks.onStatus?.(`reference log-probs ${train.cached ? "read from" : "cached in"} ${train.file}`);
      this.reference = {
        train: new CachedReference(train.values),
        eval: new CachedReference(evalValues?.values ?? { chosen: [], rejected: [] }),
      };
    } else {
      // TR-DPO's reference moves with the policy: a resumed run goes on from the checkpoint's.
      const synced = config.syncRefModel && checkpoint !== null ? syncedReferenceDir(checkpoint) : referenceDir;
      this.referenceModel = loadModel(synced, { device, dtype }).requiresGrad_(false).eval() as CausalLM;
      const live = new LiveReference(this.referenceModel, this.padTokenId, config.dpoLengthNorm, ldAlpha, data.vision);
      this.reference = { train: live, eval: live };
    }
  }

  /** Whether `split`'s forwards run under bf16 autocast: bf16 (training and evaluation, as the HF trainer) or bf16_full_eval (evaluation). */
  mixedPrecision(split: "train" | "eval"): boolean {
    return this.config.bf16 || (split === "eval" && this.config.bf16FullEval);
  }

  /** Runs `fn` (forwards, not backward: that follows the forward's dtypes) under bf16 autocast when mixedPrecision(split). */
  withMixedPrecision<T>(split: "train" | "eval", device: torch.Device, fn: () => T): T {
    return this.mixedPrecision(split) ? torch.autocast("bfloat16", fn, { device }) : fn();
  }

  /** The optimizer `optim` names over the policy's trainable parameters (steps.ts), as the strategy keeps it (ZeRO-1 shards its state). */
  createOptimizer(): TrainOptimizer {
    return this.strategy.wrapOptimizer(createOptimizer(this.policy, this.config), (m) => this.hooks.onStatus?.(m));
  }

  /** One micro-batch: the policy's forward over chosen and rejected together, the reference's log-probs, the loss and its metrics. */
  computeLoss(pairs: TokenizedPair[], indices: number[], split: "train" | "eval"): MicroBatchOutput {
    // Under grad the policy's forward records what backward recomputes (the LM head's chunks,
    // and with gradient_checkpointing every decoder layer); trainingStep runs it after
    // loss.backward(). Evaluation (no grad) needs no tape.
    const recompute = torch.isGradEnabled() ? new RecomputeTape() : null;
    try {
      const { inputs, tokens } = this.lossInputs(pairs, indices, split, recompute);
      const result = preferenceLoss(inputs, this.config.objective);
      return { loss: result.loss, metrics: result.metrics as Record<string, number>, tokens, recompute };
    } catch (e) {
      recompute?.dispose();
      throw e;
    }
  }

  /** The objective's inputs for a micro-batch of `split` (objectiveInputs with this run's policy, reference and settings). */
  lossInputs(
    pairs: TokenizedPair[],
    indices: number[],
    split: "train" | "eval",
    recompute: RecomputeTape | null,
  ): ObjectiveInputs {
    return objectiveInputs(this.policy, pairs, this.config.objective, {
      padTokenId: this.padTokenId,
      lengthNorm: this.config.dpoLengthNorm,
      reference: () => this.reference?.[split].logps(pairs, indices) ?? null,
      recompute,
      gradientCheckpointing: this.config.gradientCheckpointing,
      vision: this.data.vision,
    });
  }

  /** Training pairs `ids` through the policy (no gradient): each pair's margin and the loss's per-pair values (the pair log's). */
  pairValues(ids: number[]): { margins: number[]; metrics: Record<string, number[] | number> } {
    const margins: number[] = [];
    const metrics: Record<string, number[] | number> = {};
    torch.noGrad(() => {
      for (const indices of batchesOf(ids, this.config.perDeviceEvalBatchSize)) {
        const v = torch.tidy(() =>
          this.withMixedPrecision("train", this.policy.device, () =>
            pairValues(
              this.lossInputs(
                indices.map((i) => this.data.train[i]),
                indices,
                "train",
                null,
              ).inputs,
              this.config.objective,
            ),
          ),
        );
        margins.push(...v.margins);
        for (const [k, x] of Object.entries(v.metrics))
          metrics[k] = typeof x === "number" ? x : [...((metrics[k] as number[] | undefined) ?? []), ...x];
      }
    });
    return { margins, metrics };
  }

  /**
   * One optimizer step over up to gradient_accumulation_steps micro-batches (fewer at the end
   * of an epoch): each micro-batch's loss is scaled by 1/n and backpropagated (the last as the
   * strategy says: DDP starts its all-reduce during it), then optimizerStep. Returns the step's
   * mean loss. A NaN or infinite loss or metric is an error naming the step and the metric,
   * before the weights change.
   */
  trainingStep(group: number[][]): number {
    const step = this.globalStep + 1;
    let loss = 0;
    try {
      for (const [k, indices] of group.entries()) {
        const r = torch.tidy(() => {
          const out = this.withMixedPrecision("train", this.policy.device, () =>
            this.computeLoss(
              indices.map((i) => this.data.train[i]),
              indices,
              "train",
            ),
          );
          try {
            const last = k === group.length - 1;
            this.backward(
              out,
              1 / group.length,
              last ? this.strategy.lastBackprop(this.#trainable) : this.strategy.accumulateBackprop(this.#trainable),
            );
          } finally {
            out.recompute?.dispose();
          }
          return { loss: out.loss.item(), metrics: out.metrics, tokens: out.tokens };
        });
        assertFinite({ loss: r.loss, ...r.metrics }, `step ${step}`);
        loss += r.loss / group.length;
        this.#averager.add(r.metrics);
        this.#tokensSinceLog += r.tokens;
      }
      const { gradNorm } = this.optimizerStep();
      this.globalStep = step;
      this.#averager.add({ loss, grad_norm: gradNorm });
      this.#lossSum += loss;
      this.#stepsThisSession += 1;
      return loss;
    } catch (e) {
      if (e instanceof NonFiniteMetricError) throw e;
      throw new Error(`step ${step}: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Backpropagates a micro-batch's loss x `scale` through `backprop`, then its recomputed
   * segments (checkpointed layers, LM-head chunks: their forward runs again here, under the
   * same precision as the first).
   */
  backward(out: MicroBatchOutput, scale: number, backprop: Backprop = plainBackprop): void {
    const loss = out.loss.mul(scale);
    backprop(loss, null, out.recompute?.inputsBefore() ?? []);
    this.withMixedPrecision("train", this.policy.device, () => out.recompute?.backward(backprop));
  }

  /** Averages the gradients over processes, then clips them, steps the optimizer, zeroes the gradients and advances the schedule (steps.ts). Returns the pre-clip norm and the step's learning rate. */
  optimizerStep(): { gradNorm: number; learningRate: number } {
    this.strategy.syncGradients(this.#trainable);
    return applyOptimizerStep(
      this.policy.parameters(),
      this.optimizer,
      this.scheduler,
      this.config.maxGradNorm,
      this.globalStep + 1,
      (params, maxNorm) => this.strategy.clipGradients(params, maxNorm),
    );
  }

  /** Loss and metrics over the eval split (each process its share), averaged per pair, as an `eval_`-prefixed row. */
  evaluate(): MetricRow {
    const sums: Record<string, number> = {};
    let n = 0;
    torch.noGrad(() => {
      for (const indices of batchesOf(
        this.strategy.shardEval(this.data.eval.map((_, i) => i)),
        this.config.perDeviceEvalBatchSize,
      )) {
        const r = torch.tidy(() => {
          const out = this.withMixedPrecision("eval", this.policy.device, () =>
            this.computeLoss(
              indices.map((i) => this.data.eval[i]),
              indices,
              "eval",
            ),
          );
          return { loss: out.loss.item(), ...out.metrics };
        });
        assertFinite(r, `evaluation at step ${this.globalStep}`);
        for (const [k, v] of Object.entries(r)) sums[k] = (sums[k] ?? 0) + v * indices.length;
        n += indices.length;
      }
    });
    const all = this.strategy.reduceEvalSums(sums, n);
    return {
      step: this.globalStep,
      epoch: round(this.epoch),
      ...Object.fromEntries(Object.entries(all.sums).map(([k, v]) => [`eval_${k}`, v / all.n])),
    };
  }

  /**
   * The callbacks' evaluationSums at this step, combined over the processes (each gave its share),
   * as `eval_`-prefixed means; null when none evaluates now. Every process asks at the same steps.
   */
  async #callbackEvaluations(): Promise<MetricRow | null> {
    const row: MetricRow = {};
    let any = false;
    for (const callback of this.#callbacks.callbacks) {
      const mine = await callback.evaluationSums?.(this.#event());
      if (!mine) continue;
      any = true;
      const all = this.strategy.reduceEvalSums(mine.sums, mine.n);
      for (const [k, v] of Object.entries(all.sums)) row[`eval_${k}`] = v / Math.max(all.n, 1);
    }
    return any ? row : null;
  }

  /** Records a row (the run's, on every process) in the log history and hands it to the callbacks' onLog (metrics.jsonl, trackers...). */
  log(row: MetricRow): void {
    this.logHistory.push(row);
    this.#call("onLog", { metrics: row });
  }

  /** Writes a checkpoint of the current step (rotating old ones; the main process writes, every process takes part) and returns its directory. */
  async save(): Promise<string> {
    const gathered = this.strategy.gatherCheckpoint(this.optimizer);
    try {
      if (this.strategy.isMainProcess) {
        const state: TrainerState = {
          ...this.trainerState(),
          ...(gathered.rngStates ? { rngStates: gathered.rngStates } : {}),
        };
        this.#noteBest(join(this.config.outputDir, `checkpoint-${this.globalStep}`));
        this.checkpoint = await saveTrainingCheckpoint(
          this.config.outputDir,
          {
            model: this.policy,
            optimizer: this.optimizer,
            tokenizer: this.tokenizerSaver(),
            state,
            hfState: this.hfState(this.logHistory),
            baseModelNameOrPath: this.adapterBase(),
            saveModel: (d) => this.saveModel(d),
            syncedReference: this.config.syncRefModel ? (this.referenceModel ?? undefined) : undefined,
          },
          this.config.saveTotalLimit,
          this.best?.checkpoint ?? null,
        );
      } else {
        this.checkpoint = `${this.config.outputDir}/checkpoint-${this.globalStep}`;
      }
    } finally {
      gathered.release();
    }
    // The others wait here while the main process writes (not in the next step, whose time it is not).
    this.strategy.barrier();
    this.#call("onSave", { checkpoint: this.checkpoint });
    return this.checkpoint;
  }

  /** The eval metric best_model tracking compares (metric_for_best_model, eval_-prefixed), and its direction. */
  bestMetric(): { name: string; greaterIsBetter: boolean } | null {
    const { config } = this;
    if (!config.loadBestModelAtEnd && config.metricForBestModel === null) return null;
    const given = config.metricForBestModel ?? "loss";
    const name = given.startsWith("eval_") ? given : `eval_${given}`;
    return { name, greaterIsBetter: config.greaterIsBetter ?? name !== "eval_loss" };
  }

  /** Before checkpoint `dir` is written: when this step was evaluated and beats the best, it is the best (transformers). */
  #noteBest(dir: string): void {
    const metric = this.bestMetric();
    const row = this.lastEvalRow;
    if (!metric || !row || row.step !== this.globalStep) return;
    if (!(metric.name in row)) {
      const known = Object.keys(row)
        .filter((k) => k.startsWith("eval_"))
        .map((k) => k.slice(5));
      throw new Error(
        `${this.config.source}: key 'metric_for_best_model': ${metric.name.slice(5)} is not an evaluation metric; ` +
          `the evaluation logs ${known.join(", ")}`,
      );
    }
    const value = Number(row[metric.name]);
    const better = this.best === null || (metric.greaterIsBetter ? value > this.best.metric : value < this.best.metric);
    if (better) this.best = { checkpoint: dir, metric: value, step: this.globalStep };
  }

  /** transformers' TrainerState now, with `logHistory` (the rows logged so far, and at the end the train summary). */
  hfState(logHistory: MetricRow[]): HfTrainerState {
    const c = this.config;
    // transformers keeps the interval arguments as given when not resolved by steps (500 logging, None -> logging_steps for eval).
    const loggingSteps = this.intervals.logging ?? 500;
    return hfTrainerState({
      globalStep: this.globalStep,
      epoch: this.epoch,
      maxSteps: this.totalSteps,
      numTrainEpochs: Math.ceil(this.totalSteps / Math.ceil(this.batchesPerEpoch / c.gradientAccumulationSteps)),
      loggingSteps,
      evalSteps: this.intervals.eval ?? loggingSteps,
      saveSteps: this.intervals.save ?? 500,
      trainBatchSize: c.perDeviceTrainBatchSize,
      logHistory,
      finished: this.globalStep >= this.totalSteps,
      best: this.best,
    });
  }

  /** Continues from a checkpoint: optimizer, schedule, RNG, step, data position and log history (later rows are redone). */
  resume(dir: string, state: TrainerState): void {
    const savedWorldSize = state.worldSize ?? 1;
    const { worldSize } = this.strategy;
    if (savedWorldSize !== worldSize) {
      throw new Error(
        `${dir}: this checkpoint was written by ${savedWorldSize} process${savedWorldSize === 1 ? "" : "es"} and its data position ` +
          `counts in ${savedWorldSize} shard${savedWorldSize === 1 ? "" : "s"}; resume it with ${savedWorldSize} (--nproc-per-node x --nnodes = ${savedWorldSize}), ` +
          `not ${worldSize}, or set overwrite_output_dir: true to start afresh`,
      );
    }
    // The optimizer's moments carry over; its hyperparameters stay this config's, so a change
    // accepted by naming the checkpoint takes effect (otherwise they equal the saved ones).
    const hyper = this.optimizer.paramGroups.map(({ params: _params, ...h }) => structuredClone(h));
    loadOptimizerState(dir, this.optimizer);
    this.optimizer.paramGroups.forEach((g, i) => Object.assign(g, hyper[i]));
    this.scheduler.loadStateDict({ step: state.schedulerStep });
    restoreRngState(this.strategy.rngStateOf(state));
    this.globalStep = state.globalStep;
    this.epochIndex = state.epochIndex;
    this.nextBatch = state.nextBatch;
    this.epoch = state.epoch;
    this.checkpoint = dir;
    this.resumedFrom = dir;
    this.best = state.best ?? null;
    this.logHistory = readLogHistory(dir).filter((r) => Number(r.step) <= this.globalStep);
    this.hooks.onStatus?.(`resumed from ${dir} at step ${this.globalStep}`);
  }

  /** What a checkpoint records: the step, the next micro-batch (in the next epoch when this one is done), the schedule, the RNG and the config. */
  trainerState(): TrainerState {
    const epochDone = this.nextBatch >= this.batchesPerEpoch;
    return {
      globalStep: this.globalStep,
      epoch: this.epoch,
      epochIndex: epochDone ? this.epochIndex + 1 : this.epochIndex,
      nextBatch: epochDone ? 0 : this.nextBatch,
      schedulerStep: this.scheduler.lastStep,
      rngState: rngStateToBase64(),
      totalSteps: this.totalSteps,
      trainPairs: this.data.train.length,
      config: configRecord(this.config),
      worldSize: this.strategy.worldSize,
      best: this.best,
    };
  }

  /** Saves the tokenizer (and a vision-language model's processor files) into a directory. */
  tokenizerSaver(): Pick<Tokenizer, "save"> {
    return tokenizerSaver(this.data.tokenizer, this.data.vision, this.config.modelNameOrPath);
  }

  /** The loss's name in the model card and the pair log. */
  lossName(): string {
    return this.config.objective.lossType;
  }

  /** Writes the trained model to `dir` (each checkpoint's and the final one): its adapter with use_peft, else all of it. */
  saveModel(dir: string): void {
    savePretrained(this.policy, dir, { baseModelNameOrPath: this.adapterBase() });
  }

  /** What a LoRA run's adapters name as their base: model_name_or_path, unless that is itself an adapter (whose base then carries over). */
  adapterBase(): string | undefined {
    return isAdapterDirectory(this.config.modelNameOrPath) ? undefined : this.config.modelNameOrPath;
  }

  /**
   * The trained model (or, with use_peft, its adapter in PEFT's layout) and tokenizer in
   * output_dir, fsynced, with what the HF Trainer and the handbook's scripts write beside them:
   * train_results.json, eval_results.json, all_results.json, trainer_state.json (its
   * log_history ending with the train summary) and a model card README.md. The main process's.
   */
  async saveFinalModel(): Promise<void> {
    if (!this.strategy.isMainProcess) return;
    const { config } = this;
    const dir = config.outputDir;
    const worldSize = this.strategy.worldSize;
    const best = this.finalFromBest();
    const what = loraOf(this.policy) ? "adapter" : "model";
    if (best) {
      // load_best_model_at_end: the model written is the best checkpoint's, as transformers loads it.
      this.hooks.onStatus?.(
        `saving the best ${what} (${best.checkpoint}, ${this.bestMetric()!.name} ${best.metric}) to ${dir}`,
      );
      copyModelFiles(best.checkpoint, dir);
    } else {
      this.hooks.onStatus?.(`saving the ${what} to ${dir}`);
      writingTo(dir, () => this.saveModel(dir));
    }
    await this.tokenizerSaver().save(dir);

    // transformers' speed_metrics count the whole run's samples and steps, over this session's runtime.
    const samples =
      config.maxSteps > 0
        ? this.totalSteps * config.perDeviceTrainBatchSize * config.gradientAccumulationSteps * worldSize
        : this.data.train.length * config.numTrainEpochs;
    const train = trainMetrics({
      runtimeSeconds: Math.max((Date.now() - this.#startedAt) / 1000, 1e-3),
      samples,
      steps: this.totalSteps,
      trainLoss: this.#lossSum / Math.max(1, this.#stepsThisSession),
      epoch: round(this.epoch),
      trainSamples: this.data.train.length,
    });
    saveMetrics(dir, "train", train);
    let evalMetrics: Record<string, number> | null = null;
    // The eval metrics of the model written: the best checkpoint's evaluation, else the last.
    const evalRow = best
      ? (this.logHistory.find((r) => r.step === best.step && this.bestMetric()!.name in r) ?? null)
      : this.lastEvalRow;
    if (evalRow) {
      const { step: _step, ...rest } = evalRow;
      evalMetrics = { ...(rest as Record<string, number>), eval_samples: this.data.eval.length };
      saveMetrics(dir, "eval", evalMetrics);
    }
    const history = [...this.logHistory, { ...train, step: this.globalStep }];
    writeJsonAtomic(join(dir, TRAINER_STATE), this.hfState(history));
    writeModelCard({
      runName: config.runName,
      baseModel: config.modelNameOrPath,
      outputDir: dir,
      adapter: loraOf(this.policy) !== null,
      lossType: this.lossName(),
      beta: (config.objective as { beta?: number }).beta,
      logProbs: lengthNormText({ value: config.dpoLengthNorm, reason: config.dpoLengthNormReason }),
      evalFiles: [config.evalFile ?? config.evalDataPath].filter((f): f is string => f !== null),
      dataFiles: config.trainDataPath !== null ? [config.trainDataPath] : Object.keys(config.datasetMixer ?? {}),
      trainPairs: this.data.train.length,
      evalPairs: this.data.eval.length,
      hyperparameters: {
        learning_rate: config.learningRate,
        optim: config.optim,
        lr_scheduler_type: config.lrSchedulerType,
        warmup_steps: torch.warmupStepsOf({
          type: config.lrSchedulerType,
          totalSteps: this.totalSteps,
          warmupSteps: config.warmupSteps,
          warmupRatio: config.warmupRatio,
        }),
        per_device_train_batch_size: config.perDeviceTrainBatchSize,
        gradient_accumulation_steps: config.gradientAccumulationSteps,
        total_train_batch_size: config.perDeviceTrainBatchSize * config.gradientAccumulationSteps * worldSize,
        num_steps: this.totalSteps,
        num_train_epochs: config.numTrainEpochs,
        max_length: config.maxLength,
        max_prompt_length: config.maxPromptLength,
        seed: config.seed,
        dpo_length_norm: config.dpoLengthNorm,
        precision: config.bf16 ? "bf16 autocast" : (config.torchDtype ?? "float32"),
        use_peft: config.usePeft,
        ...(loraOf(this.policy) ? this.loraCardRows() : {}),
      },
      trainMetrics: train,
      evalMetrics,
      version: packageVersion(),
    });
    for (const name of readdirSync(dir))
      if (name.endsWith(".safetensors") && statSync(join(dir, name)).isFile()) fsyncPath(join(dir, name));
    fsyncPath(dir);
  }

  /** With load_best_model_at_end, the best checkpoint when it is not the last step's (whose model is the policy). */
  finalFromBest(): BestCheckpoint | null {
    // The last step's evaluation counts before its checkpoint (written after the final model) exists.
    if (this.config.saveStrategy !== "no") this.#noteBest(join(this.config.outputDir, `checkpoint-${this.globalStep}`));
    const { best } = this;
    return this.config.loadBestModelAtEnd && best !== null && best.step !== this.globalStep ? best : null;
  }

  /** The model card's LoRA rows: rank, alpha, dropout, targets and fully trained modules, as the adapter has them. */
  loraCardRows(): Record<string, unknown> {
    const s = loraOf(this.policy)!.settings;
    const list = (v: string | readonly string[]) => (typeof v === "string" ? v : v.join(", "));
    return {
      lora_r: s.r,
      lora_alpha: s.alpha,
      lora_dropout: s.dropout,
      lora_target_modules: list(s.targetModules),
      ...(s.modulesToSave.length ? { lora_modules_to_save: list(s.modulesToSave) } : {}),
      use_rslora: s.useRslora,
    };
  }

  /** Where the run is, as callbacks see it. */
  runState(): TrainerRunState {
    const { strategy } = this;
    return {
      globalStep: this.globalStep,
      epoch: this.epoch,
      maxSteps: this.totalSteps,
      logHistory: this.logHistory,
      isWorldProcessZero: strategy.isMainProcess,
      isLocalProcessZero: strategy.isLocalMainProcess,
      rank: strategy.rank,
      worldSize: strategy.worldSize,
      resumedFrom: this.resumedFrom,
    };
  }

  /** Calls every callback's `name` with this moment's event (callbacks are synchronous, as transformers'). */
  #call(name: CallbackEvent, extra: Pick<TrainerEvent, "metrics" | "checkpoint"> = {}): void {
    this.#callbacks.call(name, this.#event(extra));
  }

  #event(extra: Pick<TrainerEvent, "metrics" | "checkpoint"> = {}): TrainerEvent {
    return { state: this.runState(), control: this.control, model: this.policy, config: this.config, ...extra };
  }

  /**
   * The epochs and steps. Returns how it ended: "done" (the planned last step), "stopped" (a
   * callback's control.shouldTrainingStop: ends as if it were the last step), "interrupted"
   * (shouldStop: a checkpoint of this step, to be resumed).
   */
  async #loop(): Promise<"done" | "stopped" | "interrupted"> {
    const { config, data, hooks, strategy, control } = this;
    const ga = config.gradientAccumulationSteps;
    const epochs = Math.ceil(this.totalSteps / Math.ceil(this.batchesPerEpoch / ga));
    const { logging: loggingSteps, eval: evalSteps, save: saveSteps } = this.intervals;
    const evalStrategy = config.evalStrategy ?? config.evaluationStrategy;
    const every = (n: number | null, step: number) => n !== null && step % n === 0;
    this.#tokensSinceLog = 0;
    this.#timeSinceLog = performance.now();
    // Evaluation, checkpoints, callbacks (the pair log's forward) and the per-step agreement
    // (where the other processes wait for the main one's pair log) are not training: their time
    // stays out of tokens_per_second.
    const untimed = async <T>(fn: () => T | Promise<T>): Promise<T> => {
      const started = performance.now();
      try {
        return await fn();
      } finally {
        this.#timeSinceLog += performance.now() - started;
      }
    };
    const position = { epochIndex: this.epochIndex, nextBatch: this.nextBatch };
    for (const { group, epochLength, epochEnd } of stepGroups(
      position,
      epochs,
      (e) => this.epochBatches(e),
      ga,
      () => this.globalStep >= this.totalSteps,
    )) {
      ({ epochIndex: this.epochIndex, nextBatch: this.nextBatch } = position);
      const loss = this.trainingStep(group);
      this.epoch = this.epochIndex + this.nextBatch / epochLength;
      const step = this.globalStep;
      const done = step >= this.totalSteps;
      await untimed(() => this.#call("onStepEnd", { metrics: { loss, learning_rate: this.scheduler.getLastLr()[0] } }));
      // transformers' DefaultFlowCallback: by steps (and logging_first_step), or at each epoch's end; here also at the last step.
      const logNow =
        done ||
        every(loggingSteps, step) ||
        (step === 1 && config.loggingFirstStep) ||
        (epochEnd && config.loggingStrategy === "epoch");
      if (logNow) this.log((this.lastTrainRow = strategy.reduceTrainRow(this.#trainRow(), this.lastInterval)));
      const evalNow =
        done || (evalStrategy !== "epoch" && every(evalSteps, step)) || (epochEnd && evalStrategy === "epoch");
      // The callbacks' own evaluations (generation eval) join the step's eval row, or make one.
      const extra = await untimed(() => this.#callbackEvaluations());
      if ((data.eval.length && evalNow) || extra) {
        const row = (this.lastEvalRow = await untimed(() => ({
          ...(data.eval.length && evalNow ? this.evaluate() : { step, epoch: round(this.epoch) }),
          ...extra,
        })));
        this.log(row);
        await untimed(() => this.#call("onEvaluate", { metrics: row }));
      }
      await tick(); // lets signal handlers (SIGINT, SIGTERM, SIGHUP) run between steps
      // One agreement per step: a stop or save asked on any process is taken on all.
      const [interrupt, stop, saveAsked] = await untimed(() =>
        strategy.anyProcess([hooks.shouldStop?.() ?? false, control.shouldTrainingStop, control.shouldSave]),
      );
      control.shouldTrainingStop = stop;
      const saveNow = saveAsked || every(saveSteps, step) || (epochEnd && config.saveStrategy === "epoch");
      // A stop by a callback ends the run here, with the final model and checkpoint after the loop.
      if (!done && !stop && (interrupt || saveNow)) await untimed(() => this.save());
      control.shouldSave = false;
      if (stop && !done) return "stopped";
      if (interrupt && !done) return "interrupted";
    }
    ({ epochIndex: this.epochIndex, nextBatch: this.nextBatch } = position);
    return "done";
  }

  /** This process's averaged train metrics since the last log, as the HF trainer logs them. */
  #trainRow(): MetricRow {
    const seconds = (performance.now() - this.#timeSinceLog) / 1000;
    const { loss, grad_norm, ...rest } = this.#averager.drain();
    // The rate the next step will use (the schedule has advanced), as the HF trainer logs it.
    const learning_rate = this.scheduler.getLastLr()[0];
    this.lastInterval = { tokens: this.#tokensSinceLog, seconds };
    const row = {
      step: this.globalStep,
      epoch: round(this.epoch),
      loss,
      learning_rate,
      grad_norm,
      tokens_per_second: this.#tokensSinceLog / Math.max(seconds, 1e-9),
      ...rest,
    };
    this.#tokensSinceLog = 0;
    this.#timeSinceLog = performance.now();
    return row;
  }

  #finishedRun(plan: ResumePlan): TrainResult {
    const rows = readLogHistory(plan.dir!);
    const isEval = (r: MetricRow) => Object.keys(r).some((k) => k.startsWith("eval_"));
    this.globalStep = plan.state!.globalStep;
    this.checkpoint = plan.dir;
    this.lastTrainRow = rows.filter((r) => !isEval(r)).at(-1) ?? null;
    this.lastEvalRow = rows.filter(isEval).at(-1) ?? null;
    this.hooks.onStatus?.(
      `${this.config.outputDir} holds a finished run (${plan.dir}, step ${this.globalStep} of ${this.totalSteps}); nothing to train ` +
        "(set overwrite_output_dir: true to train afresh)",
    );
    return this.#result(false, false, true);
  }

  #result(interrupted: boolean, stoppedEarly: boolean, alreadyFinished: boolean): TrainResult {
    return {
      outputDir: this.config.outputDir,
      globalStep: this.globalStep,
      totalSteps: this.totalSteps,
      interrupted,
      stoppedEarly,
      checkpoint: this.checkpoint,
      lastTrainRow: this.lastTrainRow,
      lastEvalRow: this.lastEvalRow,
      alreadyFinished,
    };
  }
}

/** A checkpoint's model files (weights, config, adapter; not its optimizer, states or reference) into `dir`. */
function copyModelFiles(checkpoint: string, dir: string): void {
  const skip = new Set(["optimizer.safetensors", "optimizer.json", RESUME_STATE, TRAINER_STATE]);
  for (const name of readdirSync(checkpoint)) {
    const from = join(checkpoint, name);
    if (skip.has(name) || !statSync(from).isFile()) continue;
    writingTo(join(dir, name), () => copyFileSync(from, join(dir, name)));
  }
}

/**
 * Trains as this process's environment says (one rank of a distributed run when WORLD_SIZE is
 * set, else alone), with the stock PreferenceTrainer; `options.callbacks` join the built-in ones.
 */
export function train(config: TrainConfig, options: TrainOptions = {}): Promise<TrainResult> {
  if (config.centerRewardsCoefficient !== null) {
    // A reward-model key: preference training would ignore it, so it is an error rather than silence.
    return Promise.reject(
      new ConfigError(
        `${config.source}: key 'center_rewards_coefficient': it applies to ` +
          "reward-model training (omni-dpo train-rm, trainRewardModel); remove it to train a policy",
      ),
    );
  }
  return new PreferenceTrainer(config, options).train();
}
