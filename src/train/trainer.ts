// The preference trainer: data in, aligned model out. It follows the Hugging Face trainer's
// semantics (AdamW or SGD with decay groups, its schedules, gradient accumulation, clipping,
// logging/eval/save by steps or epoch, checkpoints, a final checkpoint, its output files,
// exact resume) and TRL's DPO step (one forward over chosen and rejected together, a frozen
// or precomputed reference, dropout off). As TRL's DPOTrainer, each part of a step is a
// method a subclass can override (computeLoss, optimizerStep, evaluate, log, save, resume,
// createOptimizer), so gradient checkpointing, mixed precision, LoRA or data parallelism hook
// in there; train(config, hooks) runs the stock trainer.
import { readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import { Tokenizer } from "../text/index.js";
import { loadModel, savePretrained } from "../models/auto.js";
import { isAdapterDirectory } from "../models/peft.js";
import { defaultLoraTargets } from "../models/registry.js";
import { attachLora, loraOf, type SettingNames } from "../nn/lora.js";
import type { CausalLM } from "../models/causal-lm.js";
import { holdOut, mixDatasets, shuffled } from "../data/mixer.js";
import { readPreferenceFile } from "../data/readers.js";
import { DataError, where, type PreferenceRecord } from "../data/records.js";
import { tokenizeRecords, type TokenizedPair } from "../data/tokenize.js";
import { pairValues, preferenceLoss, REFERENCE_LOSSES, requiredInputs, type PreferenceInputs } from "../objectives/index.js";
import { fsyncPath, writeJsonAtomic, writingTo } from "../util/files.js";
import type { TrainConfig } from "./config.js";
import { plainBackprop, RecomputeTape, type Backprop } from "../nn/recompute.js";
import { batchesOf, forwardPairs, pairLogps } from "./batching.js";
import { decayGroups } from "./optimizer.js";
import { CachedReference, LiveReference, precomputeReference, type ReferenceSharding, type ReferenceSource } from "./reference.js";
import { assertFinite, MetricAverager, MetricsSink, NonFiniteMetricError, type MetricRow } from "./metrics.js";
import { cleanOutputDir, loadOptimizerState, restoreRngState, rngStateToBase64, saveTrainingCheckpoint, type TrainerState, type TrainOptimizer } from "./checkpoint.js";
import { hfTrainerState, saveMetrics, trainMetrics, TRAINER_STATE, writeModelCard, type HfTrainerState } from "./hf-outputs.js";
import { defaultLoggingDir, TensorBoardWriter } from "./tensorboard.js";
import { reportedTo } from "./config.js";
import { packageVersion } from "../util/package-root.js";
import { configRecord, planResume, type ResumePlan } from "./resume.js";
import { RunLock } from "./run-lock.js";
import { PAIR_LOG_FILE, PairLog, pairSample } from "./pair-log.js";

export interface TrainHooks {
  /** Each logged row (train and eval), as written to metrics.jsonl. */
  onLog?: (row: MetricRow) => void;
  onProgress?: (step: number, total: number, info: string) => void;
  /** Phases before the loop ("tokenizing", "reference log-probs 10/40"...). */
  onStatus?: (message: string) => void;
  /** Things the user should know but that do not stop the run (a resume accepting changed settings); default: onStatus. */
  onWarning?: (message: string) => void;
  /** Checked between optimizer steps: when it returns true the run checkpoints and stops. */
  shouldStop?: () => boolean;
}

export interface TrainResult {
  outputDir: string;
  globalStep: number;
  totalSteps: number;
  interrupted: boolean;
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
export async function prepareData(config: TrainConfig, status?: (m: string) => void, warn?: (m: string) => void): Promise<PreparedData> {
  status?.("reading data");
  // The Math recipe's train_data_path is read whole and in order (its data.py); the mixer shuffles.
  const mixed = config.trainDataPath !== null ? await readPreferenceFile(config.trainDataPath) : await mixDatasets(config.datasetMixer!, config.seed);
  let trainRecords: PreferenceRecord[] = mixed;
  let evalRecords: PreferenceRecord[] = [];
  const evalFile = config.evalFile ?? config.evalDataPath;
  if (evalFile) evalRecords = await readPreferenceFile(evalFile);
  else if (config.testSplitSize > 0) ({ train: trainRecords, test: evalRecords } = holdOut(mixed, config.testSplitSize));
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
      throw new DataError([`max_training_samples: ${config.maxTrainingSamples} asked for, but the training data hold ${trainRecords.length} records`]);
    }
    trainRecords = trainRecords.slice(0, config.maxTrainingSamples);
  }
  checkScores([...trainRecords, ...evalRecords], config);
  status?.("tokenizing");
  const tokenizer = Tokenizer.fromPretrainedSync(config.modelNameOrPath);
  if (tokenizer.eosTokenId === undefined) throw new DataError([`${config.modelNameOrPath}: the tokenizer has no eos_token`]);
  const options = {
    maxLength: config.maxLength, maxPromptLength: config.maxPromptLength, truncationMode: config.truncationMode,
    maxCompletionLength: config.maxCompletionLength ?? undefined, chatTemplate: config.chatTemplate ?? undefined,
    chatRendering: config.chatRendering, onWarning: warn,
  };
  return { train: tokenizeRecords(trainRecords, tokenizer, options), eval: tokenizeRecords(evalRecords, tokenizer, options), tokenizer };
}

/** The Math data.py's eot_token: appended to each text answer not already ending with it (conversations end their turns through the template). */
function withEotToken(r: PreferenceRecord, eot: string): PreferenceRecord {
  const add = (t: PreferenceRecord["chosen"], field: string) => {
    if (typeof t !== "string") throw new DataError([`${where(r.source)}: field '${field}': eot_token applies to text answers; this record is a conversation`]);
    return t.endsWith(eot) ? t : t + eot;
  };
  return { ...r, chosen: add(r.chosen, "chosen"), rejected: add(r.rejected, "rejected") };
}

function checkScores(records: PreferenceRecord[], config: TrainConfig): void {
  const needed = requiredInputs(config.objective);
  if (!needed.has("scoreChosen")) return;
  const missing = records.filter((r) => r.scoreChosen === undefined || r.scoreRejected === undefined);
  if (missing.length) {
    throw new DataError(missing.slice(0, 20).map((r) => `${where(r.source)}: field 'score_chosen': missing, and ${needed.get("scoreChosen")} needs it`));
  }
}

/** logging/eval/save steps as a step count: a fraction of the run in (0, 1) rounds up, as transformers does. */
export function resolveSteps(steps: number | null, totalSteps: number): number | null {
  if (steps === null) return null;
  return steps < 1 ? Math.ceil(steps * totalSteps) : steps;
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));
const round = (x: number) => Math.round(x * 1e4) / 1e4;
/** The recipe's names of the LoRA settings, for errors. */
const LORA_KEYS: SettingNames = {
  r: "key 'lora_r'", alpha: "key 'lora_alpha'", dropout: "key 'lora_dropout'", targetModules: "key 'lora_target_modules'",
  modulesToSave: "key 'lora_modules_to_save'", useRslora: "key 'use_rslora'",
};

export class PreferenceTrainer {
  data!: PreparedData;
  padTokenId = 0;
  policy!: CausalLM;
  optimizer!: TrainOptimizer;
  scheduler!: torch.LRScheduler;
  /** Reference log-probs per split; null for losses without a reference (SimPO). */
  reference: { train: ReferenceSource; eval: ReferenceSource } | null = null;
  /** The live reference model, when the reference is not precomputed. */
  referenceModel: CausalLM | null = null;
  metrics!: MetricsSink;
  /** pair_log.jsonl, when pair_log_samples > 0. */
  pairLog: PairLog | null = null;
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
  /** The last checkpoint written (or resumed from). */
  checkpoint: string | null = null;
  /** TensorBoard's event file, with report_to: tensorboard. */
  tensorboard: TensorBoardWriter | null = null;
  /** Step intervals resolved against the run's length (null: not by steps). */
  intervals: { logging: number | null; eval: number | null; save: number | null } = { logging: null, eval: null, save: null };
  readonly #averager = new MetricAverager();
  #tokensSinceLog = 0;
  /** When the current logging interval began (performance.now(), ms), moved on by whatever is not training (evaluation, checkpoints, the pair log). */
  #timeSinceLog = performance.now();
  /** The last train row's interval: this process's attention-mask tokens and training seconds (a data-parallel run combines the ranks' in log()). */
  lastInterval = { tokens: 0, seconds: 0 };
  /** This session's summed step losses and steps (train_loss), and when it started training. */
  #lossSum = 0;
  #stepsThisSession = 0;
  #startedAt = Date.now();

  constructor(readonly config: TrainConfig, readonly hooks: TrainHooks = {}) {}

  /** Runs the whole training: data, lock, resume point, models, the loop, the final model and checkpoint. */
  async train(): Promise<TrainResult> {
    const { config, hooks } = this;
    this.data = await prepareData(config, hooks.onStatus, hooks.onWarning);
    if (this.data.train.length === 0) throw new DataError(["no training pairs after the held-out split"]);
    this.padTokenId = config.paddingValue ?? this.data.tokenizer.padTokenId ?? this.data.tokenizer.eosTokenId!;
    this.batchesPerEpoch = this.epochBatches(0).length;
    const updatesPerEpoch = Math.ceil(this.batchesPerEpoch / config.gradientAccumulationSteps);
    this.totalSteps = config.maxSteps > 0 ? config.maxSteps : Math.max(1, Math.ceil(config.numTrainEpochs * updatesPerEpoch));

    const lock = this.openOutputDir();
    try {
      const plan = this.planRun();
      if (plan.finished) return this.#finishedRun(plan);

      const device = this.chooseDevice();
      torch.manualSeed(config.seed);
      this.setUpReference(device);
      // Dropout stays off in the policy, as TRL's disable_dropout does by default.
      this.policy = this.loadPolicy(plan.dir, device);
      this.optimizer = this.createOptimizer();
      this.scheduler = new torch.LRScheduler(this.optimizer, {
        type: config.lrSchedulerType, totalSteps: this.totalSteps, warmupSteps: config.warmupSteps, warmupRatio: config.warmupRatio,
        baseLr: config.learningRate, kwargs: (config.lrSchedulerKwargs as Record<string, unknown> | null) ?? {},
      });
      this.intervals = {
        logging: config.loggingStrategy === "steps" ? resolveSteps(config.loggingSteps, this.totalSteps) : null,
        eval: resolveSteps(config.evalSteps, this.totalSteps),
        save: resolveSteps(config.saveSteps, this.totalSteps),
      };
      this.metrics = this.createMetricsSink();
      // The per-pair log and TensorBoard are output_dir's, written by the main process alone.
      if (config.pairLogSamples > 0 && this.isMainProcess) {
        this.pairLog = new PairLog(join(config.outputDir, PAIR_LOG_FILE), {
          pair_log: 1, ids: pairSample(this.data.train.length, config.pairLogSamples, config.seed), loss: config.objective.lossType, total_steps: this.totalSteps,
        });
      }
      if (plan.dir) this.resume(plan.dir, plan.state!);
      else {
        this.metrics.truncateAfter(-1);
        if (this.pairLog) this.pairLog.open(-1);
        else if (this.isMainProcess) rmSync(join(config.outputDir, PAIR_LOG_FILE), { force: true });  // an earlier run's, not this one's
      }
      if (reportedTo(config.reportTo).tensorboard && this.isMainProcess) this.tensorboard = new TensorBoardWriter(config.loggingDir ?? defaultLoggingDir(config.outputDir));

      this.#startedAt = Date.now();
      const interrupted = await this.#loop();
      if (!interrupted) {
        await this.saveFinalModel();
        // Last, as the HF trainer's end-of-run save: its presence means the run finished and
        // output_dir holds its model, so a rerun says so instead of redoing the tail.
        if (config.saveStrategy !== "no") await this.save();
      }
      return this.#result(interrupted, false);
    } finally {
      this.tensorboard?.close();
      this.optimizer?.dispose();
      this.policy?.dispose();
      this.referenceModel?.dispose();
      lock.release();
    }
  }

  /** Holds output_dir for this run (its lock) and clears what an interrupted run left there. */
  openOutputDir(): { release(): void } {
    const { config, hooks } = this;
    const lock = RunLock.acquire(config.outputDir, hooks.onStatus);
    try {
      const leftovers = cleanOutputDir(config.outputDir);
      if (leftovers.length) hooks.onStatus?.(`removed what an interrupted run left in ${config.outputDir}: ${leftovers.join(", ")}`);
    } catch (e) {
      lock.release();
      throw e;
    }
    return lock;
  }

  /** Where the run starts: afresh, from a checkpoint, or nowhere (output_dir holds it finished). */
  planRun(): ResumePlan {
    return planResume(this.config, { trainPairs: this.data.train.length, totalSteps: this.totalSteps }, this.hooks);
  }

  /** The device from the config's `device` (auto: CUDA when this LibTorch has it). */
  chooseDevice(): torch.Device {
    const { config } = this;
    const device = config.device === "auto" ? (torch.cuda.isAvailable() ? "cuda" : "cpu") : torch.toDevice(config.device);
    if (device !== "cpu" && !torch.cuda.isAvailable()) throw new Error(`device: ${device} was asked for, but this LibTorch has no CUDA`);
    return device;
  }

  createMetricsSink(): MetricsSink {
    return new MetricsSink(join(this.config.outputDir, "metrics.jsonl"));
  }

  /** Processes training together (data parallelism); 1 here. Checkpoints record it: their data position means this many shards. */
  get worldSize(): number { return 1; }

  /** LD-DPO's alpha (TRL's ld_alpha), which the policy's and the reference's log-probs apply alike; null: off. */
  get ldAlpha(): number | null { return (this.config.objective.ldAlpha as number | null | undefined) ?? null; }

  /** Whether this process writes output_dir's files (transformers' is_world_process_zero); always, here. */
  get isMainProcess(): boolean { return true; }

  /** Epoch `epochIndex`'s order of the training pairs (a shuffle seeded by seed + epoch). */
  epochOrder(epochIndex: number): number[] {
    return shuffled(this.data.train.map((_, i) => i), this.config.seed + epochIndex);
  }

  /** The micro-batches of epoch `epochIndex`, as training-pair indices: its order in batches of per_device_train_batch_size. */
  epochBatches(epochIndex: number): number[][] {
    return batchesOf(this.epochOrder(epochIndex), this.config.perDeviceTrainBatchSize);
  }

  /** How precompute_ref_log_probs splits its work across processes: not at all here. */
  referenceSharding(): ReferenceSharding | undefined {
    return undefined;
  }

  /**
   * The policy: the checkpoint being resumed, else model_name_or_path; with use_peft, LoRA
   * adapters on its frozen weights (a resumed LoRA checkpoint is an adapter directory and
   * brings its own).
   */
  loadPolicy(checkpoint: string | null, device: torch.Device): CausalLM {
    const { config } = this;
    const model = loadModel(checkpoint ?? config.modelNameOrPath, { device, dtype: config.torchDtype ?? "float32" }).eval() as CausalLM;
    if (!config.usePeft || loraOf(model)) return model;
    try {
      attachLora(model, {
        r: config.loraR, alpha: config.loraAlpha, dropout: config.loraDropout,
        targetModules: (config.loraTargetModules as string[] | string | null) ?? defaultLoraTargets(model, "key 'lora_target_modules'"),
        modulesToSave: (config.loraModulesToSave as string[] | null) ?? [], useRslora: config.useRslora,
      }, config.source, LORA_KEYS);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return model;
  }

  /** The reference: precomputed once (only the policy stays in memory), a live frozen model, or with LoRA the policy with its adapters off. */
  setUpReference(device: torch.Device): void {
    const { config, data, hooks } = this;
    if (!REFERENCE_LOSSES.has(config.objective.lossType)) return;
    if (config.usePeft && config.refModel === null && !config.precomputeRefLogProbs) {
      // As TRL with a PEFT model and no ref_model: the same network with its adapters off, so
      // the base weights are in memory once. Read at each call: the policy is loaded after this.
      const disabled: ReferenceSource = {
        logps: (pairs) => loraOf(this.policy)!.withAdaptersDisabled(() =>
          pairLogps(this.policy, pairs, this.padTokenId, config.dpoLengthNorm, Math.max(1, pairs.length), undefined, { ldAlpha: this.ldAlpha })),
      };
      this.reference = { train: disabled, eval: disabled };
      return;
    }
    const referenceDir = config.refModel ?? config.modelNameOrPath;
    const dtype = config.torchDtype ?? "float32";
    if (config.precomputeRefLogProbs) {
      // Values differ with the weights' dtype and autocast, which the cache key does not cover:
      // other precisions cache in a directory of their own (float32's stays where it was).
      const precision = (split: "train" | "eval") => [dtype === "float32" ? "" : dtype, this.mixedPrecision(split) ? "autocast-bf16" : ""].filter(Boolean).join("-");
      const compute = (pairs: TokenizedPair[], label: "train" | "eval") => this.withMixedPrecision(label, device, () => precomputeReference({
        pairs, modelDir: referenceDir, cacheDir: join(config.outputDir, "ref_logps_cache", precision(label)), lengthNorm: config.dpoLengthNorm, ldAlpha: this.ldAlpha,
        batchSize: config.perDeviceEvalBatchSize, padTokenId: this.padTokenId, loadModel: () => loadModel(referenceDir, { device, dtype }),
        onProgress: (done, total) => hooks.onStatus?.(`reference log-probs (${label}) ${done}/${total}`), sharding: this.referenceSharding(),
      }));
      const train = compute(data.train, "train");
      const evalValues = data.eval.length ? compute(data.eval, "eval") : null;
      hooks.onStatus?.(`reference log-probs ${train.cached ? "read from" : "cached in"} ${train.file}`);
      this.reference = { train: new CachedReference(train.values), eval: new CachedReference(evalValues?.values ?? { chosen: [], rejected: [] }) };
    } else {
      this.referenceModel = loadModel(referenceDir, { device, dtype }).requiresGrad_(false).eval() as CausalLM;
      const live = new LiveReference(this.referenceModel, this.padTokenId, config.dpoLengthNorm, this.ldAlpha);
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

  /**
   * The optimizer `optim` names over the policy's trainable parameters (all of them, or the LoRA
   * adapters; in their dtype, as PyTorch keeps its state), with the HF trainer's decay groups:
   * AdamW (adamw_torch; adamw_torch_fused is the same update in one kernel), or plain SGD with
   * only the learning rate and the groups' weight decay, as transformers builds torch.optim.SGD.
   */
  createOptimizer(): TrainOptimizer {
    const c = this.config;
    const groups = decayGroups(this.policy, c.weightDecay)
      .map((g) => ({ ...g, params: g.params.filter((p) => p.requiresGrad) }))
      .filter((g) => g.params.length > 0);
    if (c.optim === "sgd") return new torch.SGD(groups, { lr: c.learningRate, weightDecay: c.weightDecay });
    return new torch.AdamW(groups, {
      lr: c.learningRate, betas: [c.adamBeta1, c.adamBeta2], eps: c.adamEpsilon, weightDecay: c.weightDecay,
    });
  }

  /** One micro-batch: the policy's forward over chosen and rejected together, the reference's log-probs, the loss and its metrics. */
  computeLoss(pairs: TokenizedPair[], indices: number[], split: "train" | "eval"): MicroBatchOutput {
    // Under grad the policy's forward records what backward recomputes (the LM head's chunks,
    // and with gradient_checkpointing every decoder layer); trainingStep runs it after
    // loss.backward(). Evaluation (no grad) needs no tape.
    const recompute = torch.isGradEnabled() ? new RecomputeTape() : null;
    try {
      return { ...this.#policyLoss(pairs, indices, split, recompute), recompute };
    } catch (e) {
      recompute?.dispose();
      throw e;
    }
  }

  #policyLoss(pairs: TokenizedPair[], indices: number[], split: "train" | "eval", recompute: RecomputeTape | null): MicroBatchOutput {
    const { inputs, tokens } = this.#lossInputs(pairs, indices, split, recompute);
    const result = preferenceLoss(inputs, this.config.objective);
    return { loss: result.loss, metrics: result.metrics as Record<string, number>, tokens };
  }

  /** The objective's inputs for a micro-batch: the policy's forward, the reference's log-probs, the scores; and its attention-mask tokens. */
  #lossInputs(pairs: TokenizedPair[], indices: number[], split: "train" | "eval", recompute: RecomputeTape | null): { inputs: PreferenceInputs; tokens: number } {
    const out = forwardPairs(this.policy, pairs, this.padTokenId, this.config.dpoLengthNorm,
      { recompute, gradientCheckpointing: this.config.gradientCheckpointing && recompute !== null, wpoWeights: this.config.objective.useWeighting === true, ldAlpha: this.ldAlpha });
    const ref = this.reference?.[split].logps(pairs, indices);
    const dtype = out.chosen.dtype;
    const device = out.chosen.device;
    const values = (xs: number[] | undefined) => (xs ? torch.tensor(xs, { dtype, device }) : null);  // [B]
    const inputs: PreferenceInputs = {
      policyChosenLogps: out.chosen, policyRejectedLogps: out.rejected,
      referenceChosenLogps: values(ref?.chosen), referenceRejectedLogps: values(ref?.rejected),
      scoreChosen: values(out.batch.scoreChosen), scoreRejected: values(out.batch.scoreRejected),
      chosenLengths: out.chosenLengths, rejectedLengths: out.rejectedLengths, logpsPerToken: this.config.dpoLengthNorm,
      chosenWeights: out.chosenWeights, rejectedWeights: out.rejectedWeights,
      policyChosenLogitsMean: out.chosenLogitsMean, policyRejectedLogitsMean: out.rejectedLogitsMean,
    };
    const tokens = out.batch.attentionMask.reduce((n, row) => n + row.reduce((a, b) => a + b, 0), 0);
    return { inputs, tokens };
  }

  /** The pair log's sample through the policy (no gradient): each pair's margin, w_qual, w_perf and gate, appended to pair_log.jsonl. */
  logPairs(): void {
    const log = this.pairLog!;
    const started = performance.now();
    const margins: number[] = [];
    const metrics: Record<string, number[] | number> = {};
    torch.noGrad(() => {
      for (const indices of batchesOf(log.header.ids, this.config.perDeviceEvalBatchSize)) {
        const v = torch.tidy(() => this.withMixedPrecision("train", this.policy.device, () =>
          pairValues(this.#lossInputs(indices.map((i) => this.data.train[i]), indices, "train", null).inputs, this.config.objective)));
        margins.push(...v.margins);
        for (const [k, x] of Object.entries(v.metrics)) metrics[k] = typeof x === "number" ? x : [...((metrics[k] as number[] | undefined) ?? []), ...x];
      }
    });
    log.write(this.globalStep, round(this.epoch), margins, metrics);
    this.#timeSinceLog += performance.now() - started;  // tokens_per_second counts training only
  }

  /**
   * One optimizer step over up to gradient_accumulation_steps micro-batches (fewer at the end
   * of an epoch): each micro-batch's loss is scaled by 1/n and backpropagated, then
   * optimizerStep. Returns the step's mean loss. A NaN or infinite loss or metric is an error
   * naming the step and the metric, before the weights change.
   */
  trainingStep(group: number[][]): number {
    const step = this.globalStep + 1;
    let loss = 0;
    try {
      for (const [k, indices] of group.entries()) {
        const r = torch.tidy(() => {
          const out = this.withMixedPrecision("train", this.policy.device, () => this.computeLoss(indices.map((i) => this.data.train[i]), indices, "train"));
          try {
            this.backward(out, 1 / group.length, k === group.length - 1);
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
   * Backpropagates a micro-batch's loss x `scale`, then its recomputed segments (checkpointed
   * layers, LM-head chunks: their forward runs again here, under the same precision as the
   * first). `last`: the step's final micro-batch (data parallelism reduces gradients during it).
   */
  backward(out: MicroBatchOutput, scale: number, _last: boolean, backprop: Backprop = plainBackprop): void {
    const loss = out.loss.mul(scale);
    backprop(loss, null, out.recompute?.inputsBefore() ?? []);
    this.withMixedPrecision("train", this.policy.device, () => out.recompute?.backward(backprop));
  }

  /** Clip the gradients, step the optimizer, zero the gradients, advance the schedule. Returns the pre-clip norm and the step's learning rate. */
  optimizerStep(): { gradNorm: number; learningRate: number } {
    const maxNorm = this.config.maxGradNorm > 0 ? this.config.maxGradNorm : Infinity;
    const gradNorm = torch.clipGradNorm(this.policy.parameters(), maxNorm);
    if (!Number.isFinite(gradNorm)) {
      this.optimizer.zeroGrad();
      throw new NonFiniteMetricError(`step ${this.globalStep + 1}: grad_norm is ${gradNorm}; the weights were not updated`);
    }
    const learningRate = this.scheduler.getLastLr()[0];
    this.optimizer.step();
    this.optimizer.zeroGrad();
    this.scheduler.step();
    return { gradNorm, learningRate };
  }

  /** Loss and metrics over the eval split, averaged per pair, as an `eval_`-prefixed row. */
  evaluate(): MetricRow {
    let sums: Record<string, number> = {};
    let n = 0;
    torch.noGrad(() => {
      for (const indices of batchesOf(this.evalIndices(), this.config.perDeviceEvalBatchSize)) {
        const r = torch.tidy(() => {
          const out = this.withMixedPrecision("eval", this.policy.device, () => this.computeLoss(indices.map((i) => this.data.eval[i]), indices, "eval"));
          return { loss: out.loss.item(), ...out.metrics };
        });
        assertFinite(r, `evaluation at step ${this.globalStep}`);
        for (const [k, v] of Object.entries(r)) sums[k] = (sums[k] ?? 0) + v * indices.length;
        n += indices.length;
      }
    });
    ({ sums, n } = this.combineEvalSums(sums, n));
    return { step: this.globalStep, epoch: round(this.epoch), ...Object.fromEntries(Object.entries(sums).map(([k, v]) => [`eval_${k}`, v / n])) };
  }

  /** The eval pairs this process evaluates: all of them. */
  evalIndices(): number[] {
    return this.data.eval.map((_, i) => i);
  }

  /** Per-metric sums (value x pairs) and the pair count of this process's evaluation, as the whole evaluation's: as they are here. */
  combineEvalSums(sums: Record<string, number>, n: number): { sums: Record<string, number>; n: number } {
    return { sums, n };
  }

  /** Writes a row to metrics.jsonl (and TensorBoard, with report_to: tensorboard) and hands it to onLog. */
  log(row: MetricRow): void {
    this.metrics.write(row);
    this.tensorboard?.logRow(row, this.globalStep);
    this.hooks.onLog?.(row);
  }

  /** Writes a checkpoint of the current step (rotating old ones) and returns its directory. */
  async save(): Promise<string> {
    this.checkpoint = await saveTrainingCheckpoint(this.config.outputDir, {
      model: this.policy, optimizer: this.optimizer, tokenizer: this.data.tokenizer, state: this.trainerState(),
      hfState: this.hfState(MetricsSink.read(this.metrics.file)), baseModelNameOrPath: this.adapterBase(),
    }, this.config.saveTotalLimit);
    return this.checkpoint;
  }

  /** transformers' TrainerState now, with `logHistory` (the rows logged so far, and at the end the train summary). */
  hfState(logHistory: MetricRow[]): HfTrainerState {
    const c = this.config;
    // transformers keeps the interval arguments as given when not resolved by steps (500 logging, None -> logging_steps for eval).
    const loggingSteps = this.intervals.logging ?? 500;
    return hfTrainerState({
      globalStep: this.globalStep, epoch: this.epoch, maxSteps: this.totalSteps,
      numTrainEpochs: Math.ceil(this.totalSteps / Math.ceil(this.batchesPerEpoch / c.gradientAccumulationSteps)),
      loggingSteps, evalSteps: this.intervals.eval ?? loggingSteps, saveSteps: this.intervals.save ?? 500,
      trainBatchSize: c.perDeviceTrainBatchSize, logHistory, finished: this.globalStep >= this.totalSteps,
    });
  }

  /** Continues from a checkpoint: optimizer, schedule, RNG, step and data position; later metrics rows are dropped (they are redone). */
  resume(dir: string, state: TrainerState): void {
    const savedWorldSize = state.worldSize ?? 1;
    if (savedWorldSize !== this.worldSize) {
      throw new Error(`${dir}: this checkpoint was written by ${savedWorldSize} process${savedWorldSize === 1 ? "" : "es"} and its data position ` +
        `counts in ${savedWorldSize} shard${savedWorldSize === 1 ? "" : "s"}; resume it with ${savedWorldSize} (--nproc-per-node x --nnodes = ${savedWorldSize}), ` +
        `not ${this.worldSize}, or set overwrite_output_dir: true to start afresh`);
    }
    // The optimizer's moments carry over; its hyperparameters stay this config's, so a change
    // accepted by naming the checkpoint takes effect (otherwise they equal the saved ones).
    const hyper = this.optimizer.paramGroups.map(({ params: _params, ...h }) => structuredClone(h));
    loadOptimizerState(dir, this.optimizer);
    this.optimizer.paramGroups.forEach((g, i) => Object.assign(g, hyper[i]));
    this.scheduler.loadStateDict({ step: state.schedulerStep });
    restoreRngState(state.rngState);
    this.globalStep = state.globalStep;
    this.epochIndex = state.epochIndex;
    this.nextBatch = state.nextBatch;
    this.epoch = state.epoch;
    this.checkpoint = dir;
    this.metrics.truncateAfter(this.globalStep);
    this.pairLog?.open(this.globalStep);
    this.hooks.onStatus?.(`resumed from ${dir} at step ${this.globalStep}`);
  }

  /** What a checkpoint records: the step, the next micro-batch (in the next epoch when this one is done), the schedule, the RNG and the config. */
  trainerState(): TrainerState {
    const epochDone = this.nextBatch >= this.batchesPerEpoch;
    return {
      globalStep: this.globalStep, epoch: this.epoch, epochIndex: epochDone ? this.epochIndex + 1 : this.epochIndex,
      nextBatch: epochDone ? 0 : this.nextBatch, schedulerStep: this.scheduler.lastStep, rngState: rngStateToBase64(),
      totalSteps: this.totalSteps, trainPairs: this.data.train.length, config: configRecord(this.config), worldSize: this.worldSize,
    };
  }

  /** What a LoRA run's adapters name as their base: model_name_or_path, unless that is itself an adapter (whose base then carries over). */
  adapterBase(): string | undefined {
    return isAdapterDirectory(this.config.modelNameOrPath) ? undefined : this.config.modelNameOrPath;
  }

  /**
   * The trained model (or, with use_peft, its adapter in PEFT's layout) and tokenizer in
   * output_dir, fsynced, with what the HF Trainer and the handbook's scripts write beside them:
   * train_results.json, eval_results.json, all_results.json, trainer_state.json (its
   * log_history ending with the train summary) and a model card README.md.
   */
  async saveFinalModel(): Promise<void> {
    const { config } = this;
    const dir = config.outputDir;
    this.hooks.onStatus?.(`saving the ${loraOf(this.policy) ? "adapter" : "model"} to ${dir}`);
    writingTo(dir, () => savePretrained(this.policy, dir, { baseModelNameOrPath: this.adapterBase() }));
    await this.data.tokenizer.save(dir);

    // transformers' speed_metrics count the whole run's samples and steps, over this session's runtime.
    const samples = config.maxSteps > 0 ? this.totalSteps * config.perDeviceTrainBatchSize * config.gradientAccumulationSteps * this.worldSize
      : this.data.train.length * config.numTrainEpochs;
    const train = trainMetrics({
      runtimeSeconds: Math.max((Date.now() - this.#startedAt) / 1000, 1e-3), samples, steps: this.totalSteps,
      trainLoss: this.#lossSum / Math.max(1, this.#stepsThisSession), epoch: round(this.epoch), trainSamples: this.data.train.length,
    });
    saveMetrics(dir, "train", train);
    let evalMetrics: Record<string, number> | null = null;
    if (this.lastEvalRow) {
      const { step: _step, ...rest } = this.lastEvalRow;
      evalMetrics = { ...(rest as Record<string, number>), eval_samples: this.data.eval.length };
      saveMetrics(dir, "eval", evalMetrics);
    }
    const history = [...MetricsSink.read(this.metrics.file), { ...train, step: this.globalStep }];
    writeJsonAtomic(join(dir, TRAINER_STATE), this.hfState(history));
    writeModelCard({
      runName: config.runName, baseModel: config.modelNameOrPath, outputDir: dir, adapter: loraOf(this.policy) !== null,
      lossType: config.objective.lossType, beta: (config.objective as { beta?: number }).beta,
      dataFiles: config.trainDataPath !== null ? [config.trainDataPath] : Object.keys(config.datasetMixer ?? {}),
      trainPairs: this.data.train.length, evalPairs: this.data.eval.length,
      hyperparameters: {
        learning_rate: config.learningRate, optim: config.optim, lr_scheduler_type: config.lrSchedulerType,
        warmup_steps: torch.warmupStepsOf({ type: config.lrSchedulerType, totalSteps: this.totalSteps, warmupSteps: config.warmupSteps, warmupRatio: config.warmupRatio }),
        per_device_train_batch_size: config.perDeviceTrainBatchSize, gradient_accumulation_steps: config.gradientAccumulationSteps,
        total_train_batch_size: config.perDeviceTrainBatchSize * config.gradientAccumulationSteps * this.worldSize, num_steps: this.totalSteps,
        num_train_epochs: config.numTrainEpochs, max_length: config.maxLength, max_prompt_length: config.maxPromptLength,
        seed: config.seed, precision: config.bf16 ? "bf16 autocast" : config.torchDtype ?? "float32", use_peft: config.usePeft,
      },
      trainMetrics: train, evalMetrics, version: packageVersion(),
    });
    for (const name of readdirSync(dir)) if (name.endsWith(".safetensors") && statSync(join(dir, name)).isFile()) fsyncPath(join(dir, name));
    fsyncPath(dir);
  }

  /** The epochs and steps; returns true when stopped by shouldStop before the last step. */
  async #loop(): Promise<boolean> {
    const { config, data, hooks } = this;
    const ga = config.gradientAccumulationSteps;
    const epochs = Math.ceil(this.totalSteps / Math.ceil(this.batchesPerEpoch / ga));
    const { logging: loggingSteps, eval: evalSteps, save: saveSteps } = this.intervals;
    const evalStrategy = config.evalStrategy ?? config.evaluationStrategy;
    const every = (n: number | null, step: number) => n !== null && step % n === 0;
    const pairSteps = this.pairLog ? resolveSteps(config.pairLoggingSteps ?? config.loggingSteps, this.totalSteps) : null;
    this.#tokensSinceLog = 0;
    this.#timeSinceLog = performance.now();
    // Evaluation and checkpoints are not training: their time stays out of tokens_per_second.
    const untimed = async <T>(fn: () => T | Promise<T>): Promise<T> => {
      const started = performance.now();
      try {
        return await fn();
      } finally {
        this.#timeSinceLog += performance.now() - started;
      }
    };
    for (; this.epochIndex < epochs && this.globalStep < this.totalSteps; this.epochIndex++, this.nextBatch = 0) {
      const batches = this.epochBatches(this.epochIndex);
      while (this.nextBatch < batches.length && this.globalStep < this.totalSteps) {
        const group = batches.slice(this.nextBatch, this.nextBatch + ga);
        const loss = this.trainingStep(group);
        this.nextBatch += group.length;
        this.epoch = this.epochIndex + this.nextBatch / batches.length;
        const step = this.globalStep;
        const done = step >= this.totalSteps;
        const epochEnd = this.nextBatch >= batches.length;
        // transformers' DefaultFlowCallback: by steps (and logging_first_step), or at each epoch's end; here also at the last step.
        const logNow = done || every(loggingSteps, step) || (step === 1 && config.loggingFirstStep) || (epochEnd && config.loggingStrategy === "epoch");
        if (logNow) this.log(this.lastTrainRow = this.#trainRow());
        if (pairSteps && (every(pairSteps, step) || done)) this.logPairs();
        const evalNow = done || (evalStrategy !== "epoch" && every(evalSteps, step)) || (epochEnd && evalStrategy === "epoch");
        if (data.eval.length && evalNow) this.log(this.lastEvalRow = await untimed(() => this.evaluate()));
        hooks.onProgress?.(step, this.totalSteps, `loss ${loss.toFixed(4)} lr ${this.scheduler.getLastLr()[0].toExponential(2)}`);
        await tick();  // lets signal handlers (SIGINT, SIGTERM, SIGHUP) run between steps
        // Untimed too: under data parallelism it is where the other ranks wait for the main
        // process's pair log, which would otherwise count in their training time.
        const stop = await untimed(() => hooks.shouldStop?.() ?? false);
        const saveNow = every(saveSteps, step) || (epochEnd && config.saveStrategy === "epoch");
        if (!done && (stop || saveNow)) await untimed(() => this.save());
        if (stop && !done) return true;
      }
    }
    return false;
  }

  /** The averaged train metrics since the last log, as the HF trainer logs them. */
  #trainRow(): MetricRow {
    const seconds = (performance.now() - this.#timeSinceLog) / 1000;
    const { loss, grad_norm, ...rest } = this.#averager.drain();
    // The rate the next step will use (the schedule has advanced), as the HF trainer logs it.
    const learning_rate = this.scheduler.getLastLr()[0];
    this.lastInterval = { tokens: this.#tokensSinceLog, seconds };
    const row = { step: this.globalStep, epoch: round(this.epoch), loss, learning_rate, grad_norm, tokens_per_second: this.#tokensSinceLog / Math.max(seconds, 1e-9), ...rest };
    this.#tokensSinceLog = 0;
    this.#timeSinceLog = performance.now();
    return row;
  }

  #finishedRun(plan: ResumePlan): TrainResult {
    const rows = MetricsSink.read(join(this.config.outputDir, "metrics.jsonl"));
    const isEval = (r: MetricRow) => Object.keys(r).some((k) => k.startsWith("eval_"));
    this.globalStep = plan.state!.globalStep;
    this.checkpoint = plan.dir;
    this.lastTrainRow = rows.filter((r) => !isEval(r)).at(-1) ?? null;
    this.lastEvalRow = rows.filter(isEval).at(-1) ?? null;
    this.hooks.onStatus?.(`${this.config.outputDir} holds a finished run (${plan.dir}, step ${this.globalStep} of ${this.totalSteps}); nothing to train ` +
      "(set overwrite_output_dir: true to train afresh)");
    return this.#result(false, true);
  }

  #result(interrupted: boolean, alreadyFinished: boolean): TrainResult {
    return {
      outputDir: this.config.outputDir, globalStep: this.globalStep, totalSteps: this.totalSteps, interrupted, checkpoint: this.checkpoint,
      lastTrainRow: this.lastTrainRow, lastEvalRow: this.lastEvalRow, alreadyFinished,
    };
  }
}

/** Trains with the stock PreferenceTrainer (the CLI, the demo and the tests call this). */
export function train(config: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  return new PreferenceTrainer(config, hooks).train();
}
