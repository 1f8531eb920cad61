// saveModel on a model with LoRA adapters writes what it is: the adapter directory (PEFT's
// layout) by default, the merged model with { merged: true } (the model keeps its adapters);
// mergeAdapter(adapterDir, outDir) writes the same merged model. Checked by the logits: the
// merged model computes what the adapted one does.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { attachLora, loadAdapterModel, loadModel, loraOf, mergeAdapter, saveModel, torch } from "../../src/index.js";
import { readHeader } from "../../src/models/safetensors.js";
import { maxAbsDiff, probeLogits, tempDir, writeToyModel } from "../helpers/toy.js";

const root = tempDir("omni-dpo-savemodel-");
after(() => rmSync(root, { recursive: true, force: true }));

test("saveModel writes a LoRA model's adapter by default and its merged weights with { merged: true }", async () => {
  const base = writeToyModel(join(root, "base"), { seed: 2 });
  const model = loadModel(base);
  attachLora(model, {
    r: 4,
    alpha: 8,
    dropout: 0,
    targetModules: ["q_proj", "v_proj"],
    modulesToSave: [],
    useRslora: false,
  });
  torch.manualSeed(1);
  // B starts at 0 (no change); random adapters make the merge visible.
  torch.noGrad(() => {
    for (const [, p] of loraOf(model)!.namedParameters()) p.copy_(torch.randn(p.shape).mul(0.2));
  });
  const adapterDir = join(root, "adapter");
  saveModel(model, adapterDir, { baseModelNameOrPath: base });
  assert.ok(existsSync(join(adapterDir, "adapter_config.json")) && !existsSync(join(adapterDir, "model.safetensors")));
  model.dispose();

  const adapted = loadAdapterModel(adapterDir);
  const expected = probeLogits(adapted);
  assert.ok(maxAbsDiff(expected, probeLogits(loadModel(base))) > 1e-3, "the adapter changes the logits");
  // Loaded from an adapter directory, it saves as one again, naming the same base.
  const again = join(root, "again");
  saveModel(adapted, again);
  assert.equal(JSON.parse(readFileSync(join(again, "adapter_config.json"), "utf8")).base_model_name_or_path, base);

  const mergedDir = join(root, "merged");
  saveModel(adapted, mergedDir, { merged: true });
  assert.ok(loraOf(adapted) !== null, "the model keeps its adapters");
  assert.ok(![...readHeader(join(mergedDir, "model.safetensors")).tensors.keys()].some((n) => n.includes("lora_")));
  const merged = loadModel(mergedDir);
  assert.ok(maxAbsDiff(probeLogits(merged), expected) < 1e-5);

  const viaMerge = join(root, "via-merge");
  const r = await mergeAdapter(adapterDir, viaMerge);
  assert.equal(r.layers, 4);
  assert.ok(existsSync(join(viaMerge, "tokenizer.json")));
  assert.ok(maxAbsDiff(probeLogits(loadModel(viaMerge)), expected) < 1e-5);
  await assert.rejects(mergeAdapter(adapterDir, base), /base model's directory; merging would overwrite it/);
  for (const m of [adapted, merged]) m.dispose();
});
