// Qwen2-VL's vision tower (Qwen2VisionTransformerPretrainedModel, the checkpoint's `visual.*`):
// patches of [temporal 2 x 14 x 14] pixels embedded by a Conv3d whose kernel equals its stride
// (so a linear map of each flattened patch), pre-norm blocks of LayerNorm, attention with 2D
// rotary embeddings (a patch's row and column) and a QuickGELU MLP, attention only within each
// image's frame, then the merger: each 2x2 group of neighbouring patches (consecutive in the
// processor's patch order) concatenated, normed and projected to the language model's width.
// Shapes: N patches, E embed_dim, H heads, D = E / H, K = 3 * 2 * 14 * 14 values per patch.
import * as torch from "../torch/index.js";
import { Module, ModuleList } from "../nn/module.js";
import { LayerNorm, Linear, normal, type Init } from "../nn/layers.js";
import { applyRope } from "./attention.js";

export interface VisionConfig {
  depth: number;
  embedDim: number;
  heads: number;
  mlpHidden: number;
  inChannels: number;
  patchSize: number;
  temporalPatchSize: number;
  /** Patches merged along each side (2: 2x2 patches make one language-model token). */
  mergeSize: number;
  /** The merger's output width: the language model's hidden size. */
  outHidden: number;
  act: "quick_gelu" | "gelu";
}

/** One image (or video) as the processor describes it: frames t, patch rows h, patch columns w. */
export type GridThw = readonly [t: number, h: number, w: number];

/** Values per flattened patch: channels x temporal x patch x patch. */
export const patchValues = (c: VisionConfig): number => c.inChannels * c.temporalPatchSize * c.patchSize ** 2;

/** Conv3d(in, E, kernel = stride = [tp, p, p], no bias), applied as the linear map it is on flattened patches. */
class PatchConv extends Module {
  constructor(
    readonly c: VisionConfig,
    init: Init,
  ) {
    super();
    this.param("weight", normal([c.embedDim, c.inChannels, c.temporalPatchSize, c.patchSize, c.patchSize], init));
  }
  /** x [N, K] -> [N, E] */
  forward(x: torch.Tensor): torch.Tensor {
    const w = this.get("weight");
    return torch.tidy(() => torch.linear(x.to(w.dtype), w.reshape(this.c.embedDim, patchValues(this.c)), null));
  }
}

/** patch_embed: its Conv3d is named proj in the checkpoint. */
class PatchEmbed extends Module {
  readonly proj: PatchConv;
  constructor(c: VisionConfig, init: Init) {
    super();
    this.proj = this.module("proj", new PatchConv(c, init));
  }
  /** x [N, K] -> [N, E] */
  forward(x: torch.Tensor): torch.Tensor {
    return this.proj.forward(x);
  }
}

class VisionAttention extends Module {
  readonly qkv: Linear;
  readonly proj: Linear;
  constructor(
    readonly c: VisionConfig,
    init: Init,
  ) {
    super();
    this.qkv = this.module("qkv", new Linear(c.embedDim, 3 * c.embedDim, true, init));
    this.proj = this.module("proj", new Linear(c.embedDim, c.embedDim, true, init));
  }
  /** x [N, E]; cos/sin [1, 1, N, D]; mask [1, 1, N, N] (true = same frame) or null (one frame). */
  forward(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | null): torch.Tensor {
    const n = x.shape[0];
    const { heads, embedDim } = this.c;
    const qkv = this.qkv
      .forward(x)
      .view(n, 3, heads, embedDim / heads)
      .permute(1, 2, 0, 3); // [3, H, N, D]
    const [q, k, v] = [0, 1, 2].map((i) => qkv.select(0, i).unsqueeze(0)); // [1, H, N, D] each
    const y = torch.scaledDotProductAttention(applyRope(q, cos, sin), applyRope(k, cos, sin), v, {
      attnMask: mask,
    }); // [1, H, N, D]
    return this.proj.forward(y.squeeze(0).transpose(0, 1).reshape(n, embedDim)); // [N, E]
  }
}

class VisionMlp extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;
  constructor(
    readonly c: VisionConfig,
    init: Init,
  ) {
    super();
    this.fc1 = this.module("fc1", new Linear(c.embedDim, c.mlpHidden, true, init));
    this.fc2 = this.module("fc2", new Linear(c.mlpHidden, c.embedDim, true, init));
  }
  forward(x: torch.Tensor): torch.Tensor {
    const h = this.fc1.forward(x);
    // QuickGELU, CLIP's x * sigmoid(1.702 x), is the checkpoints' hidden_act.
    const a = this.c.act === "quick_gelu" ? h.mul(h.mul(1.702).sigmoid()) : h.gelu();
    return this.fc2.forward(a);
  }
}

class VisionBlock extends Module {
  readonly norm1: LayerNorm;
  readonly attn: VisionAttention;
  readonly norm2: LayerNorm;
  readonly mlp: VisionMlp;
  constructor(c: VisionConfig, init: Init) {
    super();
    this.norm1 = this.module("norm1", new LayerNorm(c.embedDim, 1e-6, init));
    this.attn = this.module("attn", new VisionAttention(c, init));
    this.norm2 = this.module("norm2", new LayerNorm(c.embedDim, 1e-6, init));
    this.mlp = this.module("mlp", new VisionMlp(c, init));
  }
  forward(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | null): torch.Tensor {
    const h = x.add(this.attn.forward(this.norm1.forward(x), cos, sin, mask));
    return h.add(this.mlp.forward(this.norm2.forward(h)));
  }
}

/** merger.mlp: Linear, GELU (exact), Linear; named 0 and 2 as the checkpoint's nn.Sequential. */
class MergerMlp extends Module {
  readonly first: Linear;
  readonly second: Linear;
  constructor(width: number, out: number, init: Init) {
    super();
    this.first = this.module("0", new Linear(width, width, true, init));
    this.second = this.module("2", new Linear(width, out, true, init));
  }
  forward(x: torch.Tensor): torch.Tensor {
    return this.second.forward(this.first.forward(x).gelu());
  }
}

class PatchMerger extends Module {
  readonly lnQ: LayerNorm;
  readonly mlp: MergerMlp;
  readonly width: number;
  constructor(c: VisionConfig, init: Init) {
    super();
    this.width = c.embedDim * c.mergeSize ** 2;
    this.lnQ = this.module("ln_q", new LayerNorm(c.embedDim, 1e-6, init));
    this.mlp = this.module("mlp", new MergerMlp(this.width, c.outHidden, init));
  }
  /** x [N, E] -> [N / m^2, out]: each run of m^2 consecutive patches is one merged token. */
  forward(x: torch.Tensor): torch.Tensor {
    return this.mlp.forward(this.lnQ.forward(x).reshape(-1, this.width));
  }
}

/**
 * Each patch's (row, column) in its frame, in the processor's patch order: frame by frame,
 * merge windows row-major, and within a window its m x m patches row-major.
 */
function patchRowsAndColumns(grids: readonly GridThw[], m: number): [number[], number[]] {
  const rows: number[] = [];
  const cols: number[] = [];
  for (const [t, h, w] of grids)
    for (let f = 0; f < t; f++)
      for (let wr = 0; wr < h / m; wr++)
        for (let wc = 0; wc < w / m; wc++)
          for (let i = 0; i < m; i++)
            for (let j = 0; j < m; j++) {
              rows.push(wr * m + i);
              cols.push(wc * m + j);
            }
  return [rows, cols];
}

export class VisionTower extends Module {
  readonly patchEmbed: PatchEmbed;
  readonly blocks: VisionBlock[];
  readonly merger: PatchMerger;
  constructor(
    readonly c: VisionConfig,
    init: Init,
  ) {
    super();
    this.patchEmbed = this.module("patch_embed", new PatchEmbed(c, init));
    this.blocks = this.module(
      "blocks",
      new ModuleList(Array.from({ length: c.depth }, () => new VisionBlock(c, init))),
    ).items;
    this.merger = this.module("merger", new PatchMerger(c, init));
  }

  /**
   * Checks pixel values [N, K] against the grids (one [t, h, w] per image): errors name the
   * mismatch, so a processor disagreement never reaches the engine as a shape error.
   */
  check(pixelValues: torch.Tensor, grids: readonly GridThw[]): void {
    const k = patchValues(this.c);
    if (pixelValues.ndim !== 2 || pixelValues.shape[1] !== k)
      throw new Error(`pixelValues must be [patches, ${k}], got [${pixelValues.shape}]`);
    const m = this.c.mergeSize;
    let patches = 0;
    for (const [i, g] of grids.entries()) {
      if (g.length !== 3 || !g.every((v) => Number.isInteger(v) && v > 0) || g[1] % m || g[2] % m)
        throw new Error(`imageGridThw row ${i}: [${g}] must be 3 positive integers, h and w multiples of ${m}`);
      patches += g[0] * g[1] * g[2];
    }
    if (patches !== pixelValues.shape[0])
      throw new Error(`pixelValues has ${pixelValues.shape[0]} patches; imageGridThw describes ${patches}`);
  }

  /** Pixel values [N, K] of images with these grids -> merged image features [N / m^2, out]. */
  forward(pixelValues: torch.Tensor, grids: readonly GridThw[]): torch.Tensor {
    this.check(pixelValues, grids);
    return torch.tidy(() => {
      const device = pixelValues.device;
      let h = this.patchEmbed.forward(pixelValues.to({ device })); // [N, E]
      const [cos, sin] = this.rotary(grids, h.dtype, device); // [1, 1, N, D] each
      const mask = frameMask(grids, device); // [1, 1, N, N] or null
      for (const block of this.blocks) {
        const prev = h;
        h = torch.tidy(() => block.forward(prev, cos, sin, mask));
      }
      return this.merger.forward(h); // [N / m^2, out]
    });
  }

  /**
   * 2D rotary cos/sin [1, 1, N, D]: the first D/4 frequencies turn with the patch's row, the
   * next D/4 with its column, and the whole D/2 repeats (the rotate-half layout).
   */
  rotary(grids: readonly GridThw[], dtype: torch.DType, device: torch.Device): [torch.Tensor, torch.Tensor] {
    const d = this.c.embedDim / this.c.heads;
    const half = d / 2;
    const inv = Float32Array.from({ length: half / 2 }, (_, i) => 1 / 10000 ** ((2 * i) / half));
    const [rows, cols] = patchRowsAndColumns(grids, this.c.mergeSize);
    return torch.tidy(() => {
      const freq = torch.tensor(inv, { device }); // [D/4]
      const at = (p: number[]) => torch.tensor(Float32Array.from(p), { device }).unsqueeze(1).mul(freq); // [N, D/4]
      const angles = torch.cat([at(rows), at(cols)], -1); // [N, D/2]
      const emb = torch.cat([angles, angles], -1).unsqueeze(0).unsqueeze(0); // [1, 1, N, D]
      return [emb.cos().to(dtype), emb.sin().to(dtype)];
    });
  }
}

/** The block-diagonal mask [1, 1, N, N] letting patches attend within their own frame, or null for one frame. */
function frameMask(grids: readonly GridThw[], device: torch.Device): torch.Tensor | null {
  const frames: number[] = [];
  let id = 0;
  for (const [t, h, w] of grids) for (let f = 0; f < t; f++, id++) for (let i = 0; i < h * w; i++) frames.push(id);
  if (id <= 1) return null;
  return torch.tidy(() => {
    const f = torch.tensor(Int32Array.from(frames), { device }); // [N]
    return f.unsqueeze(1).eq(f.unsqueeze(0)).unsqueeze(0).unsqueeze(0); // [1, 1, N, N]
  });
}
