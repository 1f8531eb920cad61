// Adapters in PEFT's layout: one written by hand as PEFT writes it (adapter_config.json and
// adapter_model.safetensors with PEFT's names) loads through AutoModelForCausalLM.fromPretrained
// and gives the logits of W + scaling·B·A; one saved here loads back exactly; `omni-dpo merge`
// writes a plain checkpoint with the adapter model's logits, and `omni-dpo generate` takes the
// adapter directory; a base that does not match, or a config PEFT would not write, is an error
// naming the file and the field or tensor.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { AutoModelForCausalLM, loadModel } from "../../src/models/auto.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import { saveAdapter } from "../../src/models/peft.js";
import { saveSafetensors } from "../../src/models/safetensors.js";
import { attachLora, loraOf } from "../../src/nn/lora.js";
import { packageRoot } from "../../src/util/package-root.js";
import { tempDir, writeToyModel, probeLogits, maxAbsDiff } from "../helpers/toy.js";

torch.setNumThreads(1);
const CLI = join(packageRoot(), "dist", "src", "cli", "main.js");
const root = tempDir("omni-dpo-peft-");
after(() => rmSync(root, { recursive: true, force: true }));
const llamaDir = writeToyModel(join(root, "llama"), { seed: 5 });
const gpt2Dir = writeToyModel(join(root, "gpt2"), { architecture: "gpt2", seed: 6 });
let dirs = 0;
const newDir = (what: string) => join(root, `${dirs++}-${what}`);

/** adapter_config.json as PEFT 0.13's save_pretrained writes it for a LoraConfig. */
function peftConfig(base: string, over: Record<string, unknown> = {}): string {
  return JSON.stringify(
    {
      alpha_pattern: {},
      auto_mapping: null,
      base_model_name_or_path: base,
      bias: "none",
      fan_in_fan_out: false,
      inference_mode: true,
      init_lora_weights: true,
      layer_replication: null,
      layers_pattern: null,
      layers_to_transform: null,
      loftq_config: {},
      lora_alpha: 16,
      lora_dropout: 0.05,
      megatron_config: null,
      megatron_core: "megatron.core",
      modules_to_save: null,
      peft_type: "LORA",
      r: 4,
      rank_pattern: {},
      revision: null,
      target_modules: ["v_proj", "q_proj"],
      task_type: "CAUSAL_LM",
      use_dora: false,
      use_rslora: false,
      ...over,
    },
    null,
    2,
  );
}

interface HandAdapter {
  dir: string;
  tensors: Map<string, torch.Tensor>;
}

/** Random lora_A/lora_B for `layers` (full names, [in, out] sizes), written with PEFT's names. */
function writeHandAdapter(
  base: string,
  layers: [string, number, number][],
  config: Record<string, unknown> = {},
  r = 4,
): HandAdapter {
  const dir = newDir("adapter");
  mkdirSync(dir);
  torch.manualSeed(dirs);
  const tensors = new Map<string, torch.Tensor>();
  for (const [name, inF, outF] of layers) {
    tensors.set(`base_model.model.${name}.lora_A.weight`, torch.randn([r, inF]).mul(0.3).keep());
    tensors.set(`base_model.model.${name}.lora_B.weight`, torch.randn([outF, r]).mul(0.3).keep());
  }
  saveSafetensors(join(dir, "adapter_model.safetensors"), [...tensors]);
  writeFileSync(join(dir, "adapter_config.json"), peftConfig(base, config));
  return { dir, tensors };
}

const llamaQV = (layers = 2): [string, number, number][] =>
  Array.from(
    { length: layers },
    (_, i) =>
      [
        [`model.layers.${i}.self_attn.q_proj`, 32, 32],
        [`model.layers.${i}.self_attn.v_proj`, 32, 16],
      ] as [string, number, number][],
  ).flat();

/** The base model with W + scaling·B·A written into each adapted weight by hand (transposed for Conv1D). */
function mergedByHand(base: string, adapter: HandAdapter, scaling: number, transposed = false): CausalLM {
  const model = loadModel(base);
  const params = new Map(model.namedParameters());
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, a] of adapter.tensors) {
        if (!name.endsWith(".lora_A.weight")) continue;
        const layer = name.slice("base_model.model.".length, -".lora_A.weight".length);
        const b = adapter.tensors.get(name.replace("lora_A", "lora_B"))!;
        const w = params.get(`${layer}.weight`)!;
        const delta = b.matmul(a).mul(scaling);
        w.copy_(w.add(transposed ? delta.t() : delta));
      }
    }),
  );
  return model;
}

test("an adapter written by hand as PEFT writes it loads through fromPretrained with the expected logits (Llama)", async () => {
  const adapter = writeHandAdapter(llamaDir, llamaQV());
  const model = await AutoModelForCausalLM.fromPretrained(adapter.dir);
  const lora = loraOf(model)!;
  assert.equal(lora.layers.length, 4);
  assert.equal(lora.scaling, 4);
  assert.equal(model.training, false);
  const expected = mergedByHand(llamaDir, adapter, 16 / 4);
  assert.ok(
    maxAbsDiff(probeLogits(model), probeLogits(expected)) < 1e-5,
    `max diff ${maxAbsDiff(probeLogits(model), probeLogits(expected))}`,
  );
  model.dispose();
  expected.dispose();
});

test("a GPT-2 adapter on c_attn (Conv1D, fan_in_fan_out) with rsLoRA and a base path relative to the adapter loads with the expected logits", async () => {
  const layers: [string, number, number][] = [0, 1].map((i) => [`transformer.h.${i}.attn.c_attn`, 32, 96]);
  const adapter = writeHandAdapter("../gpt2", layers, {
    target_modules: ["c_attn"],
    fan_in_fan_out: true,
    use_rslora: true,
    lora_alpha: 6,
  });
  const model = await AutoModelForCausalLM.fromPretrained(adapter.dir);
  const expected = mergedByHand(gpt2Dir, adapter, 6 / Math.sqrt(4), true);
  assert.ok(maxAbsDiff(probeLogits(model), probeLogits(expected)) < 1e-5);
  model.dispose();
  expected.dispose();
});

test("an adapter saved here loads back to the same logits, with PEFT's config fields", () => {
  const model = loadModel(llamaDir);
  attachLora(model, {
    r: 2,
    alpha: 5,
    dropout: 0.1,
    targetModules: "all-linear",
    modulesToSave: ["lm_head"],
    useRslora: false,
  });
  torch.manualSeed(2);
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const l of loraOf(model)!.layers) l.b.weight.copy_(torch.randn(l.b.weight.shape).mul(0.3));
      const head = model.namedParameters().find(([n]) => n === "lm_head.weight")![1];
      head.copy_(head.mul(1.5));
    }),
  );
  const dir = newDir("saved");
  saveAdapter(model, dir, { baseModelNameOrPath: llamaDir });
  const back = loadModel(dir);
  assert.deepEqual(probeLogits(back), probeLogits(model));
  assert.deepEqual(loraOf(back)!.settings.modulesToSave, ["lm_head"]);
  model.dispose();
  back.dispose();
});

test("omni-dpo merge writes a plain checkpoint whose logits equal the adapter model's; generate takes the adapter directory", () => {
  const adapter = writeHandAdapter(llamaDir, llamaQV());
  const out = newDir("merged");
  const r = spawnSync(process.execPath, [CLI, "merge", "--adapter", adapter.dir, "--out", out], {
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /\(left unchanged\) with the adapter .* merged into its 4 adapted layers/);
  assert.ok(
    existsSync(join(out, "config.json")) &&
      existsSync(join(out, "model.safetensors")) &&
      existsSync(join(out, "tokenizer.json")),
  );
  assert.ok(!existsSync(join(out, "adapter_config.json")));
  const merged = loadModel(out);
  assert.equal(loraOf(merged), null);
  assert.ok(!merged.namedParameters().some(([n]) => n.includes("lora_")));
  const adapted = loadModel(adapter.dir);
  assert.ok(maxAbsDiff(probeLogits(merged), probeLogits(adapted)) < 1e-5);
  merged.dispose();
  adapted.dispose();
  // The adapter directory has no tokenizer of its own: generate takes the base model's.
  const gen = (dir: string) =>
    spawnSync(
      process.execPath,
      [CLI, "generate", "--model", dir, "--prompt", "say apple:", "--max-new-tokens", "4", "--json", "--device", "cpu"],
      { encoding: "utf8", timeout: 60_000 },
    );
  const fromAdapter = gen(adapter.dir);
  assert.equal(fromAdapter.status, 0, fromAdapter.stderr);
  assert.equal(JSON.parse(fromAdapter.stdout).completion, JSON.parse(gen(out).stdout).completion);
  const refused = spawnSync(process.execPath, [CLI, "merge", "--adapter", adapter.dir, "--out", llamaDir], {
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /is the base model's directory; merging would overwrite it/);
});

test("a base that does not match the adapter is an error naming the file and the tensor or field", () => {
  const configFile = (a: HandAdapter) => join(a.dir, "adapter_config.json");
  // Shapes: a lora_A made for another hidden size.
  const wrongShape = writeHandAdapter(llamaDir, [
    ["model.layers.0.self_attn.q_proj", 48, 32],
    ["model.layers.0.self_attn.v_proj", 32, 16],
    ...llamaQV().slice(2),
  ]);
  assert.throws(
    () => loadModel(wrongShape.dir),
    (e: Error) =>
      e.message.includes(join(wrongShape.dir, "adapter_model.safetensors")) &&
      e.message.includes(
        "tensor base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight has shape [4, 48], the base model's layer needs [4, 32]",
      ),
  );
  // A layer the base lacks (an adapter for a deeper model).
  const deeper = writeHandAdapter(llamaDir, llamaQV(3));
  assert.throws(
    () => loadModel(deeper.dir),
    /tensor base_model\.model\.model\.layers\.2\.self_attn\.q_proj\.lora_A\.weight has no adapter parameter in the base model/,
  );
  // A tensor missing from the file.
  const missing = writeHandAdapter(llamaDir, llamaQV().slice(1));
  assert.throws(
    () => loadModel(missing.dir),
    /missing tensors: base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight/,
  );
  // Architecture: a Llama adapter on a GPT-2 base.
  const otherArch = writeHandAdapter(gpt2Dir, llamaQV());
  assert.throws(
    () => loadModel(otherArch.dir),
    (e: Error) =>
      e.message.startsWith(configFile(otherArch)) &&
      /field target_modules 'v_proj', 'q_proj' match no layer of the model; its linear layers are c_attn, c_proj, c_fc/.test(
        e.message,
      ),
  );
  // Fields.
  const fields: [Record<string, unknown>, RegExp][] = [
    [{ r: 0 }, /field r must be a positive integer, got 0/],
    [{ peft_type: "PREFIX_TUNING" }, /field peft_type must be "LORA"/],
    [{ use_dora: true }, /field use_dora is not supported/],
    [{ target_modules: ["q_proj", "qkv"] }, /field target_modules 'qkv' matches no layer/],
    [
      { base_model_name_or_path: "no-such-model" },
      /field base_model_name_or_path 'no-such-model' is not a model directory here/,
    ],
  ];
  for (const [over, pattern] of fields) {
    const a = writeHandAdapter(llamaDir, llamaQV(), over);
    assert.throws(
      () => loadModel(a.dir),
      (e: Error) => e.message.startsWith(configFile(a)) && pattern.test(e.message),
      JSON.stringify(over),
    );
  }
});

test("merge refuses an --out holding a model unless --force, and the adapter's or base's directory always", () => {
  const adapter = writeHandAdapter(llamaDir, llamaQV());
  const merge = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, "merge", "--adapter", adapter.dir, ...args], {
      encoding: "utf8",
      timeout: 60_000,
    });
  const run = writeToyModel(newDir("run"), { seed: 9 });
  const before = readFileSync(join(run, "model.safetensors"));
  const refused = merge("--out", run);
  assert.equal(refused.status, 1, refused.stderr);
  assert.match(refused.stderr, /--out .*run already holds a model \(.*config\.json.*\).*--force/);
  assert.deepEqual(readFileSync(join(run, "model.safetensors")), before, "the run's model is untouched");
  const forced = merge("--out", run, "--force");
  assert.equal(forced.status, 0, forced.stderr);
  assert.notDeepEqual(readFileSync(join(run, "model.safetensors")), before, "--force replaces it");
  symlinkSync(adapter.dir, join(root, "adapter-link"));
  for (const [out, name] of [
    [join(root, "adapter-link"), "the adapter's"],
    [llamaDir, "the base model's"],
  ]) {
    const r = merge("--out", out, "--force");
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`is ${name} directory; merging would overwrite it`));
  }
  const help = spawnSync(process.execPath, [CLI, "merge", "--help"], { encoding: "utf8" });
  assert.match(help.stdout, /--force/);
});
