// The preference trainer: data in, aligned model out. It follows the Hugging Face trainer's
// semantics (AdamW with decay groups, schedules with warmup, gradient accumulation, clipping,
// logging/eval/save every N steps, checkpoints and exact resume) and TRL's DPO step (one
// forward over chosen and rejected together, a frozen or precomputed reference, dropout off).
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import { Tokenizer } from "../text/index.js";
import { loadModel, saveModel } from "../models/auto.js";
import type { CausalLM } from "../models/causal-lm.js";
import { holdOut, mixDatasets, shuffled } from "../data/mixer.js";
import { readPreferenceFile } from "../data/readers.js";
import { DataError, where, type PreferenceRecord } from "../data/records.js";
import { concatenatedBatch, tokenizeRecords, type TokenizedPair } from "../data/tokenize.js";
import { preferenceLoss, REFERENCE_LOSSES, requiredInputs } from "../objectives/index.js";
import type { TrainConfig } from "./config.js";
import { concatenatedForward } from "./logprobs.js";
import { CachedReference, LiveReference, precomputeReference, type ReferenceSource } from "./reference.js";
import { MetricAverager, MetricsSink, type MetricRow } from "./metrics.js";
import {
  checkpointDirs, latestCheckpoint, loadOptimizerState, readTrainerState, restoreRngState, rngStateToBase64, saveTrainingCheckpoint, type TrainerState,
} from "./checkpoint.js";

export interface TrainHooks {
  /** Each logged row (train and eval), as written to metrics.jsonl. */
  onLog?: (row: MetricRow) => void;
  onProgress?: (step: number, total: number, info: string) => void;
  /** Phases before the loop ("tokenizing", "reference log-probs 10/40"...). */
  onStatus?: (message: string) => void;
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
}

export interface PreparedData {
  train: TokenizedPair[];
  eval: TokenizedPair[];
  tokenizer: Tokenizer;
}

/** Reads, validates and tokenises everything before any training (and before any output). */
export async function prepareData(config: TrainConfig, status?: (m: string) => void): Promise<PreparedData> {
  status?.("reading data");
  const mixed = await mixDatasets(config.datasetMixer, config.seed);
  let trainRecords: PreferenceRecord[] = mixed;
  let evalRecords: PreferenceRecord[] = [];
  if (config.evalFile) evalRecords = await readPreferenceFile(config.evalFile);
  else if (config.testSplitSize > 0) ({ train: trainRecords, test: evalRecords } = holdOut(mixed, config.testSplitSize));
  if (config.maxSamples !== null) {
    trainRecords = trainRecords.slice(0, config.maxSamples);
    evalRecords = evalRecords.slice(0, config.maxSamples);
  }
  checkScores([...trainRecords, ...evalRecords], config);
  status?.("tokenizing");
  const tokenizer = Tokenizer.fromPretrainedSync(config.modelNameOrPath);
  if (tokenizer.eosTokenId === undefined) throw new DataError([`${config.modelNameOrPath}: the tokenizer has no eos_token`]);
  const options = {
    maxLength: config.maxLength, maxPromptLength: config.maxPromptLength, truncationMode: config.truncationMode,
    chatTemplate: config.chatTemplate ?? undefined,
  };
  return { train: tokenizeRecords(trainRecords, tokenizer, options), eval: tokenizeRecords(evalRecords, tokenizer, options), tokenizer };
}

function checkScores(records: PreferenceRecord[], config: TrainConfig): void {
  const needed = requiredInputs(config.objective);
  if (!needed.has("scoreChosen")) return;
  const missing = records.filter((r) => r.scoreChosen === undefined || r.scoreRejected === undefined);
  if (missing.length) {
    throw new DataError(missing.slice(0, 20).map((r) => `${where(r.source)}: field 'score_chosen': missing, and ${needed.get("scoreChosen")} needs it`));
  }
}

/** Parameter groups as the HF trainer makes them: no weight decay on biases and norm weights. */
function parameterGroups(model: CausalLM, weightDecay: number): torch.ParamGroupSpec<torch.AdamWOptions>[] {
  const decay: torch.Tensor[] = [];
  const noDecay: torch.Tensor[] = [];
  for (const [name, p] of model.namedParameters()) {
    if (name.endsWith(".bias") || /(norm|ln_\d|ln_f)\./.test(name)) noDecay.push(p);
    else decay.push(p);
  }
  return [{ params: decay, weightDecay }, { params: noDecay, weightDecay: 0 }].filter((g) => g.params.length > 0);
}

function fingerprint(config: TrainConfig, trainPairs: number, totalSteps: number): string {
  return JSON.stringify({
    data: config.datasetMixer, pairs: trainPairs, seed: config.seed, bs: config.perDeviceTrainBatchSize,
    ga: config.gradientAccumulationSteps, maxLength: config.maxLength, loss: config.objective.lossType, totalSteps,
  });
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

export async function train(config: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const data = await prepareData(config, hooks.onStatus);
  if (data.train.length === 0) throw new DataError(["no training pairs after the held-out split"]);
  const padTokenId = data.tokenizer.padTokenId ?? data.tokenizer.eosTokenId!;
  const lengthNorm = config.dpoLengthNorm;
  const needsReference = REFERENCE_LOSSES.has(config.objective.lossType);

  const batchSize = config.perDeviceTrainBatchSize;
  const ga = config.gradientAccumulationSteps;
  const batchesPerEpoch = Math.ceil(data.train.length / batchSize);
  const updatesPerEpoch = Math.ceil(batchesPerEpoch / ga);
  const totalSteps = config.maxSteps > 0 ? config.maxSteps : Math.max(1, Math.ceil(config.numTrainEpochs * updatesPerEpoch));
  const epochs = Math.ceil(totalSteps / updatesPerEpoch);
  const print = fingerprint(config, data.train.length, totalSteps);

  // Resume point, checked before anything is written.
  // As alignment-handbook (and so the reference) does: a run whose output_dir already holds
  // checkpoints continues from the latest one unless told to overwrite; asking to resume when
  // there is nothing to resume from is an error rather than a silent fresh start.
  let resumeDir: string | null = null;
  const latest = latestCheckpoint(config.outputDir);
  if (typeof config.resumeFromCheckpoint === "string") {
    if (!existsSync(config.resumeFromCheckpoint)) throw new Error(`resume_from_checkpoint: ${config.resumeFromCheckpoint} does not exist`);
    resumeDir = config.resumeFromCheckpoint;
  } else if (config.resumeFromCheckpoint === true) {
    if (!latest) throw new Error(`resume_from_checkpoint: no checkpoint found in ${config.outputDir}`);
    resumeDir = latest;
  } else if (latest && config.resumeFromCheckpoint === null) {
    if (config.overwriteOutputDir) {
      for (const c of checkpointDirs(config.outputDir)) rmSync(c.dir, { recursive: true, force: true });
    } else {
      resumeDir = latest;
      hooks.onStatus?.(`${config.outputDir} holds ${latest}; resuming from it (set overwrite_output_dir: true to start afresh)`);
    }
  }
  const resumed: TrainerState | null = resumeDir ? readTrainerState(resumeDir) : null;
  if (resumed && resumed.fingerprint !== print) {
    throw new Error(`resume_from_checkpoint: ${resumeDir} was made with different data, batch or length settings; ` +
      "restore them, or set overwrite_output_dir: true (or a new output_dir) to start afresh");
  }

  const device = config.device === "auto" ? (torch.cuda.isAvailable() ? "cuda" : "cpu") : torch.toDevice(config.device);
  if (device !== "cpu" && !torch.cuda.isAvailable()) throw new Error(`device: ${device} was asked for, but this LibTorch has no CUDA`);
  mkdirSync(config.outputDir, { recursive: true });
  torch.manualSeed(config.seed);

  // The reference: precomputed once (only the policy stays in memory) or a live frozen model.
  let reference: { train: ReferenceSource; eval: ReferenceSource } | null = null;
  let referenceModel: CausalLM | null = null;
  const referenceDir = config.refModel ?? config.modelNameOrPath;
  if (needsReference && config.precomputeRefLogProbs) {
    const compute = (pairs: TokenizedPair[], label: string) => precomputeReference({
      pairs, modelDir: referenceDir, cacheDir: join(config.outputDir, "ref_logps_cache"), lengthNorm,
      batchSize: config.perDeviceEvalBatchSize, padTokenId, loadModel: () => loadModel(referenceDir, { device }),
      onProgress: (done, total) => hooks.onStatus?.(`reference log-probs (${label}) ${done}/${total}`),
    });
    const train = compute(data.train, "train");
    const evalValues = data.eval.length ? compute(data.eval, "eval") : null;
    hooks.onStatus?.(`reference log-probs ${train.cached ? "read from" : "cached in"} ${train.file}`);
    reference = { train: new CachedReference(train.values), eval: new CachedReference(evalValues?.values ?? { chosen: [], rejected: [] }) };
  } else if (needsReference) {
    referenceModel = loadModel(referenceDir, { device }).requiresGrad_(false).eval() as CausalLM;
    const live = new LiveReference(referenceModel, padTokenId, lengthNorm);
    reference = { train: live, eval: live };
  }

  // Dropout stays off in the policy, as TRL's disable_dropout does by default.
  const policy = loadModel(resumeDir ?? config.modelNameOrPath, { device }).eval() as CausalLM;
  const optimizer = new torch.AdamW(parameterGroups(policy, config.weightDecay), {
    lr: config.learningRate, betas: [config.adamBeta1, config.adamBeta2], eps: config.adamEpsilon, weightDecay: config.weightDecay,
  });
  const scheduler = new torch.LRScheduler(optimizer, {
    type: config.lrSchedulerType, totalSteps, warmupSteps: config.warmupSteps, warmupRatio: config.warmupRatio,
  });
  const metrics = new MetricsSink(join(config.outputDir, "metrics.jsonl"));
  let globalStep = 0;
  let startEpoch = 0;
  let startBatch = 0;
  if (resumed && resumeDir) {
    loadOptimizerState(resumeDir, optimizer);
    scheduler.loadStateDict({ step: resumed.schedulerStep });
    restoreRngState(resumed.rngState);
    globalStep = resumed.globalStep;
    startEpoch = resumed.epochIndex;
    startBatch = resumed.nextBatch;
    metrics.truncateAfter(globalStep);
    hooks.onStatus?.(`resumed from ${resumeDir} at step ${globalStep}`);
  } else {
    metrics.truncateAfter(-1);
  }

  const stepOnPairs = (pairs: TokenizedPair[], indices: number[], ref: ReferenceSource | undefined, scale: number | null) => torch.tidy(() => {
    const batch = concatenatedBatch(pairs, padTokenId);
    const out = concatenatedForward(policy, batch, lengthNorm);
    const refLogps = ref?.logps(pairs, indices);
    const dtype = out.chosen.dtype;
    const device = out.chosen.device;
    const loss = preferenceLoss({
      policyChosenLogps: out.chosen, policyRejectedLogps: out.rejected,
      referenceChosenLogps: refLogps ? torch.tensor(refLogps.chosen, { dtype, device }) : null,
      referenceRejectedLogps: refLogps ? torch.tensor(refLogps.rejected, { dtype, device }) : null,
      scoreChosen: batch.scoreChosen ? torch.tensor(batch.scoreChosen, { dtype, device }) : null,
      scoreRejected: batch.scoreRejected ? torch.tensor(batch.scoreRejected, { dtype, device }) : null,
      policyChosenLogitsMean: out.chosenLogitsMean, policyRejectedLogitsMean: out.rejectedLogitsMean,
    }, config.objective);
    if (scale !== null) loss.loss.mul(scale).backward();
    const tokens = batch.attentionMask.reduce((n, row) => n + row.reduce((a, b) => a + b, 0), 0);
    return { loss: loss.loss.item(), metrics: loss.metrics as Record<string, number>, tokens };
  });

  const evaluate = (): MetricRow => torch.noGrad(() => {
    const sums: Record<string, number> = {};
    let n = 0;
    for (let start = 0; start < data.eval.length; start += config.perDeviceEvalBatchSize) {
      const indices = Array.from({ length: Math.min(config.perDeviceEvalBatchSize, data.eval.length - start) }, (_, i) => start + i);
      const r = stepOnPairs(indices.map((i) => data.eval[i]), indices, reference?.eval, null);
      for (const [k, v] of Object.entries({ loss: r.loss, ...r.metrics })) if (Number.isFinite(v)) sums[k] = (sums[k] ?? 0) + v * indices.length;
      n += indices.length;
    }
    return Object.fromEntries(Object.entries(sums).map(([k, v]) => [`eval_${k}`, v / n]));
  });

  const log = (row: MetricRow) => { metrics.write(row); hooks.onLog?.(row); };
  const averager = new MetricAverager();
  let tokensSinceLog = 0;
  let timeSinceLog = Date.now();
  let lastTrainRow: MetricRow | null = null;
  let lastEvalRow: MetricRow | null = null;
  let checkpoint: string | null = null;
  let interrupted = false;
  const state = (epochIndex: number, nextBatch: number, epoch: number): TrainerState => ({
    globalStep, epoch, epochIndex, nextBatch, schedulerStep: scheduler.lastStep, rngState: rngStateToBase64(), totalSteps, fingerprint: print,
  });
  const save = async (s: TrainerState) => {
    checkpoint = await saveTrainingCheckpoint(config.outputDir, { model: policy, optimizer, tokenizer: data.tokenizer, state: s }, config.saveTotalLimit);
  };

  try {
    outer: for (let epochIndex = startEpoch; epochIndex < epochs && globalStep < totalSteps; epochIndex++) {
      const order = shuffled(Array.from({ length: data.train.length }, (_, i) => i), config.seed + epochIndex);
      const batches: number[][] = [];
      for (let i = 0; i < order.length; i += batchSize) batches.push(order.slice(i, i + batchSize));
      const firstBatch = epochIndex === startEpoch ? startBatch : 0;
      for (let b = firstBatch; b < batches.length && globalStep < totalSteps; ) {
        // One optimizer step over up to `ga` micro-batches (fewer at the end of an epoch).
        const group = batches.slice(b, Math.min(b + ga, batches.length));
        let loss = 0;
        for (const indices of group) {
          const r = stepOnPairs(indices.map((i) => data.train[i]), indices, reference?.train, 1 / group.length);
          loss += r.loss / group.length;
          averager.add(r.metrics);
          tokensSinceLog += r.tokens;
        }
        b += group.length;
        const gradNorm = torch.clipGradNorm(policy.parameters(), config.maxGradNorm > 0 ? config.maxGradNorm : Infinity);
        const lr = scheduler.getLastLr()[0];
        optimizer.step();
        optimizer.zeroGrad();
        scheduler.step();
        globalStep += 1;
        averager.add({ loss, grad_norm: gradNorm, learning_rate: lr });
        const epoch = epochIndex + b / batches.length;
        const done = globalStep >= totalSteps;
        if (globalStep % config.loggingSteps === 0 || done) {
          const seconds = (Date.now() - timeSinceLog) / 1000;
          const avg = averager.drain();
          lastTrainRow = { step: globalStep, epoch: round(epoch), loss: avg.loss, learning_rate: avg.learning_rate, grad_norm: avg.grad_norm,
            tokens_per_second: tokensSinceLog / Math.max(seconds, 1e-9), ...omit(avg, ["loss", "learning_rate", "grad_norm"]) };
          log(lastTrainRow);
          tokensSinceLog = 0;
          timeSinceLog = Date.now();
        }
        if (data.eval.length && ((config.evalSteps && globalStep % config.evalSteps === 0) || done)) {
          lastEvalRow = { step: globalStep, epoch: round(epoch), ...evaluate() };
          log(lastEvalRow);
        }
        hooks.onProgress?.(globalStep, totalSteps, `loss ${loss.toFixed(4)} lr ${lr.toExponential(2)}`);
        await tick();  // lets signal handlers (SIGINT, SIGTERM) run between steps
        const stop = hooks.shouldStop?.() ?? false;
        if (!done && (stop || (config.saveSteps && globalStep % config.saveSteps === 0))) {
          // The data position is the next micro-batch, in the next epoch when this one is done.
          const epochDone = b >= batches.length;
          await save(state(epochDone ? epochIndex + 1 : epochIndex, epochDone ? 0 : b, epoch));
        }
        if (stop && !done) { interrupted = true; break outer; }
      }
    }
    if (!interrupted) {
      hooks.onStatus?.(`saving the model to ${config.outputDir}`);
      saveModel(policy, config.outputDir);
      await data.tokenizer.save(config.outputDir);
      writeFileSync(join(config.outputDir, "train_results.json"), JSON.stringify({ global_step: globalStep, total_steps: totalSteps, train: lastTrainRow, eval: lastEvalRow }, null, 2) + "\n");
    }
  } finally {
    optimizer.dispose();
    policy.dispose();
    referenceModel?.dispose();
  }
  return { outputDir: config.outputDir, globalStep, totalSteps, interrupted, checkpoint, lastTrainRow, lastEvalRow };
}

function round(x: number): number { return Math.round(x * 1e4) / 1e4; }
function omit(o: Record<string, number>, keys: string[]): Record<string, number> {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !keys.includes(k)));
}
