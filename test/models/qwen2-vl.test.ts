// Qwen2-VL: logits against an independent PyTorch implementation written from the published
// architecture (test/models/reference_qwen2_vl.py, reading the same checkpoint directory), in
// float32 at 1e-4, for text only, one image, two images (one of two frames) and padded batches
// with an image per row; both checkpoint layouts load and save back as they came; KV-cache
// decoding after an image equals the uncached forward; bad inputs are errors that say what is
// wrong. A tiny model (hidden 64, 2 layers, 2 vision blocks, 2x2-pixel patches) keeps it fast.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createModel, saveModel, torch } from "../../src/index.js";
import { AutoModelForCausalLM, AutoModelForImageTextToText, loadModel } from "../../src/models/auto.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import type { RawConfig } from "../../src/models/config.js";
import { KVCache } from "../../src/models/cache.js";
import { generate } from "../../src/models/generate.js";
import type { ImageForwardOptions } from "../../src/models/qwen2-vl.js";
import { loadCheckpoint, saveCheckpoint } from "../../src/models/safetensors.js";
import { runPythonJson } from "../../src/util/python.js";
import { once } from "../helpers/python.js";
import { skipUnless } from "../helpers/requirements.js";
import { randomizeParameters } from "../helpers/batches.js";

const skip = skipUnless("torch");
torch.setNumThreads(1);
const TOL = 1e-4;
const REFERENCE = fileURLToPath(new URL("../../../test/models/reference_qwen2_vl.py", import.meta.url));
const root = mkdtempSync(join(tmpdir(), "omni-dpo-qwen2vl-"));
after(() => rmSync(root, { recursive: true, force: true }));

const [START, END, IMAGE] = [60, 61, 62];
const CONFIG: RawConfig = {
  architectures: ["Qwen2VLForConditionalGeneration"],
  model_type: "qwen2_vl",
  vocab_size: 64,
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
  max_position_embeddings: 256,
  tie_word_embeddings: false,
  // head_dim 16: 8 frequencies, 2 turned by the frame, 3 by the row, 3 by the column.
  rope_scaling: { type: "mrope", mrope_section: [2, 3, 3] },
  vision_start_token_id: START,
  vision_end_token_id: END,
  image_token_id: IMAGE,
  video_token_id: 63,
  vision_config: {
    depth: 2,
    embed_dim: 32,
    num_heads: 2,
    mlp_ratio: 2,
    in_chans: 3,
    patch_size: 2,
    temporal_patch_size: 2,
    spatial_merge_size: 2,
    hidden_size: 64,
    hidden_act: "quick_gelu",
  },
};
const PATCH = 3 * 2 * 2 * 2;

type Grid = [number, number, number];
/** One image: its grid (in patches) and its pixel values [t*h*w, PATCH] as numbers. */
interface Image {
  grid: Grid;
  pixels: number[];
}

let seed = 7;
function text(n: number): number[] {
  return Array.from({ length: n }, () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return 1 + (seed % 59);
  });
}
function image(grid: Grid, s: number): Image {
  torch.manualSeed(s);
  const n = grid[0] * grid[1] * grid[2];
  return { grid, pixels: torch.tidy(() => Array.from(torch.randn([n, PATCH]).data() as Float32Array)) };
}
/** <|vision_start|>, one <|image_pad|> per merged token, <|vision_end|>. */
const imageTokens = (img: Image) => [
  START,
  ...new Array(img.grid[0] * (img.grid[1] / 2) * (img.grid[2] / 2)).fill(IMAGE),
  END,
];

interface Case {
  name: string;
  ids: number[][];
  mask: number[][] | null;
  images: Image[];
}

/** Rows padded to one length on the given side (mask 0 there); pad id 0. */
function padded(rows: number[][], left: boolean): { ids: number[][]; mask: number[][] } {
  const t = Math.max(...rows.map((r) => r.length));
  const fill = (r: number[], v: number) => new Array(t - r.length).fill(v);
  return {
    ids: rows.map((r) => (left ? [...fill(r, 0), ...r] : [...r, ...fill(r, 0)])),
    mask: rows.map((r) => {
      const ones = new Array(r.length).fill(1);
      return left ? [...fill(r, 0), ...ones] : [...ones, ...fill(r, 0)];
    }),
  };
}

const A = image([1, 4, 4], 1); // 16 patches, 4 tokens
const B = image([1, 2, 6], 2); // 12 patches, 3 tokens
const V = image([2, 2, 2], 3); // two frames of 4 patches, 2 tokens
const rowA = [...text(3), ...imageTokens(A), ...text(4)];
const rowB = [...text(2), ...imageTokens(B), ...text(6)];
const CASES: Case[] = [
  { name: "text only", ids: [text(9), text(9)], mask: null, images: [] },
  { name: "text only, right-padded", ...padded([text(9), text(5)], false), images: [] },
  { name: "one image", ids: [rowA], mask: null, images: [A] },
  {
    name: "two images (one of two frames) in a row",
    ids: [[...text(2), ...imageTokens(A), ...text(2), ...imageTokens(V), ...text(3)]],
    mask: null,
    images: [A, V],
  },
  { name: "padded batch, an image per row, right-padded", ...padded([rowA, rowB], false), images: [A, B] },
  { name: "padded batch, an image per row, left-padded", ...padded([rowB, rowA], true), images: [B, A] },
];

function inputsOf(c: { ids: number[][]; mask: number[][] | null; images: Image[] }): {
  ids: torch.Tensor;
  options: ImageForwardOptions;
} {
  const ids = torch.tensor(c.ids, { dtype: "int64" });
  const attentionMask = c.mask ? torch.tensor(c.mask, { dtype: "int64" }) : null;
  if (!c.images.length) return { ids, options: { attentionMask } };
  const pixels = c.images.flatMap((i) => i.pixels);
  return {
    ids,
    options: {
      attentionMask,
      pixelValues: torch.tensor(Float32Array.from(pixels), { shape: [pixels.length / PATCH, PATCH] }),
      imageGridThw: torch.tensor(
        c.images.map((i) => i.grid),
        { dtype: "int64" },
      ),
    },
  };
}

function logitsOf(model: CausalLM, c: Case): number[] {
  return torch.noGrad(() =>
    torch.tidy(() => {
      const { ids, options } = inputsOf(c);
      return Array.from(model.forward(ids, options).data() as Float32Array);
    }),
  );
}

/** Max |ours - reference| over non-padding positions (NaN counts as worst). */
function maxDiff(ours: number[], ref: number[], c: Case): number {
  assert.equal(ours.length, ref.length, "logits sizes differ");
  const t = c.ids[0].length;
  const v = ours.length / (c.ids.length * t);
  let worst = 0;
  for (let at = 0; at < ours.length; at++) {
    const row = Math.floor(at / (t * v));
    const pos = Math.floor(at / v) % t;
    if (c.mask && c.mask[row][pos] === 0) continue;
    const d = Math.abs(ours[at] - ref[at]);
    if (!(d <= worst)) worst = d;
  }
  return worst;
}

function makeModel(s: number): CausalLM {
  torch.manualSeed(s);
  const model = createModel(CONFIG);
  randomizeParameters(model, s + 1000);
  return model.eval();
}

/** The published layout, and the newer one (text_config, model.visual.*, model.language_model.*). */
const prepared = once(() => {
  const published = join(root, "published");
  const model = makeModel(11);
  saveModel(model, published);
  model.dispose();
  const newer = join(root, "newer");
  const tensors = loadCheckpoint(published);
  saveCheckpoint(
    newer,
    [...tensors].map(([n, t]) => [
      n.startsWith("visual.") ? `model.${n}` : n.startsWith("model.") ? `model.language_model.${n.slice(6)}` : n,
      t,
    ]),
  );
  for (const t of tensors.values()) t.dispose();
  const { vision_config, architectures, model_type, image_token_id, video_token_id, ...textFields } = CONFIG;
  const newerConfig = {
    architectures,
    model_type,
    image_token_id,
    video_token_id,
    vision_start_token_id: START,
    vision_config,
    text_config: { ...textFields, model_type: "qwen2_vl_text" },
  };
  writeFileSync(join(newer, "config.json"), JSON.stringify(newerConfig));
  const request = {
    cases: [published, newer].flatMap((dir) =>
      CASES.map((c) => {
        const pixels = c.images.flatMap((i) => i.pixels);
        return {
          dir,
          input_ids: c.ids,
          attention_mask: c.mask,
          pixel_values: c.images.length ? pixels : null,
          pixel_shape: c.images.length ? [pixels.length / PATCH, PATCH] : null,
          image_grid_thw: c.images.length ? c.images.map((i) => i.grid) : null,
        };
      }),
    ),
  };
  const response = runPythonJson<{ results: { logits: number[] }[] }>(REFERENCE, request, { file: true });
  return {
    published,
    newer,
    refs: { published: response.results.slice(0, CASES.length), newer: response.results.slice(CASES.length) },
  };
});

test("logits match the PyTorch reference (AutoModelForImageTextToText, published layout)", { skip }, async () => {
  const { published, refs } = prepared();
  const model = await AutoModelForImageTextToText.fromPretrained(published);
  CASES.forEach((c, i) => {
    const ref = refs.published[i].logits;
    const diff = maxDiff(logitsOf(model, c), ref, c);
    assert.ok(diff <= TOL, `${c.name}: max |diff| ${diff} > ${TOL}`);
    assert.ok(Math.max(...ref) - Math.min(...ref) > 1, `${c.name}: logits barely vary`);
  });
  model.dispose();
});

test("the newer checkpoint layout loads to the same logits and saves back in its own names", { skip }, async () => {
  const { newer, refs } = prepared();
  const model = await AutoModelForImageTextToText.fromPretrained(newer);
  CASES.forEach((c, i) => {
    const diff = maxDiff(logitsOf(model, c), refs.newer[i].logits, c);
    assert.ok(diff <= TOL, `${c.name}: max |diff| ${diff} > ${TOL}`);
  });
  const again = join(root, "newer-saved");
  saveModel(model, again);
  const stored = loadCheckpoint(again);
  const names = [...stored.keys()];
  for (const t of stored.values()) t.dispose();
  assert.ok(names.includes("model.visual.merger.ln_q.weight"), names.join());
  assert.ok(names.includes("model.language_model.layers.0.self_attn.q_proj.bias"), names.join());
  assert.ok(names.includes("lm_head.weight"));
  assert.ok(!names.some((n) => n.startsWith("visual.") || n.startsWith("model.layers.")), names.join());
  const reloaded = loadModel(again);
  assert.deepEqual(logitsOf(reloaded, CASES[4]), logitsOf(model, CASES[4]));
  reloaded.dispose();
  model.dispose();
});

test("save round-trips: the published names, the same logits", () => {
  const model = makeModel(5);
  const dir = join(root, "round-trip");
  saveModel(model, dir);
  const stored = loadCheckpoint(dir);
  const names = [...stored.keys()];
  for (const t of stored.values()) t.dispose();
  assert.ok(names.includes("visual.patch_embed.proj.weight") && names.includes("visual.merger.mlp.2.bias"));
  assert.ok(names.includes("model.layers.1.mlp.down_proj.weight") && names.includes("lm_head.weight"));
  const loaded = loadModel(dir);
  for (const c of CASES) assert.deepEqual(logitsOf(loaded, c), logitsOf(model, c), c.name);
  loaded.dispose();
  model.dispose();
});

test("KV-cache decoding after images equals the uncached forward (left-padded batch)", () => {
  const model = makeModel(9);
  const prompt = CASES[5];
  const steps = [
    [5, 9],
    [17, 3],
    [40, 22],
  ];
  const full = {
    ...prompt,
    ids: prompt.ids.map((r, b) => [...r, ...steps.map((s) => s[b])]),
    mask: prompt.mask!.map((r) => [...r, ...steps.map(() => 1)]),
  };
  const t0 = prompt.ids[0].length;
  const uncached = logitsOf(model, full);
  const v = 64;
  const at = (b: number, pos: number) =>
    uncached.slice((b * full.ids[0].length + pos) * v, (b * full.ids[0].length + pos + 1) * v);
  const cache = new KVCache(model.numLayers);
  torch.noGrad(() => {
    const first = torch.tidy(() => {
      const { ids, options } = inputsOf(prompt);
      return Array.from(model.forward(ids, { ...options, cache }).data() as Float32Array);
    });
    for (let b = 0; b < 2; b++)
      for (const pos of [t0 - 1, t0 - 2]) {
        const mine = first.slice((b * t0 + pos) * v, (b * t0 + pos + 1) * v);
        assert.ok(maxAbs(mine, at(b, pos)) <= TOL, `prefill row ${b} position ${pos}`);
      }
    steps.forEach((s, i) => {
      const out = torch.tidy(() => {
        const ids = torch.tensor([[s[0]], [s[1]]], { dtype: "int64" });
        const attentionMask = torch.tensor(
          full.mask.map((r) => r.slice(0, t0 + i + 1)),
          { dtype: "int64" },
        );
        return Array.from(model.forward(ids, { attentionMask, cache }).data() as Float32Array);
      });
      for (let b = 0; b < 2; b++)
        assert.ok(maxAbs(out.slice(b * v, (b + 1) * v), at(b, t0 + i)) <= TOL, `step ${i} row ${b}`);
    });
  });
  cache.dispose();
  model.dispose();
});

function maxAbs(a: number[], b: number[]): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= worst)) worst = d;
  }
  return worst;
}

test("the image features reach the logits: other pixels, other logits after the image only", () => {
  const model = makeModel(3);
  const c = CASES[2];
  const other = { ...c, images: [image(A.grid, 99)] };
  const [x, y] = [logitsOf(model, c), logitsOf(model, other)];
  const v = 64;
  const before = 3 + 1; // text and <|vision_start|>
  assert.deepEqual(x.slice(0, before * v), y.slice(0, before * v));
  assert.ok(maxAbs(x.slice(before * v), y.slice(before * v)) > 1e-2);
  model.dispose();
});

test("a gradient reaches the vision tower's first weights and the decoder's", () => {
  const model = makeModel(4).train();
  torch.tidy(() => {
    const { ids, options } = inputsOf(CASES[2]);
    model.forward(ids, options).square().mean().backward();
  });
  for (const name of [
    "visual.patch_embed.proj.weight",
    "visual.blocks.0.attn.qkv.weight",
    "model.embed_tokens.weight",
  ]) {
    const p = model.namedParameters().find(([n]) => n === name)![1];
    assert.ok(p.grad && torch.tidy(() => p.grad!.abs().sum().item()) > 0, `${name} has no gradient`);
  }
  model.dispose();
});

test("bad image inputs are errors that say what is wrong", async () => {
  const model = makeModel(2);
  const c = CASES[2];
  const run = (options: Partial<ImageForwardOptions>, ids = c.ids) =>
    torch.noGrad(() =>
      torch.tidy(() => {
        const base = inputsOf({ ...c, ids });
        model.forward(base.ids, { ...base.options, ...options });
      }),
    );
  assert.throws(
    () => run({ pixelValues: null }),
    /inputIds hold 4 image tokens \(id 62\) but no pixelValues were given/,
  );
  assert.throws(
    () => run({ imageGridThw: torch.tensor([[1, 4, 2]], { dtype: "int64" }) }),
    /pixelValues has 16 patches; imageGridThw describes 8/,
  );
  assert.throws(
    () => run({ imageGridThw: torch.tensor([[1, 3, 4]], { dtype: "int64" }) }),
    /imageGridThw row 0: \[1,3,4\]/,
  );
  assert.throws(() => run({ pixelValues: torch.zeros([16, 5]) }), /pixelValues must be \[patches, 24\], got \[16,5\]/);
  const fewer = [[...text(3), START, IMAGE, IMAGE, END, ...text(4)]];
  assert.throws(() => run({}, fewer), /inputIds hold 2 image tokens \(id 62\); the images make 4/);
  const dir = join(root, "text-only");
  const qwen2 = createModel({
    ...CONFIG,
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    rope_scaling: null,
  });
  saveModel(qwen2, dir);
  qwen2.dispose();
  await assert.rejects(
    AutoModelForImageTextToText.fromPretrained(dir),
    /architecture 'qwen2' takes no images; load it with AutoModelForCausalLM/,
  );
  assert.throws(
    () => createModel({ ...CONFIG, rope_scaling: { type: "mrope", mrope_section: [2, 2, 2] } }),
    /rope_scaling.mrope_section \[2,2,2\] must sum to head_dim \/ 2 = 8/,
  );
  assert.throws(() => createModel({ ...CONFIG, vision_config: undefined }), /missing field vision_config/);
  model.dispose();
});

test("AutoModelForCausalLM loads a Qwen2-VL for text-only use", async () => {
  const dir = join(root, "causal");
  const model = makeModel(6);
  saveModel(model, dir);
  const loaded = await AutoModelForCausalLM.fromPretrained(dir);
  assert.equal(loaded.architecture, "qwen2_vl");
  assert.deepEqual(logitsOf(loaded, CASES[1]), logitsOf(model, CASES[1]));
  loaded.dispose();
  model.dispose();
});

test("generate with images: greedy, left-padded, a row leaving early, equals an uncached loop per prompt", () => {
  const model = makeModel(8);
  const prompts = [rowA, [...text(3), ...rowB]]; // 13 and 16 tokens
  const images = [[A], [B]];
  const limits = [2, 5];
  const { options } = inputsOf({ ids: [rowA], mask: null, images: [A, B] });
  const got = torch.noGrad(() =>
    generate(model, prompts, {
      maxNewTokens: limits,
      images: { pixelValues: options.pixelValues, imageGridThw: options.imageGridThw },
    }),
  );
  prompts.forEach((prompt, r) => {
    const ids = [...prompt];
    for (let i = 0; i < limits[r]; i++) {
      const logits = logitsOf(model, { name: "", ids: [ids], mask: null, images: images[r] });
      const last = logits.slice(logits.length - 64);
      ids.push(last.indexOf(Math.max(...last)));
    }
    assert.deepEqual(got.tokens[r], ids.slice(prompt.length), `prompt ${r}`);
  });
  assert.throws(
    () => generate(model, prompts, { images: { pixelValues: options.pixelValues }, useCache: false }),
    /generate: images need the KV cache/,
  );
  model.dispose();
});
