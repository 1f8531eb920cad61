// Process reward models, as Qwen2.5-Math-PRM's Qwen2ForProcessRewardModel: the Qwen2 decoder
// without its LM head, then at every position a score head Linear(C, C) -> ReLU -> Linear(C, 2)
// (checkpoint tensors score.0.* and score.2.*, both with biases). A step's reward is the softmax
// probability of label 1 at the step-separator token (<extra_0>) that ends it.
import { join } from "node:path";
import * as torch from "../torch/index.js";
import { Linear, type Init } from "../nn/layers.js";
import { Module } from "../nn/module.js";
import { DecoderHead } from "./decoder-head.js";
import { writeJsonAtomic } from "../util/files.js";
import { loadDtype, loadWeights, saveWeights, type LoadOptions, type SaveOptions } from "./auto.js";
import type { CausalLM, ForwardOptions } from "./causal-lm.js";
import { readConfig, type RawConfig } from "./config.js";
import type { ArchitectureSpec } from "./architecture.js";
import { resolveArchitecture } from "./registry.js";

/** Process-reward classes and the causal-LM class whose decoder each one carries. */
const PROCESS_REWARD_CLASSES: Record<string, string> = { Qwen2ForProcessRewardModel: "Qwen2ForCausalLM" };

export interface PrmForwardOptions {
  /** [B, T]: 1 for tokens, 0 for padding. */
  attentionMask?: torch.Tensor | null;
}

/** score: Linear(C, C) -> ReLU -> Linear(C, 2), named as nn.Sequential names them ("0", "2"). */
class ScoreHead extends Module {
  readonly hidden: Linear;
  readonly out: Linear;
  constructor(size: number, init: Init) {
    super();
    this.hidden = this.module("0", new Linear(size, size, true, init));
    this.out = this.module("2", new Linear(size, 2, true, init));
  }
  forward(x: torch.Tensor): torch.Tensor {
    return torch.tidy(() => this.out.forward(this.hidden.forward(x).relu()));
  }
}

export class ProcessRewardModel extends DecoderHead {
  readonly className: string;
  readonly config: RawConfig;
  /** The decoder; its submodules are this module's, so names are the checkpoint's ("model.layers.0..."). */
  readonly body: CausalLM;
  readonly scoreHead: ScoreHead;

  constructor(body: CausalLM, className: string, where: string, init: Init) {
    super();
    if (typeof body.finalNorm !== "function")
      throw new Error(`${where}: architecture '${body.architecture}' has no finalNorm`);
    this.body = body;
    this.className = className;
    this.config = { ...body.config, architectures: [className] };
    this.adoptDecoder(body);
    const hidden = body.namedParameters().find(([n]) => n.endsWith("embed_tokens.weight"))?.[1].shape[1];
    if (hidden === undefined) throw new Error(`${where}: cannot find the embedding to size the score head`);
    this.scoreHead = this.module("score", new ScoreHead(hidden, init));
  }

  get vocabSize(): number {
    return this.body.vocabSize;
  }

  /** Logits [B, T, 2] for input ids [B, T] (int64), at every position. */
  forward(inputIds: torch.Tensor, options: PrmForwardOptions = {}): torch.Tensor {
    if (inputIds.ndim !== 2 || inputIds.dtype !== "int64") {
      throw new Error(
        `${this.className}: input ids must be an int64 tensor [B, T], got ${inputIds.dtype} [${inputIds.shape}]`,
      );
    }
    return torch.tidy(() => {
      const hidden = this.body.hiddenStates(inputIds, options as ForwardOptions); // [B, T, C]
      return this.scoreHead.forward(this.body.finalNorm!(hidden)); // [B, T, 2]
    });
  }

  /**
   * Per row, the probability of label 1 (softmax over the two logits) at each position holding
   * `stepTokenId`, in order: one reward per step. Rows are scored `batchSize` at a time (default
   * 4), longest first, right-padded; no gradients.
   */
  stepRewards(rows: readonly (readonly number[])[], options: { stepTokenId: number; batchSize?: number }): number[][] {
    const { stepTokenId } = options;
    const batchSize = options.batchSize ?? 4;
    if (!Number.isInteger(stepTokenId))
      throw new Error(`stepRewards: stepTokenId must be a token id, got ${stepTokenId}`);
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new Error(`stepRewards: batchSize must be a positive integer, got ${batchSize}`);
    const vocab = this.vocabSize;
    rows.forEach((row, i) => {
      if (!Array.isArray(row) || row.length === 0)
        throw new Error(`stepRewards: row ${i} must be a non-empty list of token ids`);
      row.forEach((id, j) => {
        if (!Number.isInteger(id) || id < 0 || id >= vocab)
          throw new Error(`stepRewards: row ${i}, position ${j}: token id ${id} is not an integer in [0, ${vocab})`);
      });
    });
    const order = rows.map((_, i) => i).sort((a, b) => rows[b].length - rows[a].length);
    const out: number[][] = new Array(rows.length);
    const device = this.device;
    for (let start = 0; start < order.length; start += batchSize) {
      const chunk = order.slice(start, start + batchSize);
      const width = rows[chunk[0]].length;
      const ids = chunk.map((i) => [...rows[i], ...new Array(width - rows[i].length).fill(0)]);
      const mask = chunk.map((i) => Array.from({ length: width }, (_, j) => (j < rows[i].length ? 1 : 0)));
      const probs = torch.noGrad(() =>
        torch.tidy(() => {
          const logits = this.forward(torch.tensor(ids, { dtype: "int64", device }), {
            attentionMask: torch.tensor(mask, { dtype: "int64", device }),
          }); // [b, T, 2]
          return logits.float().softmax(-1).select(2, 1).cpu().data() as Float32Array; // [b, T]
        }),
      );
      chunk.forEach((i, k) => {
        out[i] = [];
        rows[i].forEach((id, t) => {
          if (id === stepTokenId) out[i].push(probs[k * width + t]);
        });
      });
    }
    return out;
  }
}

function build(
  config: RawConfig,
  init: Init,
  where: string,
): { model: ProcessRewardModel; spec: ArchitectureSpec<unknown>; parsed: unknown } {
  const classes = Array.isArray(config.architectures) ? config.architectures : [];
  const className = classes.find((c): c is string => typeof c === "string" && c in PROCESS_REWARD_CLASSES);
  if (!className) {
    throw new Error(
      `${where}: not a process reward model (architectures ${JSON.stringify(config.architectures ?? null)}); ` +
        `supported: ${Object.keys(PROCESS_REWARD_CLASSES).join(", ")}`,
    );
  }
  const spec = resolveArchitecture({ ...config, architectures: [PROCESS_REWARD_CLASSES[className]] }, where);
  const parsed = spec.parseConfig(config);
  const body = new spec.model(config, parsed, init);
  try {
    return { model: new ProcessRewardModel(body, className, where, init), spec, parsed };
  } catch (e) {
    body.dispose();
    throw e;
  }
}

/** A process reward model for `config` with fresh weights. */
export function createProcessRewardModel(config: RawConfig, init: Init = {}): ProcessRewardModel {
  return build(config, init, "config.json").model;
}

/** Loads a process reward model (config.json and safetensors with score.0.* / score.2.*); it starts in eval mode. */
export function loadProcessRewardModel(dir: string, options: LoadOptions = {}): ProcessRewardModel {
  const config = readConfig(dir);
  const dtype = loadDtype(config, options);
  const { model, spec, parsed } = build(config, { dtype, empty: true }, join(dir, "config.json"));
  try {
    loadWeights(dir, model, spec, parsed, dtype, model.className, {
      tensor: "score.0.weight",
      kind: "process-reward head",
    });
    if (options.device && options.device !== "cpu") model.to(options.device);
    return model.eval();
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** Writes config.json (architectures: the process-reward class) and the weights. */
export function saveProcessRewardModel(model: ProcessRewardModel, dir: string, options: SaveOptions = {}): void {
  const dtype = saveWeights(model, dir, options);
  writeJsonAtomic(join(dir, "config.json"), { ...model.config, torch_dtype: dtype });
}

export class AutoModelForProcessRewardModel {
  /** Loads a process reward model from `dir` (Qwen2.5-Math-PRM's layout). */
  static async fromPretrained(dir: string, options: LoadOptions = {}): Promise<ProcessRewardModel> {
    return loadProcessRewardModel(dir, options);
  }
}
