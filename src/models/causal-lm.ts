// What every causal language model here offers the rest of the project.
import type * as torch from "../torch/index.js";
import type { Module } from "../nn/module.js";
import type { KVCache } from "./cache.js";
import type { Architecture, RawConfig } from "./config.js";

export interface ForwardOptions {
  /** [B, past + T]: 1 for tokens, 0 for padding (right padding in training, left in generation). */
  attentionMask?: torch.Tensor | null;
  /** [B, T] explicit positions; by default derived from the attention mask and the cache. */
  positionIds?: torch.Tensor | null;
  /** Keys and values of earlier positions; updated in place with this call's. */
  cache?: KVCache;
}

export interface CausalLM extends Module {
  readonly architecture: Architecture;
  readonly config: RawConfig;
  readonly numLayers: number;
  readonly vocabSize: number;
  readonly maxPositions: number;
  /** Logits [B, T, V] for input ids [B, T] (int64). */
  forward(inputIds: torch.Tensor, options?: ForwardOptions): torch.Tensor;
  /** Checkpoint names that are buffers rather than weights (skipped when loading). */
  isIgnoredCheckpointName(name: string): boolean;
  /** Checkpoint names that alias another parameter when embeddings are tied. */
  tiedNames(): Record<string, string>;
}
