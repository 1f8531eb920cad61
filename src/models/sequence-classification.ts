// Sequence-classification models (reward models), as transformers' LlamaForSequenceClassification
// and its siblings: a registered decoder architecture's body without its LM head, plus
// score.weight [num_labels, C] (no bias), read at each row's last non-padding token. Which
// architectures have one is declared in the registry (ArchitectureSpec.sequenceClassifiers); the
// body, its config parser and its checkpoint rules are the causal LM's, so an architecture gains
// a classifier by listing the class name and offering CausalLM.finalNorm.
import { join } from "node:path";
import * as torch from "../torch/index.js";
import { Linear, type Init } from "../nn/layers.js";
import { DecoderHead } from "./decoder-head.js";
import type { RecomputeTape } from "../nn/recompute.js";
import { writeJsonAtomic } from "../util/files.js";
import { loadDtype, loadModel, loadWeights, saveWeights, type LoadOptions, type SaveOptions } from "./auto.js";
import type { CausalLM } from "./causal-lm.js";
import { parseModelConfig, readConfig, type RawConfig } from "./config.js";
import type { ArchitectureSpec } from "./architecture.js";
import { resolveSequenceClassifier } from "./registry.js";
import { applyAdapter, isAdapterDirectory, readAdapterConfig, tokenizerDirectory } from "./peft.js";
import { Tokenizer } from "../text/index.js";

export interface ClassifierForwardOptions {
  /** [B, T]: 1 for tokens, 0 for padding (left or right). The pooled token comes from pad_token_id, not from this. */
  attentionMask?: torch.Tensor | null;
  /** Gradient checkpointing of the body, as CausalLM.hiddenStates takes it. */
  recompute?: RecomputeTape;
}

/** num_labels as transformers derives it: id2label's size when present, else num_labels, else 2. */
function numLabelsOf(config: RawConfig, where: string): number {
  const id2label = config.id2label;
  if (id2label !== undefined && id2label !== null) {
    if (typeof id2label !== "object" || Array.isArray(id2label) || Object.keys(id2label).length === 0) {
      throw new Error(
        `${where}: field id2label must be a non-empty object of label names, got ${JSON.stringify(id2label)}`,
      );
    }
    return Object.keys(id2label).length;
  }
  const n = config.num_labels ?? 2;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1)
    throw new Error(`${where}: field num_labels must be a positive integer, got ${JSON.stringify(n)}`);
  return n;
}

function padTokenOf(config: RawConfig, where: string): number | null {
  const pad = config.pad_token_id;
  if (pad === undefined || pad === null) return null;
  if (typeof pad !== "number" || !Number.isInteger(pad) || pad < 0)
    throw new Error(`${where}: field pad_token_id must be a non-negative integer or null, got ${JSON.stringify(pad)}`);
  return pad;
}

export class SequenceClassifier extends DecoderHead {
  /** The body's registered architecture ("llama", "qwen2", ...). */
  readonly architecture: string;
  /** config.json, with `architectures` naming the classifier class; saved back as it is. */
  readonly config: RawConfig;
  readonly numLabels: number;
  /** config.json's pad_token_id: the pooled token is the last one that is not this (null: the last token, batch 1 only). */
  readonly padTokenId: number | null;
  /** The decoder without its LM head; its submodules are this module's, so parameter names are the checkpoint's ("model.layers.0..."). */
  readonly body: CausalLM;
  /** score.weight [num_labels, C]. */
  readonly scoreHead: Linear;

  /** `overrides` replace fields of the body's config.json (num_labels and pad_token_id for a fresh head). */
  constructor(
    body: CausalLM,
    readonly className: string,
    where: string,
    init: Init,
    overrides: RawConfig = {},
  ) {
    super();
    if (typeof body.finalNorm !== "function") {
      throw new Error(
        `${where}: architecture '${body.architecture}' lists ${className} but its model has no finalNorm`,
      );
    }
    this.body = body;
    this.architecture = body.architecture;
    this.config = { ...body.config, ...overrides, architectures: [className] };
    this.numLabels = numLabelsOf(this.config, where);
    this.padTokenId = padTokenOf(this.config, where);
    this.adoptDecoder(body);
    if (this.namedParameters().length !== body.namedParameters().length) {
      throw new Error(
        `${where}: architecture '${body.architecture}' keeps parameters outside its submodules; a classifier cannot adopt them`,
      );
    }
    const hidden = body.namedParameters().find(([n]) => /embed_tokens\.weight$|wte\.weight$/.test(n))?.[1].shape[1];
    if (hidden === undefined)
      throw new Error(
        `${where}: cannot find the embedding of architecture '${body.architecture}' to size score.weight`,
      );
    this.scoreHead = this.module("score", new Linear(hidden, this.numLabels, false, init));
  }

  get vocabSize(): number {
    return this.body.vocabSize;
  }

  /**
   * Each row's pooled position [B] (int64), as transformers: the rightmost token that is not
   * pad_token_id (so left and right padding both work; a row of padding gives 0). Without
   * pad_token_id only a batch of one can be scored, at its last token.
   */
  lastTokenIndices(inputIds: torch.Tensor): torch.Tensor {
    const [b, t] = inputIds.shape;
    if (this.padTokenId === null) {
      if (b !== 1)
        throw new Error(
          `${this.className}: cannot score a batch of ${b} rows: config.json has no pad_token_id to find each row's last token (set pad_token_id, or score one row at a time)`,
        );
      return torch.full([1], t - 1, { dtype: "int64", device: inputIds.device });
    }
    const pad = this.padTokenId;
    return torch.tidy(() => {
      const notPad = inputIds.ne(pad).to("int64"); // [B, T]
      return torch.arange(0, t, 1, { device: inputIds.device }).unsqueeze(0).mul(notPad).argmax(-1); // [B]
    });
  }

  /** Logits [B, num_labels] in the compute dtype for input ids [B, T] (int64), at each row's last non-padding token: transformers' forward. */
  forward(inputIds: torch.Tensor, options: ClassifierForwardOptions = {}): torch.Tensor {
    if (inputIds.ndim !== 2 || inputIds.dtype !== "int64") {
      throw new Error(
        `${this.className}: input ids must be an int64 tensor [B, T], got ${inputIds.dtype} [${inputIds.shape}]`,
      );
    }
    const [b] = inputIds.shape;
    return torch.tidy(() => {
      const last = this.lastTokenIndices(inputIds); // [B]
      const hidden = this.body.hiddenStates(inputIds, options); // [B, T, C]
      const c = hidden.shape[2];
      // Norm and score act per position, so only the pooled one goes through them.
      const pooled = hidden.gather(1, last.view(b, 1, 1).expand(b, 1, c)).squeeze(1); // [B, C]
      return this.scoreHead.forward(this.body.finalNorm!(pooled)); // [B, L]
    });
  }

  /** forward() as float32 [B, num_labels] (differentiable): the scores a reward model gives. */
  score(inputIds: torch.Tensor, options: ClassifierForwardOptions = {}): torch.Tensor {
    return torch.tidy(() => this.forward(inputIds, options).float());
  }

  /**
   * Scores token-id rows without gradients: one number per label per row ([N][num_labels]),
   * `batchSize` rows at a time (default 8; rows of similar length batched together), each batch
   * right-padded with pad_token_id. Without pad_token_id each row is scored alone.
   */
  scoreTokenLists(rows: readonly (readonly number[])[], options: { batchSize?: number } = {}): number[][] {
    const batchSize = this.padTokenId === null ? 1 : (options.batchSize ?? 8);
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new Error(`scoreTokenLists: batchSize must be a positive integer, got ${options.batchSize}`);
    const vocab = this.vocabSize;
    rows.forEach((row, i) => {
      if (!Array.isArray(row) || row.length === 0)
        throw new Error(`scoreTokenLists: row ${i} must be a non-empty list of token ids`);
      row.forEach((id, j) => {
        if (!Number.isInteger(id) || id < 0 || id >= vocab)
          throw new Error(
            `scoreTokenLists: row ${i}, position ${j}: token id ${id} is not an integer in [0, ${vocab})`,
          );
      });
    });
    const order = rows.map((_, i) => i).sort((a, b) => rows[b].length - rows[a].length);
    const out: number[][] = new Array(rows.length);
    const device = this.device;
    for (let start = 0; start < order.length; start += batchSize) {
      const chunk = order.slice(start, start + batchSize);
      const width = rows[chunk[0]].length; // the longest: sorted by length, descending
      const ids = chunk.map((i) => [...rows[i], ...new Array(width - rows[i].length).fill(this.padTokenId ?? 0)]);
      const mask = chunk.map((i) => Array.from({ length: width }, (_, j) => (j < rows[i].length ? 1 : 0)));
      const scores = torch.noGrad(() =>
        torch.tidy(() => {
          const s = this.score(torch.tensor(ids, { dtype: "int64", device }), {
            attentionMask: torch.tensor(mask, { dtype: "int64", device }),
          });
          return s.data() as Float32Array;
        }),
      );
      chunk.forEach((i, k) => {
        out[i] = Array.from(scores.subarray(k * this.numLabels, (k + 1) * this.numLabels));
      });
    }
    return out;
  }
}

/** The classifier of `config` (its class from the registry) over a fresh body built with `init`. */
function build(
  config: RawConfig,
  init: Init,
  where: string,
): { model: SequenceClassifier; spec: ArchitectureSpec<unknown>; parsed: unknown } {
  const { spec, className } = resolveSequenceClassifier(config, where);
  const parsed = parseModelConfig((raw) => spec.parseConfig(raw), config, where);
  const body = new spec.model(config, parsed, init);
  try {
    return { model: new SequenceClassifier(body, className, where, init), spec, parsed };
  } catch (e) {
    body.dispose();
    throw e;
  }
}

/** A sequence classifier for `config` with fresh (random, seeded by manualSeed) weights. */
export function createSequenceClassifier(config: RawConfig, init: Init = {}): SequenceClassifier {
  return build(config, init, "config.json").model;
}

/**
 * Loads a sequence classifier (config.json and safetensors weights with score.weight); it starts
 * in eval mode. `overrides` replace config.json's fields (a trainer's pad_token_id).
 */
export function loadSequenceClassifier(
  dir: string,
  options: LoadOptions = {},
  overrides: RawConfig = {},
): SequenceClassifier {
  if (isAdapterDirectory(dir)) return loadClassifierAdapter(dir, options);
  const config = { ...readConfig(dir), ...overrides };
  const dtype = loadDtype(config, options);
  const { model, spec, parsed } = build(config, { dtype, empty: true }, join(dir, "config.json"));
  try {
    loadWeights(dir, model, spec, parsed, dtype, model.className, {
      tensor: "score.weight",
      kind: "sequence-classification head",
    });
    if (options.device && options.device !== "cpu") model.to(options.device);
    return model.eval();
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * A classifier over a loaded causal LM's body (its LM head dropped) with a fresh score head,
 * as transformers' AutoModelForSequenceClassification.from_pretrained(causal_lm_dir, num_labels=N):
 * score.weight drawn from N(0, initializer_range) (0.02 when config.json has none), in the body's
 * dtype and on its device. `overrides` set num_labels, pad_token_id...; `where` names the source in errors.
 */
export function classifierOnCausalLM(body: CausalLM, overrides: RawConfig, where: string): SequenceClassifier {
  const { className } = resolveSequenceClassifier(body.config, where);
  const range = body.config.initializer_range;
  const std = typeof range === "number" && range > 0 ? range : 0.02;
  const dtype = body.parameters()[0]?.dtype ?? "float32";
  const device = body.device;
  const model = new SequenceClassifier(body, className, where, { dtype, std }, overrides);
  if (device !== "cpu") model.to(device);
  return model;
}

/** Whether `dir` holds a sequence classifier (config.json names a *ForSequenceClassification class). */
export function isClassifierDirectory(dir: string): boolean {
  const architectures = readConfig(dir).architectures;
  return (
    Array.isArray(architectures) &&
    architectures.some((a) => typeof a === "string" && a.endsWith("ForSequenceClassification"))
  );
}

/**
 * The classifier a reward model is trained from: `dir` as it is when it holds a classifier, else
 * its causal LM's body with a fresh one-label score head (classifierOnCausalLM). `overrides`
 * replace config.json's fields (pad_token_id).
 */
export function classifierFromDirectory(
  dir: string,
  options: LoadOptions = {},
  overrides: RawConfig = {},
): SequenceClassifier {
  if (isClassifierDirectory(dir)) return loadSequenceClassifier(dir, options, overrides);
  return classifierOnCausalLM(
    loadModel(dir, options),
    { ...overrides, num_labels: 1, id2label: { 0: "LABEL_0" } },
    dir,
  );
}

/**
 * A sequence classifier's LoRA adapter (PEFT's layout, task_type SEQ_CLS; its score head in
 * modules_to_save), on its base: a classifier, or a causal LM given a one-label head that the
 * adapter's score.weight replaces. The pooled token is the adapter's tokenizer's pad token (else
 * EOS), as train-rm set pad_token_id while training it.
 */
function loadClassifierAdapter(dir: string, options: LoadOptions): SequenceClassifier {
  const adapter = readAdapterConfig(dir);
  if (adapter.taskType !== "SEQ_CLS") {
    throw new Error(
      `${join(dir, "adapter_config.json")}: field task_type is ${adapter.taskType}: a causal LM's adapter, not a sequence classifier's`,
    );
  }
  const tokenizer = Tokenizer.fromPretrainedSync(tokenizerDirectory(dir));
  const pad = tokenizer.padTokenId ?? tokenizer.eosTokenId ?? null;
  const model = classifierFromDirectory(
    adapter.baseDir,
    { ...options, dtype: options.dtype ?? "float32" },
    { pad_token_id: pad },
  );
  try {
    applyAdapter(model, dir, adapter);
    return model.eval();
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Writes config.json (architectures: the classifier class; id2label when it had none) and the weights. */
export function saveSequenceClassifier(model: SequenceClassifier, dir: string, options: SaveOptions = {}): void {
  const dtype = saveWeights(model, dir, options);
  // transformers reads num_labels back from id2label.
  const id2label =
    model.config.id2label ??
    Object.fromEntries(Array.from({ length: model.numLabels }, (_, i) => [String(i), `LABEL_${i}`]));
  writeJsonAtomic(join(dir, "config.json"), { ...model.config, id2label, torch_dtype: dtype });
}

export class AutoModelForSequenceClassification {
  /** Loads a sequence-classification (reward) model from `dir`, as transformers' class of this name. */
  static async fromPretrained(dir: string, options: LoadOptions = {}): Promise<SequenceClassifier> {
    return loadSequenceClassifier(dir, options);
  }
}
