// The memory estimator: parameter counts from config.json equal the real models' (every
// architecture, LoRA's adapters too, and Gemma-2-9B's published 9,241,705,984), and its
// per-rank weights, gradients and optimizer state match what 2 Gloo ranks hold at stages 0, 1
// and 2 (within 15%), measured at LibTorch's allocator (the optimizer's state as its tensors'
// bytes); the CLI prints and refuses as it says.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createModel, saveModel, torch } from "../../src/index.js";
import { attachLora } from "../../src/nn/lora.js";
import type { RawConfig } from "../../src/models/config.js";
import { estimateMemory, loraParameterCount, modelShape, parameterCount } from "../../src/train/memory-estimate.js";
import { GEMMA_CONFIGS } from "../helpers/gemma.js";
import { writeByteLevelTokenizer } from "../helpers/tokenizers.js";
import { tempDir, toyPairs, writeJsonl } from "../helpers/toy.js";
import { freePort, runCommand, runRanks } from "../distributed/ranks.js";
import { CLI, writeRecipe } from "../distributed/train-ranks.js";

const WORKER = fileURLToPath(new URL("../distributed/memory-worker.js", import.meta.url));

const llamaBase = {
  vocab_size: 61,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-6,
};
const CONFIGS: Record<string, RawConfig> = {
  gpt2: {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: 61,
    n_positions: 64,
    n_embd: 32,
    n_layer: 2,
    n_head: 4,
  },
  "llama (biases)": {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    ...llamaBase,
    attention_bias: true,
    mlp_bias: true,
  },
  "llama (tied, head_dim)": {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    ...llamaBase,
    tie_word_embeddings: true,
    head_dim: 16,
  },
  qwen2: { architectures: ["Qwen2ForCausalLM"], model_type: "qwen2", ...llamaBase },
  mistral: { architectures: ["MistralForCausalLM"], model_type: "mistral", ...llamaBase, sliding_window: 4 },
  "qwen3 (tied)": {
    architectures: ["Qwen3ForCausalLM"],
    model_type: "qwen3",
    ...llamaBase,
    head_dim: 8,
    tie_word_embeddings: true,
  },
  phi3: { architectures: ["Phi3ForCausalLM"], model_type: "phi3", ...llamaBase },
  ...GEMMA_CONFIGS,
};

let root: string;
before(() => {
  root = tempDir("omni-dpo-memory-estimate-");
});
after(() => rmSync(root, { recursive: true, force: true }));

describe("estimate-memory", () => {
  it("parameter counts from config.json equal the models' own, every architecture; LoRA's adapters too", () => {
    for (const [name, config] of Object.entries(CONFIGS)) {
      const model = createModel(config);
      const shape = modelShape(config, name);
      assert.equal(parameterCount(shape), model.numParameters(), name);
      const targets = shape.linears.slice(0, 2).map((l) => l.name);
      const lora = attachLora(model, {
        r: 4,
        alpha: 8,
        dropout: 0,
        targetModules: targets,
        modulesToSave: [],
        useRslora: false,
      });
      const adapters = model
        .parameters()
        .filter((p) => p.requiresGrad)
        .reduce((n, p) => n + p.numel(), 0);
      assert.equal(loraParameterCount(shape, 4, targets), adapters, `${name}: LoRA on ${targets.join(", ")}`);
      assert.ok(lora);
      model.dispose();
    }
  });

  it("Gemma-2-9B from its config: 9,241,705,984 parameters; on 8 ranks AdamW's state is 1/8 from stage 1, the weights from stage 3", () => {
    const gemma = {
      architectures: ["Gemma2ForCausalLM"],
      model_type: "gemma2",
      vocab_size: 256000,
      hidden_size: 3584,
      intermediate_size: 14336,
      num_hidden_layers: 42,
      num_attention_heads: 16,
      num_key_value_heads: 8,
      head_dim: 256,
      hidden_activation: "gelu_pytorch_tanh",
      query_pre_attn_scalar: 256,
      sliding_window: 4096,
    };
    const shape = modelShape(gemma);
    assert.equal(parameterCount(shape), 9_241_705_984);
    const o = {
      worldSize: 8,
      dtype: "float32",
      bf16: true,
      lora: null,
      gradientCheckpointing: true,
      seq: 1024,
      batch: 1,
    } as const;
    const [s0, s1, s2, s3] = [0, 1, 2, 3].map((zeroStage) => estimateMemory(shape, { ...o, zeroStage }));
    assert.equal(s0.per_device_bytes.optimizer, 2 * 4 * 9_241_705_984);
    assert.equal(s1.per_device_bytes.optimizer, s0.per_device_bytes.optimizer / 8);
    // Stages 0 and 1 keep DDP's buckets beside the gradients; stage 2 keeps 1/8, plus a layer's
    // and the (tied) embedding's until backward has made them final.
    assert.equal(s0.per_device_bytes.gradients, 2 * 4 * 9_241_705_984);
    assert.equal(s2.gradients_after_reduce_bytes, (4 * 9_241_705_984) / 8);
    const layer = (9_241_705_984 - 256000 * 3584 - 3584) / 42;
    assert.equal(s2.per_device_bytes.gradients, s2.gradients_after_reduce_bytes + 4 * (layer + 256000 * 3584 + 3584));
    // Stage 3: the gradients and state as stage 2's; the weights 1/8 between steps, and at the
    // peak (checkpointing) the other ranks' 7/8 of one layer and of the (tied) embedding on top.
    assert.equal(s3.per_device_bytes.gradients, s2.per_device_bytes.gradients);
    assert.equal(s3.per_device_bytes.optimizer, s2.per_device_bytes.optimizer);
    assert.equal(s3.weights_between_steps_bytes, (4 * 9_241_705_984) / 8);
    assert.equal(s2.weights_between_steps_bytes, 4 * 9_241_705_984);
    const gathered = 4 * (layer + 256000 * 3584 + 3584);
    assert.equal(s3.per_device_bytes.weights, s3.weights_between_steps_bytes + Math.ceil((gathered * 7) / 8));
    // Without checkpointing autograd keeps every gathered layer: the whole weights at the peak.
    const plain = estimateMemory(shape, { ...o, gradientCheckpointing: false, zeroStage: 3 });
    assert.equal(plain.per_device_bytes.weights, 4 * 9_241_705_984);
    assert.throws(
      () => estimateMemory(shape, { ...o, zeroStage: 4 }),
      /--zero-stage 4: this trainer has stages 0, 1, 2, 3/,
    );
  });

  it("weights, gradients and optimizer state match what 2 Gloo ranks hold at stages 0, 1, 2 and 3 (within 15%)", async (t) => {
    // A Llama of about 3M parameters (12 MB in float32): the states dwarf what else is allocated.
    const modelDir = join(root, "model");
    const tok = writeByteLevelTokenizer(modelDir);
    const config = {
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      vocab_size: tok.vocabSize,
      hidden_size: 256,
      intermediate_size: 688,
      num_hidden_layers: 4,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      max_position_embeddings: 128,
      rms_norm_eps: 1e-6,
      bos_token_id: tok.bosTokenId,
      eos_token_id: tok.eosTokenId,
    };
    torch.manualSeed(0);
    const model = createModel(config);
    saveModel(model, modelDir);
    model.dispose();
    const data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(8, 3));
    const shape = modelShape(config);
    const peaks: number[][] = [];
    const stage2States: number[] = [];
    for (const zeroStage of [0, 1, 2, 3]) {
      const recipe = writeRecipe(join(root, `stage-${zeroStage}.yaml`), {
        model_name_or_path: modelDir,
        dataset_mixer: { [data]: 1.0 },
        output_dir: join(root, `out-${zeroStage}`),
        pref_loss: "simpo",
        beta: 2.0,
        learning_rate: 1e-4,
        per_device_train_batch_size: 2,
        max_steps: 2,
        max_length: 32,
        max_prompt_length: 16,
        save_strategy: "no",
        pair_log_samples: 0,
        seed: 1,
        zero_stage: zeroStage,
        ddp_timeout: 60,
        // Stage 3 frees each layer's gathered weights after its recomputation.
        gradient_checkpointing: zeroStage === 3,
      });
      const runs = await runRanks(WORKER, 2, { MASTER_PORT: String(await freePort()) }, [recipe]);
      const want = estimateMemory(shape, {
        zeroStage,
        worldSize: 2,
        dtype: "float32",
        bf16: false,
        lora: null,
        gradientCheckpointing: zeroStage === 3,
        seq: 32,
        batch: 2,
      });
      for (const r of runs) {
        assert.equal(r.code, 0, r.output);
        const m = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as Record<string, number>;
        // The allocator's bytes at the end of backward, less the weights and the optimizer's state:
        // the gradients (and DDP's buckets); the same after the reduction: what stays until the
        // step. (At stage 2 the reduction ran during backward: its peak is checked below.)
        // At stage 3 the weights a rank keeps are measured after the step (its shard, the
        // gradients freed), and its gradients after the reduction (the gathered weights freed).
        const kept = zeroStage === 3 ? m.afterStep - m.optimizerState : m.weights;
        const measured = {
          weights: kept,
          gradients: zeroStage === 3 ? m.afterReduce - m.afterStep : m.beforeReduce - kept - m.optimizerState,
          afterReduce: m.afterReduce - kept - m.optimizerState,
          optimizer: m.optimizerState,
        };
        const expected = {
          weights: zeroStage === 3 ? want.weights_between_steps_bytes : want.per_device_bytes.weights,
          gradients: zeroStage >= 2 ? want.gradients_after_reduce_bytes : want.per_device_bytes.gradients,
          afterReduce: want.gradients_after_reduce_bytes,
          optimizer: want.per_device_bytes.optimizer,
        };
        // Step 2's peak (forward, backward, update) holds at least the states, and at stage 2 less
        // than stage 1's states would be.
        const states = want.weights_between_steps_bytes + want.per_device_bytes.optimizer;
        assert.ok(m.stepPeak >= states + want.gradients_after_reduce_bytes, `stage ${zeroStage}: peak ${m.stepPeak}`);
        (peaks[zeroStage] ??= []).push(m.stepPeak);
        if (zeroStage === 2) stage2States.push(states + want.gradients_after_reduce_bytes);
        t.diagnostic(
          `stage ${zeroStage} rank ${m.rank}: step peak ${(m.stepPeak / 2 ** 20).toFixed(2)} MiB, estimated total ` +
            `${(want.per_device_bytes.total / 2 ** 20).toFixed(2)} MiB (activations ${(want.per_device_bytes.activations / 2 ** 20).toFixed(2)})`,
        );
        const mib = (o: Record<string, number>) =>
          Object.entries(o)
            .map(([k, v]) => `${k} ${(v / 2 ** 20).toFixed(2)}`)
            .join(", ");
        t.diagnostic(`stage ${zeroStage} rank ${m.rank} MiB measured: ${mib(measured)}; estimated: ${mib(expected)}`);
        for (const k of Object.keys(expected) as (keyof typeof expected)[]) {
          const ratio = measured[k] / expected[k];
          assert.ok(
            Math.abs(ratio - 1) <= 0.15,
            `stage ${zeroStage} rank ${m.rank} ${k}: measured ${measured[k]}, estimated ${expected[k]}`,
          );
        }
      }
    }
    // Stage 3's step peak is below stage 2's on every rank: no rank holds the whole weights. (Against
    // stage 2's between-step states alone the margin is a quarter of a MiB, within the allocator's noise.)
    for (const p of peaks[3])
      assert.ok(p < Math.min(...peaks[2]), `stage 3 peak ${p}, stage 2 peaks ${peaks[2]} (states ${stage2States})`);
  });

  it("the CLI prints every stage (or --json for one) and names a bad flag", async () => {
    const file = join(root, "config.json");
    writeFileSync(file, JSON.stringify(CONFIGS.qwen2));
    const table = await runCommand(
      process.execPath,
      [CLI, "estimate-memory", "--model", file, "--world-size", "4"],
      {},
    );
    assert.equal(table.code, 0, table.output);
    assert.match(table.stdout, /qwen2, [\d,]+ parameters, full fine-tuning/);
    assert.match(table.stdout, /zero_stage 0\s+zero_stage 1\s+zero_stage 2\s+zero_stage 3/);
    assert.match(table.stdout, /weights between steps/);
    const json = await runCommand(
      process.execPath,
      [CLI, "estimate-memory", "--model", file, "--zero-stage", "1", "--world-size", "4", "--json"],
      {},
    );
    const out = JSON.parse(json.stdout) as { per_device_bytes: Record<string, number> };
    const expected = estimateMemory(modelShape(CONFIGS.qwen2), {
      zeroStage: 1,
      worldSize: 4,
      dtype: "float32",
      bf16: false,
      lora: null,
      gradientCheckpointing: false,
      seq: 1024,
      batch: 1,
    });
    assert.deepEqual(out.per_device_bytes, expected.per_device_bytes);
    for (const [args, message] of [
      [["--zero-stage", "4"], /--zero-stage must be one of 0, 1, 2, 3/],
      [["--world-size", "0"], /--world-size must be an integer of at least 1, got '0'/],
      [["--lora-targets", "q_proj"], /--lora-targets needs --lora R/],
      [["--lora", "8", "--lora-targets", "nope"], /--lora-targets: none of nope is a layer of qwen2/],
    ] as const) {
      const r = await runCommand(process.execPath, [CLI, "estimate-memory", "--model", file, ...args], {});
      assert.notEqual(r.code, 0);
      assert.match(r.output, message);
    }
    const missing = await runCommand(process.execPath, [CLI, "estimate-memory", "--model", join(root, "nowhere")], {});
    assert.match(missing.output, /nowhere: cannot read the model's config \(ENOENT\)/);
  });
});
