// Loading errors say what is wrong and where: an unsupported architecture lists the supported
// ones; a checkpoint with missing, unexpected or misshapen tensors lists their names; a directory
// without config.json or without weights is named; a sharded index naming an absent shard names it.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { createModel, loadModel, saveModel } from "../../src/models/auto.js";
import type { RawConfig } from "../../src/models/config.js";
import { loadSafetensors, saveCheckpoint } from "../../src/models/safetensors.js";
import { TINY_LLAMA } from "../helpers/toy.js";

torch.setNumThreads(1); // tiny models: thread-pool overhead would dominate
const root = mkdtempSync(join(tmpdir(), "omni-dpo-models-errors-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const newDir = (what: string) => join(root, `${dirs++}-${what}`);

const GPT2: RawConfig = {
  architectures: ["GPT2LMHeadModel"],
  model_type: "gpt2",
  vocab_size: 97,
  n_positions: 64,
  n_embd: 32,
  n_layer: 2,
  n_head: 4,
};
const SUPPORTED = ["GPT2LMHeadModel", "LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"];

/** A saved tiny model's directory. */
function savedModel(config: RawConfig, what: string): string {
  torch.manualSeed(3);
  const model = createModel(config, { std: 0.2 });
  const dir = newDir(what);
  saveModel(model, dir);
  model.dispose();
  return dir;
}

/** Rewrites the directory's model.safetensors through `edit` of its [name, tensor] list. */
function editWeights(dir: string, edit: (entries: [string, torch.Tensor][]) => [string, torch.Tensor][]): void {
  torch.tidy(() => {
    const file = join(dir, "model.safetensors");
    const entries = [...loadSafetensors(file).entries()];
    saveCheckpoint(dir, edit(entries));
  });
}

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail("expected an error");
}

test("an unsupported architecture is an error that lists the supported ones", () => {
  const dir = newDir("bert");
  mkdirSync(dir);
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({ architectures: ["BertForMaskedLM"], model_type: "bert", hidden_size: 32 }),
  );
  for (const msg of [
    message(() => loadModel(dir)),
    message(() => createModel({ architectures: ["BertForMaskedLM"], model_type: "bert" })),
  ]) {
    assert.match(msg, /unsupported/);
    assert.match(msg, /BertForMaskedLM/);
    for (const s of SUPPORTED) assert.ok(msg.includes(s), `${s} not listed in: ${msg}`);
  }
  // named by model_type only
  const msg = message(() => createModel({ model_type: "t5" }));
  assert.match(msg, /t5/);
  for (const s of SUPPORTED) assert.ok(msg.includes(s), `${s} not listed in: ${msg}`);
});

test("architectures win over model_type, and model_type alone is enough", () => {
  const byType = createModel({ ...TINY_LLAMA, architectures: undefined, model_type: "mistral", sliding_window: 4 });
  assert.equal(byType.architecture, "mistral");
  byType.dispose();
  const byClass = createModel({ ...TINY_LLAMA, architectures: ["Qwen2ForCausalLM"], model_type: "llama" });
  assert.equal(byClass.architecture, "qwen2");
  byClass.dispose();
});

test("a checkpoint with missing tensors names them", () => {
  const dir = savedModel(TINY_LLAMA, "missing");
  const gone = ["model.layers.1.mlp.up_proj.weight", "model.norm.weight"];
  editWeights(dir, (entries) => entries.filter(([n]) => !gone.includes(n)));
  const msg = message(() => loadModel(dir));
  assert.ok(msg.includes(dir), msg);
  assert.match(msg, /missing tensors/);
  for (const n of gone) assert.ok(msg.includes(n), `${n} not in: ${msg}`);
  assert.doesNotMatch(msg, /unexpected/);
});

test("a checkpoint with unexpected tensors names them", () => {
  const dir = savedModel(TINY_LLAMA, "unexpected");
  const extra = ["model.layers.0.self_attn.extra_proj.weight", "model.layers.2.mlp.gate_proj.weight"];
  editWeights(dir, (entries) => [...entries, ...extra.map((n) => [n, torch.zeros([4, 4])] as [string, torch.Tensor])]);
  const msg = message(() => loadModel(dir));
  assert.match(msg, /unexpected tensors/);
  for (const n of extra) assert.ok(msg.includes(n), `${n} not in: ${msg}`);
  assert.doesNotMatch(msg, /missing/);
});

test("missing and unexpected tensors together (a GPT-2 with a renamed tensor)", () => {
  const dir = savedModel(GPT2, "renamed");
  editWeights(dir, (entries) =>
    entries.map(([n, t]) => [n === "transformer.h.0.mlp.c_fc.weight" ? "transformer.h.0.mlp.fc_in.weight" : n, t]),
  );
  const msg = message(() => loadModel(dir));
  assert.match(msg, /missing tensors: transformer\.h\.0\.mlp\.c_fc\.weight/);
  assert.match(msg, /unexpected tensors: transformer\.h\.0\.mlp\.fc_in\.weight/);
});

test("a tensor of the wrong shape names the parameter and both shapes", () => {
  const dir = savedModel(TINY_LLAMA, "shape");
  editWeights(dir, (entries) =>
    entries.map(([n, t]) => [n, n === "model.layers.0.self_attn.k_proj.weight" ? torch.zeros([32, 32]) : t]),
  );
  editWeights(dir, (entries) => entries.map(([n, t]) => [n, n === "model.norm.weight" ? torch.ones([31]) : t]));
  const msg = message(() => loadModel(dir));
  assert.ok(msg.includes(dir), msg);
  assert.match(msg, /wrong shape/);
  assert.match(msg, /model\.layers\.0\.self_attn\.k_proj\.weight \[32,32\] \(model: \[16,32\]\)/);
  assert.match(msg, /model\.norm\.weight \[31\] \(model: \[32\]\)/);
  assert.doesNotMatch(msg, /missing|unexpected/);
  // setParameter itself names the whole dotted path too
  torch.manualSeed(3);
  const model = createModel(TINY_LLAMA);
  const direct = message(() =>
    torch.tidy(() => model.setParameter("model.layers.1.mlp.down_proj.weight", torch.zeros([2, 2]))),
  );
  assert.match(direct, /model\.layers\.1\.mlp\.down_proj\.weight/);
  assert.match(
    message(() => torch.tidy(() => model.setParameter("model.layers.1.mlp.nope", torch.zeros([2])))),
    /model\.layers\.1\.mlp\.nope/,
  );
  model.dispose();
});

test("a directory without config.json is named", () => {
  const dir = newDir("empty");
  mkdirSync(dir);
  const msg = message(() => loadModel(dir));
  assert.ok(msg.includes(dir), msg);
  assert.match(msg, /config\.json/);
});

test("a directory without weights is named, and the expected files too", () => {
  const dir = savedModel(TINY_LLAMA, "no-weights");
  unlinkSync(join(dir, "model.safetensors"));
  let msg = message(() => loadModel(dir));
  assert.ok(msg.includes(dir), msg);
  assert.match(msg, /model\.safetensors/);
  // a PyTorch pickle is pointed at but not read
  writeFileSync(join(dir, "pytorch_model.bin"), "not read");
  msg = message(() => loadModel(dir));
  assert.ok(msg.includes(dir) && msg.includes("pytorch_model.bin"), msg);
});

test("a sharded index naming an absent shard names the shard", () => {
  torch.manualSeed(3);
  const model = createModel(TINY_LLAMA, { std: 0.2 });
  const dir = newDir("sharded");
  saveModel(model, dir, { maxShardBytes: 10_000 });
  model.dispose();
  const second = readdirSync(dir).filter((f) => /^model-00002-of-\d{5}\.safetensors$/.test(f));
  assert.equal(second.length, 1, readdirSync(dir).join(", "));
  unlinkSync(join(dir, second[0]));
  const msg = message(() => loadModel(dir));
  assert.ok(msg.includes(second[0]), msg);
});

test("an invalid config.json names the file", () => {
  const dir = newDir("bad-json");
  mkdirSync(dir);
  writeFileSync(join(dir, "config.json"), "{ not json");
  const msg = message(() => loadModel(dir));
  assert.ok(msg.includes(join(dir, "config.json")), msg);
});

test("config.json sizes must be positive integers and the heads must divide, naming the file and the field", () => {
  const base = savedModel(TINY_LLAMA, "sizes");
  const gpt2 = savedModel(GPT2, "sizes-gpt2");
  const cases: [string, RawConfig, RegExp][] = [
    [base, { ...TINY_LLAMA, num_attention_heads: 0 }, /field num_attention_heads must be a positive integer, got 0/],
    [base, { ...TINY_LLAMA, num_hidden_layers: -1 }, /field num_hidden_layers must be a positive integer, got -1/],
    [base, { ...TINY_LLAMA, hidden_size: 32.5 }, /field hidden_size must be a positive integer, got 32.5/],
    [base, { ...TINY_LLAMA, vocab_size: "97" }, /field vocab_size must be a positive integer, got "97"/],
    [
      base,
      { ...TINY_LLAMA, num_key_value_heads: 3 },
      /num_attention_heads 4 is not a multiple of num_key_value_heads 3/,
    ],
    [
      base,
      { ...TINY_LLAMA, num_attention_heads: 5, num_key_value_heads: 5 },
      /hidden_size \(32\) must be a multiple of num_attention_heads \(5\)/,
    ],
    [base, { ...TINY_LLAMA, max_position_embeddings: 0 }, /field max_position_embeddings must be a positive integer/],
    [gpt2, { ...GPT2, n_head: 0 }, /field n_head must be a positive integer, got 0/],
    [gpt2, { ...GPT2, n_head: 3 }, /n_embd \(32\) must be a multiple of n_head \(3\)/],
    [base, { ...TINY_LLAMA, hidden_act: "relu" }, /hidden_act 'relu' is not supported/],
  ];
  for (const [dir, config, pattern] of cases) {
    writeFileSync(join(dir, "config.json"), JSON.stringify(config));
    const msg = message(() => loadModel(dir));
    assert.ok(msg.startsWith(`${join(dir, "config.json")}: `), msg);
    assert.match(msg, pattern);
  }
});
