// `omni-dpo bench generate`: sampled decoding with the KV cache (temperature 0.8, top-p 0.95,
// as `data build` samples) on a Llama-shaped random model, batch of prompts, a fixed number of
// new tokens (no EOS, so both sides do the same work): generated tokens/s here beside PyTorch
// running transformers' generate() loop on the same shape in the same run (apps/bench/generate.py);
// with `serve`, also through `omni-dpo serve` and the openai client (generate-serve.ts).
import { loadavg } from "node:os";
import { join } from "node:path";
import { createModel, generate, torch } from "../../src/index.js";
import { packsWeightsOn } from "../../src/nn/packing.js";
import { packageRoot } from "../../src/util/package-root.js";
import { NO_TORCH_PYTHON, runPythonJson, torchPython } from "../../src/util/python.js";
import { serveSecondsPerRound } from "./generate-serve.js";
import { formatTable, measure, row, type Row } from "./measure.js";

export interface GenerateBenchResult {
  rows: Row[];
  threads: number;
  device: string;
  /** Whether omni-dpo's side multiplied by packed linear weights (oneDNN; off: LibTorch's linear). */
  packedWeights: boolean;
  pytorchVersion: string | null;
  /** The 1-minute load average when the bench started and when it ended (other work on the machine). */
  loadAverage: [number, number];
  note?: string;
}

/** The decoder shapes the bench samples from: `llama` (the default) and Qwen2.5-0.5B's `qwen2`. */
export const GENERATE_CASES = ["llama", "qwen2"] as const;
export type GenerateCase = (typeof GENERATE_CASES)[number];

export async function benchGenerate(
  options: { quick?: boolean; tiny?: boolean; device?: torch.Device; serve?: boolean; case?: GenerateCase } = {},
): Promise<GenerateBenchResult> {
  const loadAtStart = loadavg()[0];
  const device = options.device ?? "cpu";
  const shape = options.tiny
    ? {
        vocab_size: 512,
        hidden_size: 64,
        intermediate_size: 128,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
      }
    : options.case === "qwen2"
      ? // Qwen2.5-0.5B's decoder (its q/k/v biases aside, which the PyTorch side lacks), head untied on both sides.
        {
          vocab_size: 151936,
          hidden_size: 896,
          intermediate_size: 4864,
          num_hidden_layers: 24,
          num_attention_heads: 14,
          num_key_value_heads: 2,
        }
      : {
          vocab_size: 32000,
          hidden_size: 512,
          intermediate_size: 1536,
          num_hidden_layers: 8,
          num_attention_heads: 8,
          num_key_value_heads: 4,
        };
  const cfg = {
    ...shape,
    rope_theta: 10000,
    rms_norm_eps: 1e-6,
    max_position_embeddings: 1024,
    device,
    threads: torch.getNumThreads(),
    batch: options.tiny ? 4 : 16,
    prompt: options.tiny ? 8 : 64,
    new_tokens: options.tiny ? 8 : options.quick ? 32 : 64,
    temperature: 0.8,
    top_p: 0.95,
    trials: options.quick || options.tiny ? 1 : 3,
  };
  torch.manualSeed(0);
  const model = createModel(
    {
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      ...shape,
      rope_theta: 10000,
      rms_norm_eps: 1e-6,
      max_position_embeddings: 1024,
      tie_word_embeddings: false,
    },
    { std: 0.02 },
  );
  if (device !== "cpu") model.to(device);
  const prompts = Array.from({ length: cfg.batch }, (_, r) =>
    Array.from({ length: cfg.prompt }, (_, i) => (r * 7919 + i * 104729) % shape.vocab_size),
  );
  // Each step reads its tokens back to the host, so the call's end is the device's end too.
  const run = () => {
    generate(model, prompts, {
      maxNewTokens: cfg.new_tokens,
      temperature: cfg.temperature,
      topP: cfg.top_p,
      rowSeeds: prompts.map((_, r) => r),
      eosTokenIds: [],
    });
  };
  // CPU time per round as well: on a machine shared with other work, wall time measures the
  // neighbours too, CPU time much less so. Counted after the warm-up, over measure's sizing round
  // (with trialSeconds 0, one round) and the timed ones; the Python side counts the same rounds.
  run();
  const cpuStart = process.cpuUsage();
  const ours = measure(run, { trials: cfg.trials, trialSeconds: 0, warmup: 0 }).secondsPerIteration;
  const cpu = process.cpuUsage(cpuStart);
  const ourCpu = (cpu.user + cpu.system) / 1e6 / (cfg.trials + 1);
  const served = options.serve
    ? await serveSecondsPerRound(model, prompts, {
        newTokens: cfg.new_tokens,
        temperature: cfg.temperature,
        topP: cfg.top_p,
        trials: cfg.trials,
        threads: cfg.threads,
        device,
      })
    : null;
  model.dispose();

  let theirs: number | null = null;
  let theirCpu: number | null = null;
  let pytorchVersion: string | null = null;
  let note: string | undefined;
  if (torchPython()) {
    const r = runPythonJson<{ torch_version: string; seconds: number; cpu_seconds: number }>(
      join(packageRoot(), "apps", "bench", "generate.py"),
      cfg,
      { file: true },
    );
    theirs = r.seconds;
    theirCpu = r.cpu_seconds;
    pytorchVersion = r.torch_version;
  } else note = `PyTorch column empty: ${NO_TORCH_PYTHON}`;
  const tokens = cfg.batch * cfg.new_tokens;
  const name =
    `sampled decoding, KV cache: ${shape.num_hidden_layers} layers x ${shape.hidden_size}, ` +
    `vocabulary ${shape.vocab_size}, batch ${cfg.batch}, prompt ${cfg.prompt}, ${cfg.new_tokens} new`;
  const pytorch = theirs === null ? null : tokens / theirs;
  const rows = [
    row(name, "tokens/s", tokens / ours, pytorch, true),
    row(
      "the same, per CPU second",
      "tokens/CPU s",
      tokens / ourCpu,
      theirCpu === null ? null : tokens / theirCpu,
      true,
    ),
  ];
  if (served !== null)
    rows.push(row("the same through omni-dpo serve + openai client", "tokens/s", tokens / served, pytorch, true));
  return {
    rows,
    threads: cfg.threads,
    device,
    packedWeights: packsWeightsOn(device),
    pytorchVersion,
    loadAverage: [loadAtStart, loadavg()[0]],
    note,
  };
}

export function formatGenerateBench(r: GenerateBenchResult): string {
  return [
    `${r.threads} threads on ${r.device}; packed weights ${r.packedWeights ? "on" : "off"}; ` +
      `PyTorch ${r.pytorchVersion ?? "absent"}; ` +
      `load average ${r.loadAverage.map((x) => x.toFixed(1)).join(" at the start, ")} at the end`,
    "",
    formatTable(r.rows),
    ...(r.note ? ["", r.note] : []),
  ].join("\n");
}
