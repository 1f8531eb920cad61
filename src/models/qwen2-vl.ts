// Qwen2-VL (Qwen2VLForConditionalGeneration): the vision tower of qwen2-vl-vision.ts, whose
// merged image features replace the embeddings of the <|image_pad|> tokens, feeding llama.ts's
// Qwen2 decoder with M-RoPE: each token has three positions (temporal, height, width), and the
// rotary frequencies are split into mrope_section chunks, each turned by one of the three.
// Text tokens have all three equal; an image's tokens count its frames, rows and columns from
// where the text before it stopped, and the text after it continues from the largest position
// used + 1. The checkpoint names are the published ones (visual.*, model.*, lm_head.*); the
// newer layout (model.visual.*, model.language_model.*) loads and saves back as it came.
import * as torch from "../torch/index.js";
import type { Init } from "../nn/layers.js";
import type { ArchitectureSpec } from "./architecture.js";
import type { DecoderStep, HiddenStatesOptions } from "./causal-lm.js";
import { num, type RawConfig } from "./config.js";
import { llamaConfig, LlamaForCausalLM, type LlamaConfig, type RotaryStep } from "./llama.js";
import { ropeCosSin } from "./attention.js";
import { VisionTower, type GridThw, type VisionConfig } from "./qwen2-vl-vision.js";

export interface Qwen2VLConfig extends LlamaConfig {
  /** Rotary frequencies turned by the temporal, height and width positions, in that order (sum D/2). */
  mropeSection: [number, number, number];
  vision: VisionConfig;
  imageTokenId: number;
}

/** The images of a forward call, as the processor makes them (transformers' names in camelCase). */
export interface ImageInputs {
  /** float [sum(t*h*w), 3*2*14*14]: each patch's (channel, temporal, row, column) values, flattened. */
  pixelValues?: torch.Tensor | null;
  /** int64 [images, 3]: each image's (t, h, w) in patches. */
  imageGridThw?: torch.Tensor | null;
}

export interface ImageForwardOptions extends HiddenStatesOptions, ImageInputs {}

const isObject = (v: unknown): v is RawConfig => typeof v === "object" && v !== null && !Array.isArray(v);

/** A positive integer field of vision_config, with its default; errors name the field. */
function visionInt(vc: RawConfig, key: string, fallback: number): number {
  const v = num(vc, key, fallback);
  if (!Number.isInteger(v) || v <= 0)
    throw new Error(`config.json: field vision_config.${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Qwen2VLConfig: the text fields at the top level (the published checkpoints) or in
 * text_config (transformers' newer layout, which wins), vision_config, the M-RoPE section from
 * rope_scaling (or rope_parameters), and the image token id.
 */
export function qwen2VlConfig(raw: RawConfig): Qwen2VLConfig {
  const text: RawConfig = isObject(raw.text_config) ? { ...raw, ...raw.text_config } : raw;
  const rope = (isObject(text.rope_scaling) ? text.rope_scaling : text.rope_parameters) as RawConfig | undefined;
  const section = rope?.mrope_section;
  const base = llamaConfig({ ...text, rope_scaling: null, rope_parameters: null }, "qwen2");
  const ropeTheta = num(text, "rope_theta", typeof rope?.rope_theta === "number" ? rope.rope_theta : 1000000);
  if (!Array.isArray(section) || section.length !== 3 || !section.every((s) => Number.isInteger(s) && s > 0))
    throw new Error(`config.json: field rope_scaling.mrope_section must be 3 positive integers, got ${section}`);
  if (section[0] + section[1] + section[2] !== base.headDim / 2)
    throw new Error(
      `config.json: field rope_scaling.mrope_section [${section}] must sum to head_dim / 2 = ${base.headDim / 2}`,
    );
  if (!isObject(raw.vision_config)) throw new Error("config.json: missing field vision_config");
  const vc = raw.vision_config;
  const embedDim = visionInt(vc, "embed_dim", 1280);
  const heads = visionInt(vc, "num_heads", 16);
  if (embedDim % heads || (embedDim / heads) % 4)
    throw new Error(
      `config.json: field vision_config.embed_dim (${embedDim}) / num_heads (${heads}) must be a multiple of 4 ` +
        "(each head's rotary angles split between rows and columns)",
    );
  const outHidden = visionInt(vc, "hidden_size", base.hidden);
  if (outHidden !== base.hidden)
    throw new Error(
      `config.json: field vision_config.hidden_size (${outHidden}) must equal the text hidden_size (${base.hidden})`,
    );
  const act = (vc.hidden_act as string | undefined) ?? "quick_gelu";
  if (act !== "quick_gelu" && act !== "gelu")
    throw new Error(`config.json: field vision_config.hidden_act '${act}' is not supported (quick_gelu, gelu)`);
  const mlpRatio = num(vc, "mlp_ratio", 4);
  return {
    ...base,
    ropeTheta,
    mropeSection: section as [number, number, number],
    imageTokenId: num(raw, "image_token_id", num(text, "image_token_id", 151655)),
    vision: {
      depth: visionInt(vc, "depth", 32),
      embedDim,
      heads,
      mlpHidden: Math.floor(embedDim * mlpRatio),
      inChannels: visionInt(vc, "in_chans", visionInt(vc, "in_channels", 3)),
      patchSize: visionInt(vc, "patch_size", visionInt(vc, "spatial_patch_size", 14)),
      temporalPatchSize: visionInt(vc, "temporal_patch_size", 2),
      mergeSize: visionInt(vc, "spatial_merge_size", 2),
      outHidden,
      act,
    },
  };
}

/** imageGridThw [images, 3] as rows of numbers. */
function gridRows(imageGridThw: torch.Tensor): GridThw[] {
  if (imageGridThw.ndim !== 2 || imageGridThw.shape[1] !== 3)
    throw new Error(`imageGridThw must be [images, 3], got [${imageGridThw.shape}]`);
  return (imageGridThw.toArray() as number[][]).map((r) => [r[0], r[1], r[2]] as const);
}

/**
 * M-RoPE positions [3][B][T] (get_rope_index) for ids [B][T] with mask [B][T] (padding gets 1),
 * and per row the offset of its next position from its count of tokens (the rope delta).
 * Images are consumed from `grids` in order, across rows.
 */
export function mropePositions(
  ids: number[][],
  mask: number[][] | null,
  grids: readonly GridThw[],
  imageTokenId: number,
  mergeSize: number,
): { positions: number[][][]; deltas: number[] } {
  const positions = [0, 1, 2].map(() => ids.map((row) => row.map(() => 1)));
  const deltas: number[] = [];
  let image = 0;
  for (const [b, row] of ids.entries()) {
    const kept = row.map((_, i) => i).filter((i) => !mask || mask[b][i] === 1);
    let next = 0;
    for (let k = 0; k < kept.length;) {
      if (row[kept[k]] !== imageTokenId) {
        for (const axis of positions) axis[b][kept[k]] = next;
        next++;
        k++;
        continue;
      }
      const grid = grids[image];
      if (!grid) throw new Error(`row ${b}: more images in inputIds than imageGridThw has rows (${grids.length})`);
      const [t, h, w] = [grid[0], grid[1] / mergeSize, grid[2] / mergeSize];
      const count = t * h * w;
      const run = kept.slice(k, k + count);
      if (run.length < count || run.some((i) => row[i] !== imageTokenId))
        throw new Error(`row ${b}: image ${image} (grid [${grid}]) needs ${count} consecutive image tokens`);
      for (let f = 0, at = 0; f < t; f++)
        for (let y = 0; y < h; y++)
          for (let x = 0; x < w; x++, at++) {
            positions[0][b][run[at]] = next + f;
            positions[1][b][run[at]] = next + y;
            positions[2][b][run[at]] = next + x;
          }
      next += Math.max(t, h, w);
      k += count;
      image++;
    }
    deltas.push(next - kept.length);
  }
  if (image !== grids.length)
    throw new Error(`inputIds hold ${image} images' tokens; imageGridThw has ${grids.length} rows`);
  return { positions, deltas };
}

/**
 * cos/sin [B, 1, T, D] for M-RoPE positions [3, B, T]: the frequency chunks of mropeSection
 * (repeated for the second half of the rotate-half layout) turned by axis 0, 1, 2, 0, 1, 2.
 */
function mropeCosSin(
  inverseFrequencies: torch.Tensor,
  positions: torch.Tensor,
  section: readonly number[],
  dtype: torch.DType,
): [torch.Tensor, torch.Tensor] {
  return torch.tidy(() => {
    const perAxis = [0, 1, 2].map((a) => ropeCosSin(inverseFrequencies, positions.select(0, a), dtype)); // [B, 1, T, D]
    const pick = (which: 0 | 1) => {
      const chunks: torch.Tensor[] = [];
      let offset = 0;
      for (const [i, width] of [...section, ...section].entries()) {
        chunks.push(perAxis[i % 3][which].narrow(-1, offset, width));
        offset += width;
      }
      return torch.cat(chunks, -1); // [B, 1, T, D]
    };
    return [pick(0), pick(1)];
  });
}

/**
 * The cache's per-row value: how far a row's next position is past its count of tokens (what
 * its images saved by counting rows and columns instead of tokens), 0 for text-only rows.
 */
const ROPE_DELTAS = "qwen2_vl.rope_deltas";

export class Qwen2VLForConditionalGeneration extends LlamaForCausalLM {
  override readonly architecture: string = "qwen2_vl";
  readonly visual: VisionTower;
  readonly vl: Qwen2VLConfig;

  constructor(config: RawConfig, c: Qwen2VLConfig = qwen2VlConfig(config), init: Init = {}) {
    super(config, c, init);
    this.vl = c;
    this.visual = this.module("visual", new VisionTower(c.vision, init));
  }

  /** Logits [B, T, V] for input ids [B, T], with the images their <|image_pad|> tokens stand for. */
  override forward(inputIds: torch.Tensor, options: ImageForwardOptions = {}): torch.Tensor {
    return super.forward(inputIds, options);
  }

  override hiddenStates(inputIds: torch.Tensor, options: ImageForwardOptions = {}): torch.Tensor {
    return super.hiddenStates(inputIds, options);
  }

  /** Image features [images' merged tokens, C] for pixel values [N, K] and grids [images, 3]. */
  imageFeatures(pixelValues: torch.Tensor, imageGridThw: torch.Tensor): torch.Tensor {
    return this.visual.forward(pixelValues, gridRows(imageGridThw));
  }

  /** The token embeddings [B, T, C], with each image's features at its image tokens (row-major). */
  protected override embed(inputIds: torch.Tensor, step: DecoderStep, options: ImageForwardOptions): torch.Tensor {
    const text = super.embed(inputIds); // [B, T, C]
    const ids = (inputIds.toArray() as number[][]).flat();
    const at = ids.flatMap((id, i) => (id === this.vl.imageTokenId ? [i] : []));
    const { pixelValues, imageGridThw } = options;
    if (!pixelValues) {
      if (at.length)
        throw new Error(
          `inputIds hold ${at.length} image tokens (id ${this.vl.imageTokenId}) but no pixelValues were given`,
        );
      return text;
    }
    if (!imageGridThw) throw new Error("pixelValues given without imageGridThw");
    return torch.tidy(() => {
      const features = this.imageFeatures(pixelValues, imageGridThw); // [M, C]
      if (features.shape[0] !== at.length)
        throw new Error(
          `inputIds hold ${at.length} image tokens (id ${this.vl.imageTokenId}); the images make ${features.shape[0]}`,
        );
      const [b, t, c] = text.shape;
      // Row i of [text; features] for a text token, row B*T + j for the j-th image token.
      const source = BigInt64Array.from(ids, (_, i) => BigInt(i));
      at.forEach((i, j) => (source[i] = BigInt(b * t + j)));
      const rows = torch.cat([text.reshape(b * t, c), features.to(text.dtype)], 0); // [B*T + M, C]
      return rows.indexSelect(0, torch.tensor(source, { device: text.device })).view(b, t, c); // [B, T, C]
    });
  }

  /** M-RoPE cos/sin [B, 1, T, D] from the three positions of each token. */
  protected override prepare(
    step: DecoderStep,
    hidden: torch.Tensor,
    inputIds: torch.Tensor,
    options: ImageForwardOptions,
  ): RotaryStep {
    const positions = this.#positions3(step, inputIds, options); // [3, B, T]
    const [cos, sin] = mropeCosSin(this.inverseFrequencies, positions, this.vl.mropeSection, hidden.dtype);
    return { ...step, cos, sin };
  }

  /**
   * Positions [3, B, T]: given ones ([3, B, T], or [B, T] for all three axes); after a cache's
   * first call, the step's positions plus each row's rope delta; else get_rope_index's.
   */
  #positions3(step: DecoderStep, inputIds: torch.Tensor, options: ImageForwardOptions): torch.Tensor {
    const given = options.positionIds;
    if (given) return given.ndim === 3 ? given : given.unsqueeze(0).expand(3, step.batch, step.length);
    const cache = options.cache;
    const device = step.device;
    if (step.past > 0) {
      const deltas = cache?.rowValues.get(ROPE_DELTAS) ?? [];
      const perRow = Array.from({ length: step.batch }, (_, r) => BigInt(deltas[r] ?? 0));
      const delta = torch.tensor(BigInt64Array.from(perRow), { device }).unsqueeze(1); // [B, 1]
      return step.positions.add(delta).unsqueeze(0).expand(3, step.batch, step.length);
    }
    const ids = inputIds.toArray() as number[][];
    const mask = options.attentionMask ? (options.attentionMask.toArray() as number[][]) : null;
    const grids = options.imageGridThw ? gridRows(options.imageGridThw) : [];
    const { positions, deltas } = mropePositions(ids, mask, grids, this.vl.imageTokenId, this.vl.vision.mergeSize);
    cache?.rowValues.set(ROPE_DELTAS, deltas);
    return torch.tensor(positions, { dtype: "int64", device }); // [3, B, T]
  }
}

export const QWEN2_VL: ArchitectureSpec<Qwen2VLConfig> = {
  name: "qwen2_vl",
  architectures: ["Qwen2VLForConditionalGeneration"],
  modelTypes: ["qwen2_vl"],
  parseConfig: qwen2VlConfig,
  model: Qwen2VLForConditionalGeneration,
  takesImages: true,
  // PEFT's default for qwen2_vl: the language model's attention (the vision tower's is one fused qkv).
  loraTargetModules: ["q_proj", "v_proj"],
  tiedWeights: (c): Record<string, string> => (c.tied ? { "lm_head.weight": "model.embed_tokens.weight" } : {}),
  ignoredCheckpointNames: /\.rotary_emb\.inv_freq$/,
  checkpointLayouts: [{ "model.language_model.": "model.", "model.visual.": "visual." }],
};
