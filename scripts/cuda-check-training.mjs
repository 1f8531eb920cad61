// CUDA checks of models and the trainer: logits and KV-cache generation on the GPU against the
// CPU for GPT-2, Llama (llama3 RoPE, GQA) and Mistral (sliding window), and a preference run
// with `device: cuda` (live and precomputed reference). Needs a CUDA LibTorch and `npm run build`.
import { torch, createModel, generate } from "../dist/src/index.js";
import { writeToyModel, toyPairs, writeJsonl, tempDir } from "../dist/test/helpers/toy.js";
import { loadTrainConfig } from "../dist/src/train/config.js";
import { train } from "../dist/src/train/trainer.js";
import { MetricsSink } from "../dist/src/train/metrics.js";
import { join } from "node:path";
let failures = 0;
const check = (name, ok, detail) => {
  if (!ok) failures++;
  console.log(`${ok ? "ok  " : "FAIL"} ${name} ${detail ?? ""}`);
};
torch.manualSeed(0);
const configs = {
  llama: {
    architectures: ["LlamaForCausalLM"],
    vocab_size: 97,
    hidden_size: 48,
    intermediate_size: 96,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 128,
    rope_theta: 500000,
    rope_scaling: {
      rope_type: "llama3",
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 32,
    },
  },
  gpt2: { architectures: ["GPT2LMHeadModel"], vocab_size: 97, n_embd: 48, n_layer: 2, n_head: 4, n_positions: 64 },
  mistral: {
    architectures: ["MistralForCausalLM"],
    vocab_size: 97,
    hidden_size: 48,
    intermediate_size: 96,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 1,
    max_position_embeddings: 128,
    sliding_window: 4,
  },
};
for (const [name, cfg] of Object.entries(configs)) {
  const m = createModel(cfg, { std: 0.2 }).eval();
  const ids = torch.randint(0, 97, [2, 9]);
  const mask = torch.tensor(
    [
      [0, 0, 1, 1, 1, 1, 1, 1, 1],
      [1, 1, 1, 1, 1, 1, 1, 1, 1],
    ],
    { dtype: "int64" },
  );
  const cpu = torch.noGrad(() => m.forward(ids, { attentionMask: mask }));
  const prompts = [
    [5, 6, 7, 8],
    [9, 10],
  ];
  const genCpu = generate(m, prompts, { maxNewTokens: 10 });
  m.to("cuda");
  const gpu = torch.noGrad(() => m.forward(ids.cuda(), { attentionMask: mask.cuda() }));
  const diff = torch.tidy(() => cpu.sub(gpu.cpu()).narrow(1, 2, 7).abs().max().item());
  check(
    `${name}: logits on CUDA match CPU (left-padded batch)`,
    diff < 1e-4,
    `max |diff| ${diff.toExponential(2)}, device ${m.device}`,
  );
  const genGpu = generate(m, prompts, { maxNewTokens: 10 });
  check(
    `${name}: greedy generation with KV cache on CUDA equals CPU`,
    JSON.stringify(genCpu.tokens) === JSON.stringify(genGpu.tokens),
  );
  m.dispose();
}
const root = tempDir("omni-dpo-gpu-");
const model = writeToyModel(join(root, "model"));
const data = writeJsonl(join(root, "pairs.jsonl"), toyPairs(64));
for (const precompute of [false, true]) {
  const out = join(root, `out-${precompute}`);
  const { config } = loadTrainConfig({
    model_name_or_path: model,
    dataset_mixer: { [data]: 1.0 },
    test_split_size: 0.25,
    output_dir: out,
    device: "cuda",
    pref_loss: "uni_dpo",
    beta: 2.0,
    uni_dpo_qual_eta: 0.7,
    uni_dpo_tau_ref: 0.8,
    uni_dpo_perf_gamma: 1.0,
    uni_dpo_nll_lambda: 0.01,
    uni_dpo_tau_good: 7.0,
    learning_rate: 3e-3,
    lr_scheduler_type: "cosine",
    warmup_ratio: 0.1,
    num_train_epochs: 3,
    per_device_train_batch_size: 4,
    gradient_accumulation_steps: 2,
    max_length: 64,
    max_prompt_length: 32,
    logging_steps: 2,
    eval_steps: 6,
    save_steps: 6,
    seed: 7,
    precompute_ref_log_probs: precompute,
  });
  const t0 = Date.now();
  const r = await train(config);
  const rows = MetricsSink.read(join(out, "metrics.jsonl"));
  const tr = rows.filter((x) => "loss" in x),
    ev = rows.filter((x) => "eval_loss" in x);
  check(
    `trainer on CUDA (precompute_ref_log_probs ${precompute}): ${r.globalStep} steps in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    tr[tr.length - 1].loss < tr[0].loss &&
      ev[ev.length - 1]["eval_rewards/accuracies"] >= ev[0]["eval_rewards/accuracies"],
    `loss ${tr[0].loss.toFixed(4)} -> ${tr[tr.length - 1].loss.toFixed(4)}, eval acc ${ev[0]["eval_rewards/accuracies"]} -> ${ev[ev.length - 1]["eval_rewards/accuracies"]}`,
  );
}
console.log(failures ? `${failures} CHECKS FAILED` : "all GPU model/trainer checks passed");
