// The architecture registry, used as code outside the package would use it: everything here
// comes from the package entry ("omni-dpo"). A tiny architecture defined in this file (learned
// positions, single-head attention with a sliding window, tied head) is registered, then
// created, saved, loaded and generated with through the same createModel / loadModel /
// saveModel / AutoModelForCausalLM as the built-in ones, with its own checkpoint rules (an
// optional name prefix, a tied head, ignored buffers). It runs through DecoderLM's one layer
// loop: the KV cache and masks work, and only one layer's activation is alive at a time.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  torch,
  registerArchitecture,
  supportedArchitectures,
  createModel,
  loadModel,
  saveModel,
  AutoModelForCausalLM,
  generate,
  DecoderLM,
  Module,
  ModuleList,
  Embedding,
  Linear,
  RMSNorm,
  type ArchitectureSpec,
  type CausalLM,
  type DecoderLayer,
  type DecoderStep,
  type Init,
  type RawConfig,
} from "omni-dpo";

torch.setNumThreads(1); // tiny models: thread-pool overhead would dominate
const root = mkdtempSync(join(tmpdir(), "omni-dpo-registry-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const newDir = (what: string) => join(root, `${dirs++}-${what}`);

// ---- a tiny architecture, as a user would write one --------------------------------------------

interface TinyConfig {
  vocab: number;
  dim: number;
  layers: number;
  positions: number;
  window: number | null;
  tied: boolean;
}

function tinyConfig(raw: RawConfig): TinyConfig {
  const need = (key: string): number => {
    const v = raw[key];
    if (typeof v !== "number") throw new Error(`config.json: field ${key} must be a number, got ${JSON.stringify(v)}`);
    return v;
  };
  return {
    vocab: need("vocab_size"),
    dim: need("dim"),
    layers: need("n_layers"),
    positions: need("max_positions"),
    window: typeof raw.window === "number" ? raw.window : null,
    tied: raw.tie_word_embeddings === true,
  };
}

/** Live tensors at each layer's entry, while `probe.on`. */
const probe = { on: false, live: [] as number[] };

class TinyLayer extends Module implements DecoderLayer {
  readonly attentionWindow: number | null;
  readonly norm: RMSNorm;
  readonly qkv: Linear;
  readonly out: Linear;
  constructor(
    c: TinyConfig,
    readonly index: number,
    init: Init,
  ) {
    super();
    // Every other layer windowed, so the step makes two masks.
    this.attentionWindow = index % 2 === 1 ? c.window : null;
    this.norm = this.module("norm", new RMSNorm(c.dim, 1e-6, init));
    this.qkv = this.module("qkv", new Linear(c.dim, 3 * c.dim, true, init));
    this.out = this.module("out", new Linear(c.dim, c.dim, false, init));
  }
  forward(x: torch.Tensor, step: DecoderStep): torch.Tensor {
    if (probe.on) probe.live.push(torch.memory().tensors);
    const [b, t, d] = x.shape;
    const [q, k0, v0] = this.qkv
      .forward(this.norm.forward(x))
      .split(d, 2)
      .map((p) => p.view(b, t, 1, d).transpose(1, 2)); // [B, 1, T, D]
    const [k, v] = step.cache ? step.cache.update(this.index, k0, v0) : [k0, v0]; // [B, 1, past + T, D]
    const mask = step.mask(this.attentionWindow);
    const y = torch.scaledDotProductAttention(q, k, v, { attnMask: mask, isCausal: mask === null }); // [B, 1, T, D]
    return x.add(this.out.forward(y.transpose(1, 2).reshape(b, t, d)));
  }
}

class TinyBackbone extends Module {
  readonly tokens: Embedding;
  readonly positions: Embedding;
  readonly layers: TinyLayer[];
  readonly norm: RMSNorm;
  constructor(c: TinyConfig, init: Init) {
    super();
    this.tokens = this.module("tokens", new Embedding(c.vocab, c.dim, init));
    this.positions = this.module("positions", new Embedding(c.positions, c.dim, init));
    this.layers = this.module(
      "layers",
      new ModuleList(Array.from({ length: c.layers }, (_, i) => new TinyLayer(c, i, init))),
    ).items;
    this.norm = this.module("norm", new RMSNorm(c.dim, 1e-6, init));
  }
}

class TinyForCausalLM extends DecoderLM {
  readonly architecture = "tiny";
  readonly backbone: TinyBackbone;
  readonly lmHead: Linear | null;
  constructor(
    readonly config: RawConfig,
    readonly c: TinyConfig,
    init: Init,
  ) {
    super();
    this.backbone = this.module("backbone", new TinyBackbone(c, init));
    this.lmHead = c.tied ? null : this.module("lm_head", new Linear(c.dim, c.vocab, false, init));
  }
  get vocabSize(): number {
    return this.c.vocab;
  }
  get maxPositions(): number {
    return this.c.positions;
  }
  protected get decoderLayers(): readonly TinyLayer[] {
    return this.backbone.layers;
  }
  protected embed(inputIds: torch.Tensor, step: DecoderStep): torch.Tensor {
    return this.backbone.tokens.forward(inputIds).add(this.backbone.positions.forward(step.positions));
  }
  protected head(hidden: torch.Tensor): torch.Tensor {
    const h = this.backbone.norm.forward(hidden);
    return this.lmHead ? this.lmHead.forward(h) : torch.linear(h, this.backbone.tokens.weight);
  }
}

const TINY: ArchitectureSpec<TinyConfig> = {
  name: "tiny",
  architectures: ["TinyForCausalLM"],
  modelTypes: ["tiny"],
  parseConfig: tinyConfig,
  model: TinyForCausalLM,
  optionalPrefixes: ["backbone."],
  tiedWeights: (c): Record<string, string> => (c.tied ? { "lm_head.weight": "backbone.tokens.weight" } : {}),
  ignoredCheckpointNames: /\.causal_mask$/,
};
registerArchitecture(TINY);

// ---- helpers -----------------------------------------------------------------------------------

const VOCAB = 50;
const CONFIG: RawConfig = {
  architectures: ["TinyForCausalLM"],
  model_type: "tiny",
  vocab_size: VOCAB,
  dim: 16,
  n_layers: 4,
  max_positions: 64,
  window: 3,
  tie_word_embeddings: true,
  eos_token_id: 1,
};

/** A tiny model with every parameter random (norm weights around 1), peaked enough that greedy paths vary. */
function makeModel(config: RawConfig, seed: number): CausalLM {
  torch.manualSeed(seed);
  const model = createModel(config);
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, p] of model.namedParameters()) {
        let v = torch.randn(p.shape).mul(0.5);
        if (name.endsWith("norm.weight")) v = v.mul(0.2).add(1);
        model.setParameter(name, v);
      }
    }),
  );
  return model.eval();
}

const IDS = [
  [5, 17, 3, 38, 42, 9, 21],
  [0, 0, 0, 12, 7, 33, 2],
];
const MASK = [
  [1, 1, 1, 1, 1, 1, 1],
  [0, 0, 0, 1, 1, 1, 1],
];

function logits(model: CausalLM): Buffer {
  return torch.noGrad(() =>
    torch.tidy(() => {
      const d = model
        .forward(torch.tensor(IDS, { dtype: "int64" }), { attentionMask: torch.tensor(MASK, { dtype: "int64" }) })
        .data();
      return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    }),
  );
}

function parameterBytes(model: CausalLM): Map<string, string> {
  return new Map(
    model.namedParameters().map(([n, p]) => {
      const d = p.data();
      return [n, Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString("hex")];
    }),
  );
}

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail("expected an error");
}

// ---- tests -------------------------------------------------------------------------------------

test("a registered architecture is created, saved and loaded like a built-in one", async () => {
  assert.ok(supportedArchitectures().includes("TinyForCausalLM"));
  const model = makeModel(CONFIG, 1);
  assert.ok(model instanceof TinyForCausalLM);
  assert.equal(model.architecture, "tiny");
  assert.equal(model.numLayers, 4);
  const dir = newDir("tiny");
  saveModel(model, dir);
  assert.deepEqual(readdirSync(dir).sort(), ["config.json", "generation_config.json", "model.safetensors"]);
  assert.equal(JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).dim, 16);
  assert.equal(JSON.parse(readFileSync(join(dir, "generation_config.json"), "utf8")).eos_token_id, 1);

  const loaded = loadModel(dir);
  assert.ok(loaded instanceof TinyForCausalLM);
  assert.equal(loaded.training, false);
  assert.deepEqual(parameterBytes(loaded), parameterBytes(model));
  assert.ok(logits(loaded).equals(logits(model)), "logits differ after loading");
  const auto = await AutoModelForCausalLM.fromPretrained(dir);
  assert.ok(auto instanceof TinyForCausalLM);
  assert.deepEqual(parameterBytes(auto), parameterBytes(model));
  // model_type alone names it too
  const byType = createModel({ ...CONFIG, architectures: undefined });
  assert.equal(byType.architecture, "tiny");
  for (const m of [model, loaded, auto, byType]) m.dispose();
});

test("its checkpoint rules apply: names without the optional prefix, a stored tied head, ignored buffers", () => {
  const model = makeModel(CONFIG, 2);
  const dir = newDir("tiny-unprefixed");
  saveModel(model, dir);
  // Rewrite the weights as a checkpoint without "backbone.", with the tied head and a buffer stored.
  const params = model.namedParameters();
  const embedding = params.find(([n]) => n === "backbone.tokens.weight")![1];
  const stored: [string, torch.Tensor][] = [
    ...params.map(([n, p]) => [n.replace(/^backbone\./, ""), p.detach()] as [string, torch.Tensor]),
    ["lm_head.weight", embedding.detach()],
    ["layers.0.causal_mask", torch.ones([4, 4])],
  ];
  torch.tidy(() => writeSafetensors(join(dir, "model.safetensors"), stored));
  const loaded = loadModel(dir);
  assert.deepEqual(parameterBytes(loaded), parameterBytes(model));
  // saved back the way it was loaded: without the prefix, without the tied head or the buffer
  const out = newDir("tiny-unprefixed-resaved");
  saveModel(loaded, out);
  const names = Object.keys(header(join(out, "model.safetensors")))
    .filter((n) => n !== "__metadata__")
    .sort();
  assert.deepEqual(names, params.map(([n]) => n.replace(/^backbone\./, "")).sort());
  // an untied tiny model has (and needs) its own head
  const untied = makeModel({ ...CONFIG, tie_word_embeddings: false }, 3);
  assert.ok(untied.namedParameters().some(([n]) => n === "lm_head.weight"));
  for (const m of [model, loaded, untied]) m.dispose();
});

test("through DecoderLM's layer loop: KV-cache generation equals uncached, and one layer's activation is alive at a time", () => {
  const model = makeModel(CONFIG, 4);
  const prompts = [
    [11, 5, 42, 7, 3],
    [8, 2],
    [9, 31, 44, 20, 15, 27, 4],
  ];
  const cached = generate(model, prompts, { maxNewTokens: 8 });
  assert.deepEqual(generate(model, prompts, { maxNewTokens: 8, useCache: false }), cached);
  assert.ok(new Set(cached.tokens.flat()).size > 3, `degenerate generations: ${JSON.stringify(cached.tokens)}`);
  // Without autograd each layer starts with the same tensors alive: the previous activation
  // is gone once the next exists, and nothing a layer made outlives it.
  const deep = makeModel({ ...CONFIG, n_layers: 8 }, 5);
  probe.live = [];
  probe.on = true;
  try {
    torch.noGrad(() =>
      torch.tidy(() =>
        deep.forward(torch.tensor(IDS, { dtype: "int64" }), { attentionMask: torch.tensor(MASK, { dtype: "int64" }) }),
      ),
    );
  } finally {
    probe.on = false;
  }
  assert.equal(probe.live.length, 8);
  assert.deepEqual(probe.live, new Array(8).fill(probe.live[0]), `live tensors at each layer: ${probe.live}`);
  model.dispose();
  deep.dispose();
});

test("registerArchitecture refuses a spec that clashes with a registered one or is malformed", () => {
  assert.match(
    message(() => registerArchitecture(TINY)),
    /an architecture named 'tiny' is already registered/,
  );
  assert.match(
    message(() =>
      registerArchitecture({ ...TINY, name: "tiny2", architectures: ["LlamaForCausalLM"], modelTypes: [] }),
    ),
    /class LlamaForCausalLM is already registered, by 'llama'/,
  );
  assert.match(
    message(() => registerArchitecture({ ...TINY, name: "tiny3", architectures: ["Tiny3"], modelTypes: ["gpt2"] })),
    /model_type 'gpt2' is already registered, by 'gpt2'/,
  );
  const { parseConfig: _, ...noParser } = TINY;
  assert.match(
    message(() => registerArchitecture(noParser as unknown as ArchitectureSpec)),
    /registerArchitecture\('tiny'\): parseConfig must be a function/,
  );
  assert.match(
    message(() => registerArchitecture({ ...TINY, name: "" })),
    /name must be a non-empty string/,
  );
  assert.match(
    message(() => registerArchitecture({ ...TINY, name: "tiny4", architectures: [], modelTypes: [] })),
    /at least one class name or model_type/,
  );
  // a class that reports another architecture than its spec's name
  registerArchitecture({ ...TINY, name: "tiny-alias", architectures: ["TinyAliasForCausalLM"], modelTypes: [] });
  assert.match(
    message(() => createModel({ ...CONFIG, architectures: ["TinyAliasForCausalLM"] })),
    /architecture 'tiny-alias' made a model that reports architecture 'tiny'/,
  );
  // nothing half-registered: the failed specs' names resolve to nothing
  assert.ok(!supportedArchitectures().includes("Tiny3"));
  assert.match(
    message(() => createModel({ ...CONFIG, architectures: ["Tiny3"], model_type: "tiny3" })),
    /unsupported/,
  );
});

test("an unknown architecture's error lists every registered one, this file's included", () => {
  const msg = message(() => createModel({ architectures: ["BertForMaskedLM"], model_type: "bert" }));
  for (const cls of [
    "GPT2LMHeadModel",
    "LlamaForCausalLM",
    "Qwen2ForCausalLM",
    "MistralForCausalLM",
    "TinyForCausalLM",
  ])
    assert.ok(msg.includes(cls), `${cls} not in: ${msg}`);
  assert.match(
    message(() => createModel({ architectures: "LlamaForCausalLM" as unknown as string[] })),
    /field architectures must be a list of class names/,
  );
});

// ---- a safetensors file written by hand (the format is public; this test needs nothing more) ---

function writeSafetensors(file: string, tensors: [string, torch.Tensor][]): void {
  const head: Record<string, unknown> = {};
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const d = t.to("float32").data();
    const bytes = Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    head[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  const json = Buffer.from(JSON.stringify(head));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(file, Buffer.concat([len, json, ...chunks]));
}

function header(file: string): Record<string, unknown> {
  const bytes = readFileSync(file);
  return JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString("utf8"));
}
