// Reward-model training, as TRL's RewardTrainer: a sequence classifier with one label (a causal
// LM's body with a fresh score head, or an existing reward model) learns to score the chosen
// answer of each preference pair above the rejected one, with the Bradley-Terry loss
// -logsigmoid(r_w - r_l - margin) (objectives/reward.ts). It is the preference trainer with
// another model and another micro-batch loss: the data, the steps, accumulation, the strategy
// (one process, DDP, ZeRO), the callbacks, checkpoints, resume and outputs are all its.
//
// The base trainer types its model as a CausalLM. Every path of it that treats the model as an
// LM (the reference, log-probs, the pair log's values, saving) is overridden here, so the
// classifier is held in `policy` and read back through `classifier`.
import { join } from "node:path";
import * as torch from "../torch/index.js";
import type { CausalLM } from "../models/causal-lm.js";
import { ADAPTER_WEIGHTS, isAdapterDirectory, loadAdapterWeights, saveAdapter } from "../models/peft.js";
import { defaultLoraTargets } from "../models/registry.js";
import {
  classifierFromDirectory,
  saveSequenceClassifier,
  type SequenceClassifier,
} from "../models/sequence-classification.js";
import { attachLora, loraOf } from "../nn/lora.js";
import { RecomputeTape } from "../nn/recompute.js";
import { rewardLoss } from "../objectives/index.js";
import { concatenatedBatch, type TokenizedPair } from "../data/tokenize.js";
import { DataError, where, type PreferenceRecord } from "../data/records.js";
import { readPreferenceFile } from "../data/readers.js";
import { batchesOf } from "../logprobs/pairs.js";
import { ConfigError, type TrainConfig } from "./config.js";
import { LORA_KEYS, PreferenceTrainer, type MicroBatchOutput, type TrainOptions, type TrainResult } from "./trainer.js";

/**
 * TRL reads a dataset's margin column for every pair: a run's records (train and eval files) all
 * have a `margin` or none does. Otherwise an error names the first record without one.
 */
async function checkMarginColumn(config: TrainConfig): Promise<void> {
  const files = [
    ...(config.trainDataPath !== null ? [config.trainDataPath] : Object.keys(config.datasetMixer ?? {})),
    ...[config.evalFile, config.evalDataPath].filter((f): f is string => !!f),
  ];
  let withMargin: PreferenceRecord | undefined;
  let without: PreferenceRecord | undefined;
  for (const file of files) {
    for (const r of await readPreferenceFile(file)) {
      if (r.margin === undefined) without ??= r;
      else withMargin ??= r;
    }
    if (withMargin && without) {
      throw new DataError([
        `${where(without.source)}: field 'margin': missing, while ${where(withMargin.source)} has one ` +
          "(the margin column applies to every pair: give each record a margin, or none)",
      ]);
    }
  }
}

export class RewardTrainer extends PreferenceTrainer {
  /** The reward model being trained. */
  get classifier(): SequenceClassifier {
    return this.policy as unknown as SequenceClassifier;
  }

  override lossName(): string {
    return "bradley_terry";
  }

  /** Checks the margin column (before the base trainer reads the data), then trains. */
  override async train(): Promise<TrainResult> {
    await checkMarginColumn(this.config);
    return super.train();
  }

  /** No reference model: a reward model's loss reads only its own scores. */
  override setUpReference(): void {}

  /**
   * The classifier (num_labels 1): a reward model as it is, or a causal LM's body with a fresh
   * score head (classifierFromDirectory), from the checkpoint being resumed, else
   * model_name_or_path. Its pad_token_id is the run's padding token, as TRL sets it: the score is
   * read at each row's last other token. With use_peft, LoRA adapters on its frozen body and the
   * score head trained in full (modules_to_save, as PEFT does for SEQ_CLS); a resumed LoRA
   * checkpoint is an adapter directory whose weights go onto model_name_or_path's classifier.
   */
  override loadPolicy(checkpoint: string | null, device: torch.Device): CausalLM {
    const { config } = this;
    const options = { device, dtype: config.torchDtype ?? "float32" };
    const adapter = checkpoint !== null && isAdapterDirectory(checkpoint) ? checkpoint : null;
    const dir = adapter === null ? (checkpoint ?? config.modelNameOrPath) : config.modelNameOrPath;
    const model = classifierFromDirectory(dir, options, { pad_token_id: this.padTokenId });
    try {
      if (model.numLabels !== 1) {
        throw new ConfigError(
          `${dir}: a reward model has one label; this classifier has ${model.numLabels} (config.json's id2label / num_labels)`,
        );
      }
      if (config.usePeft && !loraOf(model)) {
        const lora = attachLora(
          model,
          {
            r: config.loraR,
            alpha: config.loraAlpha,
            dropout: config.loraDropout,
            targetModules:
              (config.loraTargetModules as string[] | string | null) ??
              defaultLoraTargets(model.body, "key 'lora_target_modules'"),
            modulesToSave: [...new Set([...((config.loraModulesToSave as string[] | null) ?? []), "score"])],
            useRslora: config.useRslora,
          },
          config.source,
          LORA_KEYS,
        );
        if (adapter !== null) loadAdapterWeights(lora, join(adapter, ADAPTER_WEIGHTS), config.modelNameOrPath);
      }
    } catch (e) {
      model.dispose();
      throw e;
    }
    // Dropout stays off, as TRL's disable_dropout does by default.
    model.eval();
    const policy = model as unknown as CausalLM;
    this.strategy.prepareModel(policy, config.seed);
    return policy;
  }

  /** Rewards [B] of the chosen and the rejected answers of `pairs`: one forward over both (float32, or float64). */
  rewards(
    pairs: TokenizedPair[],
    recompute: RecomputeTape | null,
  ): { chosen: torch.Tensor; rejected: torch.Tensor; tokens: number } {
    const batch = concatenatedBatch(pairs, this.padTokenId);
    const device = this.classifier.device;
    const ids = torch.tensor(batch.inputIds, { dtype: "int64", device }); // [2B, T]
    const mask = torch.tensor(batch.attentionMask, { dtype: "int64", device }); // [2B, T]
    const logits = this.classifier.forward(ids, { attentionMask: mask, ...(recompute ? { recompute } : {}) }); // [2B, 1]
    // The loss in float32 at least (bf16 logits are cast up; float64 stays float64).
    const scores = (logits.dtype === "float64" ? logits : logits.float()).squeeze(-1); // [2B]
    const b = pairs.length;
    const tokens = batch.attentionMask.reduce((sum, row) => sum + row.reduce((a, x) => a + x, 0), 0);
    return { chosen: scores.narrow(0, 0, b), rejected: scores.narrow(0, b, b), tokens };
  }

  /** One micro-batch: the rewards of chosen and rejected, the Bradley-Terry loss and TRL's metrics. */
  override computeLoss(pairs: TokenizedPair[]): MicroBatchOutput {
    // With gradient_checkpointing the body's layers are recomputed in backward (trainingStep runs the tape).
    const recompute = torch.isGradEnabled() && this.config.gradientCheckpointing ? new RecomputeTape() : null;
    try {
      const { chosen, rejected, tokens } = this.rewards(pairs, recompute);
      const margin =
        pairs[0].margin === undefined
          ? null
          : torch.tensor(
              pairs.map((p) => p.margin!),
              { dtype: chosen.dtype, device: chosen.device },
            ); // [B]
      const { loss, metrics } = rewardLoss(chosen, rejected, margin, {
        centerRewardsCoefficient: this.config.centerRewardsCoefficient,
      });
      return { loss, metrics, tokens, recompute };
    } catch (e) {
      recompute?.dispose();
      throw e;
    }
  }

  /** The pair log's values: each sampled pair's reward gap r_w - r_l. */
  override pairValues(ids: number[]): { margins: number[]; metrics: Record<string, number[] | number> } {
    const margins: number[] = [];
    torch.noGrad(() => {
      for (const indices of batchesOf(ids, this.config.perDeviceEvalBatchSize)) {
        margins.push(
          ...torch.tidy(() =>
            this.withMixedPrecision("train", this.classifier.device, () => {
              const { chosen, rejected } = this.rewards(
                indices.map((i) => this.data.train[i]),
                null,
              );
              return chosen.sub(rejected).toArray() as number[];
            }),
          ),
        );
      }
    });
    return { margins, metrics: {} };
  }

  /**
   * The classifier in transformers' format (config.json naming *ForSequenceClassification,
   * score.weight); with use_peft, its adapter in PEFT's layout with task_type SEQ_CLS.
   */
  override saveModel(dir: string): void {
    if (loraOf(this.classifier))
      saveAdapter(this.classifier, dir, { baseModelNameOrPath: this.adapterBase(), taskType: "SEQ_CLS" });
    else saveSequenceClassifier(this.classifier, dir);
  }
}

/**
 * Trains a reward model as this process's environment says (one rank of a distributed run when
 * WORLD_SIZE is set, else alone); `options.callbacks` join the built-in ones.
 */
export function trainRewardModel(config: TrainConfig, options: TrainOptions = {}): Promise<TrainResult> {
  return new RewardTrainer(config, options).train();
}
