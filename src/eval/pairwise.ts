// Pairwise preference accuracy: on held-out pairs, how often a model's implied reward of the
// chosen answer beats the rejected one's, and the mean rewards. With a reference model the
// reward is DPO's, beta * (logp - ref); without one it is SimPO's, beta * logp (length-normalised
// by default). Data go through the training tokenisation, log-probs through the training
// forward (one concatenated chosen+rejected pass), all under noGrad.
import { loadModel } from "../models/auto.js";
import { tokenizerDirectory } from "../models/peft.js";
import type { CausalLM } from "../models/causal-lm.js";
import { AutoProcessor, Tokenizer } from "../text/index.js";
import { readPreferenceFile } from "../data/readers.js";
import { DataError, where, type Source } from "../data/records.js";
import { checkTokenIds, modelVocab, pairTokenRows } from "../models/vocab.js";
import { tokenizeRecords, TOKENIZE_DEFAULTS, type ChatRendering, type TokenizedPair } from "../data/tokenize.js";
import { pairLogps, type PairLogps, type PairVision } from "../logprobs/pairs.js";
import { directoryTakesImages } from "../models/registry.js";
import { readImagePreferenceData } from "../data/image-records.js";
import { IMAGE_TOKENIZE_DEFAULTS, tokenizeImageRecords } from "../data/image-tokenize.js";
import { assertFinite } from "../util/finite.js";

/** The shared batching loop, also offered here beside the metrics built on it. */
export { pairLogps };

export interface PairwiseOptions {
  /** Reward scale (default 0.1 with a reference, as DPO; 2.0 without, as SimPO). Accuracy does not depend on it. */
  beta?: number;
  /** Pairs per forward pass (default 8; each pass runs 2x this many rows). */
  batchSize?: number;
  /** Mean (true, default) or sum (false) of the response tokens' log-probs. */
  lengthNorm?: boolean;
  /** Called after each batch with pairs done and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface PairwiseResult {
  pairs: number;
  /** Fraction of pairs whose chosen reward is strictly above the rejected one's. */
  accuracy: number;
  /** Pairs whose two rewards are equal (counted as not correct). */
  ties: number;
  /** Mean implied rewards, and the mean of (chosen - rejected). */
  rewards: { chosen: number; rejected: number; margin: number };
  /** Mean policy log-probs of the answers (mean or sum per answer, as lengthNorm says). */
  logps: { chosen: number; rejected: number };
  /** Per-pair rewards, in the file's order. */
  perPair: { chosen: number[]; rejected: number[] };
  reference: boolean;
  beta: number;
  lengthNorm: boolean;
}

/** Which model's log-prob of which pair (1-based, in the data's order) is first to be NaN or infinite. */
function firstNonFinite(label: string, logps: PairLogps | null): string | null {
  if (!logps) return null;
  for (let i = 0; i < logps.chosen.length; i++) {
    for (const side of ["chosen", "rejected"] as const) {
      if (!Number.isFinite(logps[side][i])) return `${label}'s ${side} log-prob of pair ${i + 1} is ${logps[side][i]}`;
    }
  }
  return null;
}

/**
 * Evaluates `model` on tokenised pairs, against `reference` when given. Both models run in
 * eval mode; with a reference, each batch goes through the policy and then the reference.
 */
export function evaluatePairs(
  model: CausalLM,
  pairs: TokenizedPair[],
  options: PairwiseOptions & { reference?: CausalLM | null; padTokenId: number; vision?: PairVision | null },
): PairwiseResult {
  if (pairs.length === 0) throw new DataError(["no pairs to evaluate"]);
  const hasRef = Boolean(options.reference);
  const beta = options.beta ?? (hasRef ? 0.1 : 2.0);
  if (!(beta > 0) || !Number.isFinite(beta)) throw new RangeError(`beta must be a positive number, got ${beta}`);
  const lengthNorm = options.lengthNorm ?? true;
  const batchSize = options.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`batch size must be a positive integer, got ${batchSize}`);
  model.eval();
  options.reference?.eval();
  // Progress counts forward passes over pairs: the policy's, then the reference's.
  const passes = hasRef ? 2 : 1;
  const total = pairs.length * passes;
  const vision = { vision: options.vision };
  const policy = pairLogps(
    model,
    pairs,
    options.padTokenId,
    lengthNorm,
    batchSize,
    (done) => options.onProgress?.(done, total),
    vision,
  );
  const ref = options.reference
    ? pairLogps(
        options.reference,
        pairs,
        options.padTokenId,
        lengthNorm,
        batchSize,
        (done) => options.onProgress?.(pairs.length + done, total),
        vision,
      )
    : null;
  const chosen = policy.chosen.map((lp, i) => beta * (lp - (ref ? ref.chosen[i] : 0)));
  const rejected = policy.rejected.map((lp, i) => beta * (lp - (ref ? ref.rejected[i] : 0)));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const correct = chosen.filter((c, i) => c > rejected[i]).length;
  const ties = chosen.filter((c, i) => c === rejected[i]).length;
  const rewards = {
    chosen: mean(chosen),
    rejected: mean(rejected),
    margin: mean(chosen.map((c, i) => c - rejected[i])),
  };
  const logps = { chosen: mean(policy.chosen), rejected: mean(policy.rejected) };
  // A NaN reward compares false both ways, so NaN weights would read as 0% accuracy, not as broken.
  const culprit = firstNonFinite("the model", policy) ?? firstNonFinite("the reference", ref);
  assertFinite(
    {
      "logps/chosen": logps.chosen,
      "logps/rejected": logps.rejected,
      "rewards/chosen": rewards.chosen,
      "rewards/rejected": rewards.rejected,
      "rewards/margins": rewards.margin,
    },
    "eval",
    culprit,
  );
  return {
    pairs: pairs.length,
    accuracy: correct / pairs.length,
    ties,
    rewards,
    logps,
    perPair: { chosen, rejected },
    reference: hasRef,
    beta,
    lengthNorm,
  };
}

export interface PairwiseFileOptions extends PairwiseOptions {
  /** The model to evaluate (a Hugging Face layout directory with its tokenizer). */
  model: string;
  /** The preference file (.jsonl, .json, .parquet). */
  data: string;
  /** A reference model directory; without it rewards are beta * logp. */
  ref?: string | null;
  maxLength?: number;
  maxPromptLength?: number;
  truncationMode?: "keep_end" | "keep_start";
  chatTemplate?: string;
  /** How conversational records become text (default "trl", as training's chat_rendering). */
  chatRendering?: ChatRendering;
  /** Where the models run (default cpu). */
  device?: "cpu" | "cuda" | `cuda:${number}`;
  /** Phases ("tokenizing 120 pairs", "loading the model"). */
  onStatus?: (message: string) => void;
}

export interface PairwiseFileResult extends PairwiseResult {
  model: string;
  ref: string | null;
  data: string;
  /** Pairs cut to max_length / max_prompt_length. */
  truncated: number;
  maxLength: number;
  maxPromptLength: number;
}

/**
 * The file's pairs tokenised for the model: image preference records with a vision-language
 * model's processor (cut at maxLength, as training does), else text records with its tokenizer.
 */
async function readPairs(
  options: PairwiseFileOptions,
  maxLength: number,
  maxPromptLength: number,
): Promise<{ pairs: TokenizedPair[]; sources: { source: Source }[]; tokenizer: Tokenizer; vision: PairVision | null }> {
  const dir = tokenizerDirectory(options.model);
  if (directoryTakesImages(options.model)) {
    const { records, imageSizes } = await readImagePreferenceData(options.data);
    const vision = {
      processor: AutoProcessor.fromPretrained(dir),
      options: { ...IMAGE_TOKENIZE_DEFAULTS, cutoffLen: maxLength },
    };
    options.onStatus?.(`tokenizing ${records.length} image pairs`);
    const pairs = tokenizeImageRecords(records, vision.processor, vision.options, imageSizes);
    return { pairs, sources: records, tokenizer: vision.processor.tokenizer, vision };
  }
  const records = await readPreferenceFile(options.data);
  const tokenizer = Tokenizer.fromPretrainedSync(dir);
  options.onStatus?.(`tokenizing ${records.length} pairs`);
  const pairs = tokenizeRecords(records, tokenizer, {
    maxLength,
    maxPromptLength,
    truncationMode: options.truncationMode ?? TOKENIZE_DEFAULTS.truncationMode,
    chatTemplate: options.chatTemplate,
    chatRendering: options.chatRendering,
  });
  return { pairs, sources: records, tokenizer, vision: null };
}

/** Reads and tokenises a preference file with the model's tokenizer (or processor), loads the models and evaluates. */
export async function evaluatePairwiseFile(options: PairwiseFileOptions): Promise<PairwiseFileResult> {
  const maxLength = options.maxLength ?? TOKENIZE_DEFAULTS.maxLength;
  const maxPromptLength = options.maxPromptLength ?? TOKENIZE_DEFAULTS.maxPromptLength;
  if (!(maxPromptLength < maxLength))
    throw new RangeError(`max_prompt_length (${maxPromptLength}) must be below max_length (${maxLength})`);
  const { pairs, sources: records, tokenizer, vision } = await readPairs(options, maxLength, maxPromptLength);
  if (tokenizer.eosTokenId === undefined) throw new DataError([`${options.model}: the tokenizer has no eos_token`]);
  const padTokenId = tokenizer.padTokenId ?? tokenizer.eosTokenId;
  // Before loading: ids the policy's or the reference's embedding lacks name the record, not the engine.
  const pad = { at: "the pad token", ids: [padTokenId] };
  const rows = () => [...pairTokenRows(pairs, (i) => where(records[i].source)), pad];
  for (const dir of [options.model, options.ref]) {
    if (dir) checkTokenIds(rows(), modelVocab(dir), tokenizerDirectory(options.model));
  }
  options.onStatus?.(`loading ${options.model}${options.ref ? ` and ${options.ref}` : ""}`);
  const model = loadModel(options.model, { device: options.device });
  let reference: CausalLM | null = null;
  try {
    if (options.ref) reference = loadModel(options.ref, { device: options.device }).requiresGrad_(false) as CausalLM;
    model.requiresGrad_(false);
    const r = evaluatePairs(model, pairs, { ...options, reference, padTokenId, vision });
    return {
      ...r,
      model: options.model,
      ref: options.ref ?? null,
      data: options.data,
      truncated: pairs.filter((p) => p.truncated).length,
      maxLength,
      maxPromptLength,
    };
  } finally {
    model.dispose();
    reference?.dispose();
  }
}

export function formatPairwise(r: PairwiseFileResult): string {
  const f = (x: number) => (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : x.toFixed(4));
  const kind = r.reference
    ? `beta * (logp - ref), beta ${r.beta}, reference ${r.ref}`
    : `beta * logp (no reference, SimPO-style), beta ${r.beta}`;
  return [
    `${r.model} on ${r.data}: ${r.pairs} pairs${r.truncated ? ` (${r.truncated} truncated at ${r.maxLength}/${r.maxPromptLength})` : ""}`,
    `rewards: ${kind}; log-probs ${r.lengthNorm ? "length-normalised (mean per token)" : "summed over tokens"}`,
    "",
    `accuracy          ${(100 * r.accuracy).toFixed(2)}%  (chosen reward > rejected${r.ties ? `; ${r.ties} ties count as wrong` : ""})`,
    `reward chosen     ${f(r.rewards.chosen)}`,
    `reward rejected   ${f(r.rewards.rejected)}`,
    `reward margin     ${f(r.rewards.margin)}`,
    `logp chosen       ${f(r.logps.chosen)}`,
    `logp rejected     ${f(r.logps.rejected)}`,
  ].join("\n");
}
