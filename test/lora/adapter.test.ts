// LoRA adapters on real models: a fresh adapter (B = 0) leaves the logits exactly as they were;
// the adapted forward equals the model with merged weights W + scaling·B·A (alpha/r, rsLoRA
// alpha/sqrt(r)) to 1e-5, for Linear (Llama) and Conv1D (GPT-2); only adapter parameters get
// gradients; turning the adapters off gives the base model back; bfloat16 bases keep float32
// adapters; bad settings are errors naming the setting.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { loadModel } from "../../src/models/auto.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import { attachLora, loraOf, type LoraSettings } from "../../src/nn/lora.js";
import { tempDir, writeToyModel, probeLogits, maxAbsDiff, PROBE_IDS } from "../helpers/toy.js";

torch.setNumThreads(1);
const root = tempDir("omni-dpo-lora-");
after(() => rmSync(root, { recursive: true, force: true }));
const llamaDir = writeToyModel(join(root, "llama"), { seed: 3 });
const gpt2Dir = writeToyModel(join(root, "gpt2"), { architecture: "gpt2", seed: 4 });

const settings = (over: Partial<LoraSettings> = {}): LoraSettings => ({
  r: 4,
  alpha: 8,
  dropout: 0,
  targetModules: "all-linear",
  modulesToSave: [],
  useRslora: false,
  ...over,
});

/** Gives every lora_B random values (a fresh adapter's are zero, which would hide the scaling). */
function randomiseB(model: CausalLM, seed: number): void {
  torch.manualSeed(seed);
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const l of loraOf(model)!.layers) l.b.weight.copy_(torch.randn(l.b.weight.shape).mul(0.3));
    }),
  );
}

test("a fresh adapter (B = 0) leaves the logits exactly as the base model's, Llama and GPT-2", () => {
  for (const dir of [llamaDir, gpt2Dir]) {
    const model = loadModel(dir);
    const before = probeLogits(model);
    const lora = attachLora(model, settings());
    assert.ok(lora.layers.length > 0);
    for (const l of lora.layers) assert.ok(l.a.weight.abs().max().item() > 0, `${l.name}: A starts random`);
    assert.deepEqual(probeLogits(model), before, dir);
    model.dispose();
  }
});

test("all-linear wraps every linear layer but the head; names follow PEFT's (…q_proj.lora_A.weight)", () => {
  const model = loadModel(llamaDir);
  const lora = attachLora(model, settings());
  assert.deepEqual([...lora.settings.targetModules].sort(), [
    "down_proj",
    "gate_proj",
    "k_proj",
    "o_proj",
    "q_proj",
    "up_proj",
    "v_proj",
  ]);
  assert.equal(lora.layers.length, 2 * 7);
  const names = model.namedParameters().map(([n]) => n);
  assert.ok(names.includes("model.layers.0.self_attn.q_proj.lora_A.weight"));
  assert.ok(names.includes("model.layers.1.mlp.down_proj.lora_B.weight"));
  assert.ok(!names.some((n) => n.startsWith("lm_head.lora")));
  const a = model.namedParameters().find(([n]) => n === "model.layers.0.self_attn.q_proj.lora_A.weight")![1];
  assert.deepEqual(a.shape, [4, 32]);
  model.dispose();
});

for (const [label, dir, useRslora] of [
  ["Llama", llamaDir, false],
  ["Llama, rsLoRA", llamaDir, true],
  ["GPT-2 (Conv1D)", gpt2Dir, false],
] as const) {
  test(`the adapted forward equals the merged weights W + scaling·B·A to 1e-5 (${label})`, () => {
    const s = settings({ r: 4, alpha: 16, useRslora });
    const model = loadModel(dir);
    attachLora(model, s);
    randomiseB(model, 11);
    const adapted = probeLogits(model);
    // The merge written out here, independently of mergeAndUnload: W + (alpha/r)·B·A, transposed for Conv1D's [in, out].
    const scaling = useRslora ? 16 / Math.sqrt(4) : 16 / 4;
    const merged = loadModel(dir);
    torch.noGrad(() =>
      torch.tidy(() => {
        const params = new Map(merged.namedParameters());
        for (const l of loraOf(model)!.layers) {
          const w = params.get(`${l.name}.weight`)!;
          const delta = l.b.weight.matmul(l.a.weight).mul(scaling);
          w.copy_(w.add(l.layer.constructor.name === "Conv1D" ? delta.t() : delta));
        }
      }),
    );
    const expected = probeLogits(merged);
    assert.ok(maxAbsDiff(adapted, expected) < 1e-5, `max diff ${maxAbsDiff(adapted, expected)}`);
    assert.ok(maxAbsDiff(adapted, probeLogits(loadModel(dir))) > 1e-3, "the adapter changes the logits");
    // mergeAndUnload gives the same model, with no adapter parameters left.
    loraOf(model)!.mergeAndUnload();
    assert.ok(maxAbsDiff(probeLogits(model), expected) < 1e-5);
    assert.ok(!model.namedParameters().some(([n]) => n.includes("lora_")));
    assert.equal(loraOf(model), null);
    model.dispose();
    merged.dispose();
  });
}

test("only adapter parameters receive gradients", () => {
  const model = loadModel(llamaDir);
  const lora = attachLora(model, settings({ targetModules: ["q_proj", "v_proj"] }));
  randomiseB(model, 5);
  torch.tidy(() => {
    const out = model.forward(torch.tensor(PROBE_IDS, { dtype: "int64" }));
    out.pow(2).mean().backward();
  });
  const adapter = new Set(lora.parameters());
  for (const [name, p] of model.namedParameters()) {
    if (adapter.has(p)) {
      assert.equal(p.dtype, "float32");
      assert.ok(p.grad !== null && p.grad.abs().max().item() > 0, `${name} has a gradient`);
    } else {
      assert.equal(p.requiresGrad, false, `${name} is frozen`);
      assert.equal(p.grad, null, `${name} has no gradient`);
    }
  }
  assert.deepEqual(
    lora
      .namedParameters()
      .map(([n]) => n)
      .filter((n) => n.startsWith("model.layers.0.")),
    [
      "model.layers.0.self_attn.q_proj.lora_A.weight",
      "model.layers.0.self_attn.q_proj.lora_B.weight",
      "model.layers.0.self_attn.v_proj.lora_A.weight",
      "model.layers.0.self_attn.v_proj.lora_B.weight",
    ],
  );
  model.dispose();
});

test("with its adapters switched off the model is its base again (the LoRA reference model); modules_to_save too", () => {
  const base = probeLogits(loadModel(llamaDir));
  const model = loadModel(llamaDir);
  const lora = attachLora(model, settings({ modulesToSave: ["lm_head"] }));
  randomiseB(model, 9);
  const head = model.namedParameters().find(([n]) => n === "lm_head.weight")![1];
  assert.ok(head.requiresGrad, "modules_to_save train in full");
  torch.noGrad(() => head.copy_(head.add(0.5))); // as a trained head would differ
  const adapted = probeLogits(model);
  const off = lora.withAdaptersDisabled(() => probeLogits(model));
  assert.deepEqual(off, base);
  assert.deepEqual(probeLogits(model), adapted, "switched back on, the trained values are back");
  assert.ok(maxAbsDiff(adapted, base) > 1e-3);
  model.dispose();
});

test("a bfloat16 base keeps float32 adapters and gives bfloat16 logits", () => {
  const model = loadModel(llamaDir, { dtype: "bfloat16" });
  const before = probeLogits(model);
  const lora = attachLora(model, settings());
  for (const p of lora.parameters()) assert.equal(p.dtype, "float32");
  assert.deepEqual(probeLogits(model), before);
  const out = torch.noGrad(() => model.forward(torch.tensor(PROBE_IDS, { dtype: "int64" })));
  assert.equal(out.dtype, "bfloat16");
  out.dispose();
  model.dispose();
});

test("bad settings are errors naming the setting", () => {
  const model = loadModel(llamaDir);
  const names = {
    r: "lora_r",
    alpha: "lora_alpha",
    dropout: "lora_dropout",
    targetModules: "lora_target_modules",
    modulesToSave: "lora_modules_to_save",
    useRslora: "use_rslora",
  };
  assert.throws(
    () => attachLora(model, settings({ r: 0 }), "recipe.yaml", names),
    /recipe\.yaml: lora_r must be a positive integer, got 0/,
  );
  assert.throws(
    () => attachLora(model, settings({ r: 2.5 }), "recipe.yaml", names),
    /lora_r must be a positive integer/,
  );
  assert.throws(
    () => attachLora(model, settings({ targetModules: ["q_proj", "qkv_proj"] }), "recipe.yaml", names),
    /recipe\.yaml: lora_target_modules 'qkv_proj' matches no layer of the model; its linear layers are q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head/,
  );
  assert.throws(
    () => attachLora(model, settings({ targetModules: ["input_layernorm"] }), "recipe.yaml", names),
    /lora_target_modules 'input_layernorm' matches model\.layers\.0\.input_layernorm, a RMSNorm; only Linear and Conv1D/,
  );
  assert.throws(
    () => attachLora(model, settings({ modulesToSave: ["score"] }), "recipe.yaml", names),
    /lora_modules_to_save 'score' is not a module/,
  );
  assert.throws(
    () => attachLora(model, settings({ dropout: 1 }), "recipe.yaml", names),
    /lora_dropout must lie in \[0, 1\)/,
  );
  // Nothing was left attached by the refusals.
  assert.equal(loraOf(model), null);
  assert.ok(!model.namedParameters().some(([n]) => n.includes("lora_")));
  assert.ok(model.parameters().every((p) => p.requiresGrad));
  model.dispose();
});
