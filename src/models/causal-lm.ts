// What every causal language model here offers the rest of the project, and the one decoder
// forward pass the architectures share: positions and attention masks made once per call, the
// KV cache, and the loop that runs each layer in its own scope. Every architecture feeds its
// embedding, layers and head to DecoderLM; the loop in DecoderLM.forward is the only place a
// decoder layer is called from during a forward pass. With a recompute tape (gradient
// checkpointing) each layer is a tape segment: only its input [B, T, C] is kept between forward
// and backward, and backward recomputes the layer from it.
import * as torch from "../torch/index.js";
import { Module } from "../nn/module.js";
import type { RecomputeTape } from "../nn/recompute.js";
import { forEachTensor } from "../torch/scope.js";
import { attentionMask, positionIds } from "./attention.js";
import type { KVCache } from "./cache.js";
import type { RawConfig } from "./config.js";
import { generationConfigFromModelConfig, type GenerationConfig } from "./generation-config.js";

export interface ForwardOptions {
  /** [B, past + T]: 1 for tokens, 0 for padding (right padding in training, left in generation). */
  attentionMask?: torch.Tensor | null;
  /** [B, T] explicit positions; by default derived from the attention mask and the cache. */
  positionIds?: torch.Tensor | null;
  /** Keys and values of earlier positions; updated in place with this call's. */
  cache?: KVCache;
}

export interface HiddenStatesOptions extends ForwardOptions {
  /**
   * Gradient checkpointing: each decoder layer runs as a segment of this tape (forward under
   * no-grad, recomputed with grad by tape.backward() after loss.backward()). Not with a cache.
   */
  recompute?: RecomputeTape;
}

export interface CausalLM extends Module {
  /** The registered architecture's name ("gpt2", "llama", ...). */
  readonly architecture: string;
  /** config.json as read (or as given to createModel); saved back unchanged. */
  readonly config: RawConfig;
  readonly numLayers: number;
  readonly vocabSize: number;
  readonly maxPositions: number;
  /** EOS, BOS and pad ids: generation_config.json's when loaded from a directory with one. */
  generationConfig: GenerationConfig;
  /** Logits [B, T, V] for input ids [B, T] (int64). */
  forward(inputIds: torch.Tensor, options?: ForwardOptions): torch.Tensor;
  /** The last decoder layer's output [B, T, C] (before the final norm) for input ids [B, T]: forward without the head. */
  hiddenStates(inputIds: torch.Tensor, options?: HiddenStatesOptions): torch.Tensor;
  /**
   * The final norm and the LM head: hidden states [..., C] -> logits [..., V]. Both act on each
   * position alone, so any subset of positions (the response tokens, a chunk of them) may go
   * through it, and gives the logits forward() gives at those positions.
   */
  logitsFromHidden(hidden: torch.Tensor): torch.Tensor;
  /**
   * The final norm alone: hidden states [..., C] -> [..., C], what the base model (LlamaModel)
   * returns and a sequence-classification head reads. Architectures with classifiers have it.
   */
  finalNorm?(hidden: torch.Tensor): torch.Tensor;
  /** Set while the weights are sharded across processes (ZeRO-3): each part is whole only while it runs. */
  readonly residency?: ParameterResidency | null;
}

/**
 * Where a model's trainable weights are sharded across processes (ZeRO-3): each part's weights
 * are made whole on this process just before the part runs, and freed after. Parts are the
 * decoder layers (by index) and "outer": everything else (embeddings, final norm, LM head).
 */
export interface ParameterResidency {
  /** Makes `part`'s weights whole here (a no-op where they are). */
  gather(part: number | "outer"): void;
  /** Frees what gather(part) made (this process's own shard stays). */
  release(part: number | "outer"): void;
}

/** What every layer of one forward call shares. */
export interface DecoderStep {
  /** B: rows in the batch. */
  readonly batch: number;
  /** T: new tokens in this call. */
  readonly length: number;
  /** Tokens already in the cache before this call (0 without a cache). */
  readonly past: number;
  readonly device: torch.Device;
  /** [B, T] int64 position of each new token (padding-aware, after the cached ones). */
  readonly positions: torch.Tensor;
  /** Keys and values of earlier positions; each layer appends its own under its index. */
  readonly cache?: KVCache;
  /**
   * The boolean mask [B, 1, T, past + T] (true = may attend) for a layer whose attentionWindow
   * is `window`, or null where plain causal attention suffices (the fused kernel's fast path).
   */
  mask(window: number | null): torch.Tensor | null;
}

/** One decoder layer: hidden states [B, T, C] in, [B, T, C] out. */
export interface DecoderLayer<S extends DecoderStep = DecoderStep> {
  /** How many positions back this layer attends (a sliding window), or null for all of them. */
  readonly attentionWindow: number | null;
  forward(hidden: torch.Tensor, step: S): torch.Tensor;
}

/** Positions, and one mask per distinct window the layers use, for a forward call. */
function decoderStep(inputIds: torch.Tensor, options: ForwardOptions, windows: Iterable<number | null>): DecoderStep {
  const [batch, length] = inputIds.shape;
  const past = options.cache?.length ?? 0;
  const device = inputIds.device;
  const positions = options.positionIds ?? positionIds(batch, length, past, options.attentionMask, device);
  const masks = new Map<number | null, torch.Tensor | null>();
  for (const w of windows)
    if (!masks.has(w)) masks.set(w, attentionMask(batch, length, past, options.attentionMask, w, device));
  return {
    batch,
    length,
    past,
    device,
    positions,
    cache: options.cache,
    mask(window) {
      const m = masks.get(window);
      if (m === undefined)
        throw new Error(
          `no attention mask for window ${window}: a layer asked for a window other than its attentionWindow`,
        );
      return m;
    },
  };
}

/**
 * A decoder-only causal LM: embed, every layer in order, head. Subclasses supply the three
 * parts (and, through `prepare`, what their layers share beyond the step, such as rotary
 * cos/sin); the loop is here, once.
 */
export abstract class DecoderLM<S extends DecoderStep = DecoderStep> extends Module implements CausalLM {
  abstract readonly architecture: string;
  abstract readonly config: RawConfig;
  abstract get vocabSize(): number;
  abstract get maxPositions(): number;
  /** The decoder layers, in the order they run. */
  protected abstract get decoderLayers(): readonly DecoderLayer<S>[];
  /**
   * Input ids [B, T] -> hidden states [B, T, C]; `options` are the call's (a vision-language
   * model reads its images from them).
   */
  protected abstract embed(inputIds: torch.Tensor, step: DecoderStep, options: HiddenStatesOptions): torch.Tensor;
  /** Final hidden states [..., C] -> logits [..., V] (the final norm and the LM head, per position). */
  protected abstract head(hidden: torch.Tensor): torch.Tensor;

  /**
   * Extends the step with what the layers share (made once per call, freed with it); `hidden` is
   * the embedding [B, T, C], `inputIds` [B, T] and `options` the call's (M-RoPE reads both).
   */
  protected prepare(
    step: DecoderStep,
    _hidden: torch.Tensor,
    _inputIds: torch.Tensor,
    _options: HiddenStatesOptions,
  ): S {
    return step as S;
  }

  /**
   * Set while the trainable weights are sharded (ZeRO-3): each layer gathered just before it
   * runs and freed after (under grad without a tape, at the strategy's next release: autograd
   * reads them in backward); "outer" gathered at the start of every forward.
   */
  residency: ParameterResidency | null = null;

  /** Each decoder layer's parameters, in the order the layers run. */
  layerParameters(): torch.Tensor[][] {
    return this.decoderLayers.map((layer) => (layer as unknown as Module).parameters());
  }

  #generationConfig?: GenerationConfig;
  get generationConfig(): GenerationConfig {
    return (this.#generationConfig ??= generationConfigFromModelConfig(this.config));
  }
  set generationConfig(value: GenerationConfig) {
    this.#generationConfig = value;
  }

  get numLayers(): number {
    return this.decoderLayers.length;
  }

  forward(inputIds: torch.Tensor, options: ForwardOptions = {}): torch.Tensor {
    return torch.tidy(() => this.head(this.hiddenStates(inputIds, options))); // [B, T, V]
  }

  logitsFromHidden(hidden: torch.Tensor): torch.Tensor {
    return this.head(hidden);
  }

  hiddenStates(inputIds: torch.Tensor, options: HiddenStatesOptions = {}): torch.Tensor {
    const tape = options.recompute;
    if (tape && options.cache)
      throw new Error("gradient checkpointing (a recompute tape) cannot be used with a KV cache");
    // Recomputation must reproduce the forward exactly; dropout would draw other masks.
    if (tape && this.training)
      throw new Error("gradient checkpointing needs the model in eval mode (dropout off): call model.eval()");
    return torch.tidy(() => {
      const layers = this.decoderLayers;
      const base = decoderStep(
        inputIds,
        options,
        layers.map((l) => l.attentionWindow),
      );
      const residency = this.residency;
      residency?.gather("outer");
      let h = this.embed(inputIds, base, options); // [B, T, C]
      const step = this.prepare(base, h, inputIds, options);
      if (tape) {
        // The layers read the step's tensors again in backward: the tape keeps the ones made
        // here (positions, masks, rotary cos/sin), never the caller's own.
        const callers = new Set([options.positionIds, options.attentionMask]);
        const made: torch.Tensor[] = [];
        const collect = (v: unknown) =>
          forEachTensor(v, (t) => {
            if (!callers.has(t as torch.Tensor)) made.push(t as torch.Tensor);
          });
        collect({ ...step });
        for (const layer of layers) collect(step.mask(layer.attentionWindow));
        tape.hold(made);
        // Only each layer's input [B, T, C] stays alive until backward; the first is the
        // embedding's output, whose graph takes the last recomputation's gradient to the weights.
        if (!residency) {
          for (const layer of layers) h = tape.segment(h, (x) => layer.forward(x, step));
          return h; // [B, T, C], a leaf owned by the tape
        }
        // ZeRO-3: the layer's weights gathered for its forward (freed after it: no grad there)
        // and again for its recomputation, freed once backward is through the layer.
        layers.forEach((layer, i) => {
          const run = (x: torch.Tensor) => this.#withLayer(i, () => layer.forward(x, step));
          h = tape.segment(h, run, run, { afterBackward: () => residency.release(i) });
        });
        return h; // [B, T, C], a leaf owned by the tape
      }
      // Each layer in its own scope, and the previous activation freed as soon as the next
      // exists: without autograd (reference log-probs, evaluation, generation) only one
      // layer's intermediates are alive at a time; with it, autograd keeps what backward needs.
      layers.forEach((layer, i) => {
        const prev = h;
        h = torch.tidy(() => this.#withLayer(i, () => layer.forward(prev, step)));
        prev.dispose();
      });
      return h; // [B, T, C]
    });
  }

  /**
   * Runs `fn` with layer `i`'s weights whole (ZeRO-3). Without grad they are freed at once;
   * with it, autograd (or the recomputation's backprop) still reads them, and whoever runs
   * that backward frees them.
   */
  #withLayer<T>(i: number, fn: () => T): T {
    const residency = this.residency;
    if (!residency) return fn();
    residency.gather(i);
    try {
      return fn();
    } finally {
      if (!torch.isGradEnabled()) residency.release(i);
    }
  }
}
