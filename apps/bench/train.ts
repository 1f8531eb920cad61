// `omni-dpo bench train`: one Omni-DPO training step beside the same step written in PyTorch
// (Python) in the same run, in three cases.
//
// gpt2: a GPT-2-small-shaped (124M) random model, the step written alike on both sides
// (apps/bench/train.py), full logits on both. The step, on both sides: the policy's forward over the concatenated batch (chosen rows, then
// rejected rows), the length-normalised sequence log-probs of the answer tokens, the frozen
// reference's forward under no-grad, the Omni-DPO loss of docs/method.md (gradients through
// w_perf, c-NLL on), backward, one AdamW update and zero-grad. Each side runs in its own fresh
// process per sequence length, so neither's memory counts in the other's: the peak resident
// set during the timed steps is read from /proc/self/status (VmHWM, reset beforehand by writing
// "5" to /proc/self/clear_refs where the kernel allows it).
//
// qwen2: what training a Qwen2.5-0.5B-like model costs: Qwen2's shape with Qwen2.5's vocabulary
// (151936) and hidden size (896), tied embeddings, but 2 decoder layers instead of 24 so that a
// step takes seconds on two cores (the vocabulary, where the logits' memory goes, stays real);
// one pair of 1024 tokens (768 prompt + 256 response), a live reference, Omni-DPO with the
// Qwen2.5-0.5B recipe's settings. omni-dpo runs the trainer's own path (objectiveInputs: the forward
// with gradient checkpointing and the LM head on response positions in chunks); PyTorch runs
// what TRL does with gradient_checkpointing: true (apps/bench/train_qwen2.py: HF-style forward
// with full logits, torch.utils.checkpoint on each layer).
//
// qwen2vl: a Qwen2-VL-2B-shaped model (its vocabulary, widths and heads; 2 decoder layers of 28 and 2
// vision blocks of 32) on one image preference pair: each row holds one 448x448 image (1024
// patches, 256 merged tokens) in a 282-token prompt, then a 256-token answer; the vision tower and
// merger frozen (LLaMA-Factory's freeze_vision_tower / freeze_multi_modal_projector defaults).
// omni-dpo runs the trainer's log-prob path with the images (concatenatedForward: checkpointed
// layers, the LM head on response positions in chunks); PyTorch runs what TRL does with
// gradient_checkpointing (apps/bench/train_qwen2vl.py: full logits, torch.utils.checkpoint).
//
// lora: the qwen2 case's step with LoRA adapters (r 16, alpha 32, every linear layer but the
// head) on frozen base weights, the reference being the same network with its adapters off, as
// TRL runs a PEFT model without a ref_model: one copy of the weights, AdamW state for the
// adapters only. PyTorch runs the same with the adapters written as PEFT computes them
// (y = x W^T + b + (alpha / r) B A x). Beside the qwen2 case in the same run, it shows what
// LoRA saves over the full fine-tune.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as torch from "../../src/torch/index.js";
import { createModel } from "../../src/models/auto.js";
import { loadSafetensors, saveSafetensors } from "../../src/models/safetensors.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import { preferenceLoss, resolvePreferenceOptions } from "../../src/objectives/index.js";
import { concatenatedForward, sequenceLogps } from "../../src/logprobs/forward.js";
import { pairLogps } from "../../src/logprobs/pairs.js";
import { objectiveInputs, referenceLogpsOptions } from "../../src/logprobs/objective-inputs.js";
import { RecomputeTape } from "../../src/nn/recompute.js";
import { attachLora } from "../../src/nn/lora.js";
import type { PaddedBatch, TokenizedPair } from "../../src/data/tokenize.js";
import { packageRoot } from "../../src/util/package-root.js";
import { NO_TORCH_PYTHON, runPythonJson, torchPython } from "../../src/util/python.js";
import { formatTable, row, type Row } from "./measure.js";

/** What one process (either side) is asked to run. Keys are snake_case: the Python side reads the same object. */
export interface TrainStepConfig {
  arch: "gpt2" | "qwen2" | "qwen2vl";
  vocab_size: number;
  n_positions: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  /** qwen2: key/value heads, MLP width, rotary base, and whether the policy's layers are recomputed in backward. */
  n_kv_head?: number;
  intermediate_size?: number;
  rope_theta?: number;
  gradient_checkpointing?: boolean;
  /** qwen2: LoRA adapters on every linear layer but the head, the reference being the adapters switched off. */
  lora?: { r: number; alpha: number };
  /** qwen2vl: the vision tower (image_side: patches per side of the square image), M-RoPE, the image's place. */
  vision?: {
    depth: number;
    embed_dim: number;
    num_heads: number;
    mlp_ratio: number;
    patch_size: number;
    temporal_patch_size: number;
    merge_size: number;
    image_side: number;
  };
  mrope_section?: [number, number, number];
  /** qwen2vl: text tokens before <|vision_start|> in each row. */
  image_at?: number;
  /** qwen2vl: the special tokens' ids; text tokens are drawn from [0, text_vocab). */
  tokens?: { vision_start: number; vision_end: number; image: number; text_vocab: number };
  /** Pairs per step; the forward runs 2x this many rows. */
  pairs: number;
  seq: number;
  /** Prompt tokens at the start of every row (labels -100). */
  prompt_len: number;
  threads: number;
  warmup: number;
  steps: number;
  lr: number;
  weight_decay: number;
  /**
   * Where set (--tiny), both sides start from these weights (a safetensors file in Hugging Face names) and tokens
   * [2 pairs, seq], so their first losses must agree; otherwise each side draws its own.
   */
  shared?: { weights: string; input_ids: number[][] };
  /** Omni-DPO hyperparameters (the reference's text setting for Qwen2.5-0.5B). */
  loss: {
    beta: number;
    qual_eta: number;
    tau_ref: number;
    perf_gamma: number;
    nll_lambda: number;
    tau_good: number;
    score_chosen: number;
    score_rejected: number;
  };
}

/** What one process reports. Memory in bytes; null where /proc is absent. */
export interface TrainStepResult {
  side: "omni-dpo" | "pytorch";
  version: string;
  seq: number;
  rows: number;
  /** Median and fastest seconds of the timed steps, and each of them. */
  seconds_per_step: number;
  best_seconds: number;
  step_seconds: number[];
  /** Tokens (rows x sequence) over the fastest step: the machine may be shared, and the least disturbed step says most about the engine. */
  tokens_per_second: number;
  /** Resident set just before the timed steps (weights, reference, AdamW state, runtime). */
  rss_before_bytes: number | null;
  /** Peak resident set during the timed steps. */
  peak_rss_bytes: number | null;
  /** True when VmHWM could be reset before the timed steps; otherwise the peak is the process's lifetime peak. */
  peak_reset: boolean;
  /** The loss of the last step (a sanity check that both sides compute the same kind of thing). */
  loss: number;
  /** The loss of the first warm-up step, before any update: with shared weights, equal on both sides. */
  first_loss: number;
  /** Whether the step trained LoRA adapters (the lora case). */
  lora?: boolean;
}

export type TrainBenchCase = "gpt2" | "qwen2" | "lora" | "qwen2vl";
export const TRAIN_BENCH_CASES: readonly TrainBenchCase[] = ["gpt2", "qwen2", "lora", "qwen2vl"];
/** What `bench train` runs without --case. */
export const DEFAULT_TRAIN_BENCH_CASES: readonly TrainBenchCase[] = ["gpt2", "qwen2", "lora"];

export interface TrainBenchOptions {
  /** gpt2: one sequence length (256), two timed steps; qwen2: one timed step. */
  quick?: boolean;
  /** Tiny models (vocab 256, 2 layers, width 32) at sequence 32, for tests. */
  tiny?: boolean;
  /** Which cases to run (default all). */
  cases?: readonly TrainBenchCase[];
  /** qwen2 and lora: tokens per row (default 1024), three quarters of them prompt. */
  seq?: number;
  /** Called before each process starts ("omni-dpo, seq 256"). */
  onStatus?: (message: string) => void;
}

export interface TrainBenchResult {
  rows: Row[];
  runs: TrainStepResult[];
  /** The models of the cases run, one line each. */
  model: string;
  pairs: number;
  threads: number;
  torchVersion: string;
  pytorchVersion: string | null;
  openblasCoretype: string | null;
  peakReset: boolean;
  /** The 1-minute load average before the run and the cores: other work on the machine makes timings noisy. */
  loadAverage: number;
  cores: number;
  /** Whether both sides started from the same weights and tokens (--tiny). */
  sharedStart: boolean;
  note?: string;
}

const GPT2_SMALL = { vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 };
const TINY = { vocab_size: 256, n_positions: 64, n_embd: 32, n_layer: 2, n_head: 2 };
/** Qwen2.5-0.5B's vocabulary, width, heads, MLP and rotary base; 2 layers of its 24. */
const QWEN2_SHAPED = {
  vocab_size: 151936,
  n_positions: 32768,
  n_embd: 896,
  n_layer: 2,
  n_head: 14,
  n_kv_head: 2,
  intermediate_size: 4864,
  rope_theta: 1e6,
};
const TINY_QWEN2 = {
  vocab_size: 256,
  n_positions: 64,
  n_embd: 32,
  n_layer: 2,
  n_head: 4,
  n_kv_head: 2,
  intermediate_size: 64,
  rope_theta: 1e6,
};
/** Qwen2-VL-2B's text widths, heads, vocabulary and rotary base (2 of its 28 layers); its vision tower (2 of 32 blocks). */
const QWEN2VL_SHAPED = {
  vocab_size: 151936,
  n_positions: 32768,
  n_embd: 1536,
  n_layer: 2,
  n_head: 12,
  n_kv_head: 2,
  intermediate_size: 8960,
  rope_theta: 1e6,
  mrope_section: [16, 24, 24] as [number, number, number],
  // 448 x 448 pixels: 32 x 32 patches of 14, 16 x 16 merged tokens.
  vision: {
    depth: 2,
    embed_dim: 1280,
    num_heads: 16,
    mlp_ratio: 4,
    patch_size: 14,
    temporal_patch_size: 2,
    merge_size: 2,
    image_side: 32,
  },
  tokens: { vision_start: 151652, vision_end: 151653, image: 151655, text_vocab: 151643 },
  image_at: 14,
};
const TINY_QWEN2VL = {
  ...TINY_QWEN2,
  mrope_section: [1, 1, 2] as [number, number, number],
  vision: { ...QWEN2VL_SHAPED.vision, depth: 2, embed_dim: 16, num_heads: 2, mlp_ratio: 2, image_side: 4 },
  tokens: { vision_start: 250, vision_end: 251, image: 252, text_vocab: 250 },
  image_at: 4,
};
/** The lora case's adapters: PEFT's usual r 16 with alpha 2r. */
const LORA = { r: 16, alpha: 32 };
const MiB = 1024 * 1024;

export function benchTrain(options: TrainBenchOptions = {}): TrainBenchResult {
  // Loading the engine here first settles OPENBLAS_CORETYPE in process.env, which both child
  // processes inherit: both sides run under the same BLAS setting and thread count.
  const info = torch.buildInfo();
  const loadAverage = loadavg()[0];
  const cases = options.cases ?? TRAIN_BENCH_CASES;
  const base = {
    pairs: 1,
    threads: info.threads,
    warmup: 1,
    lr: 1e-6,
    weight_decay: 0.0,
    loss: {
      beta: 3.5,
      qual_eta: 0.7,
      tau_ref: 0.8,
      perf_gamma: 3.0,
      nll_lambda: 0.001,
      tau_good: 3.2,
      score_chosen: 8.0,
      score_rejected: 3.0,
    },
  };
  // [config, the PyTorch script, the row's label] per run; each case's timed steps follow one warm-up step (it allocates AdamW's state).
  const plan: [TrainStepConfig, string, string][] = [];
  const models: string[] = [];
  if (cases.includes("gpt2")) {
    const shape = options.tiny ? TINY : GPT2_SMALL;
    const seqs: [number, number][] = options.tiny
      ? [[32, 2]]
      : options.quick
        ? [[256, 2]]
        : [
            [256, 3],
            [512, 2],
          ];
    for (const [seq, steps] of seqs)
      plan.push([
        { arch: "gpt2", ...shape, ...base, seq, steps, prompt_len: Math.floor(seq / 4) },
        "train.py",
        `seq ${seq} (${2 * base.pairs} rows)`,
      ]);
    models.push(
      options.tiny
        ? `gpt2: tiny GPT-2 (vocab ${shape.vocab_size}, ${shape.n_layer} layers, width ${shape.n_embd}; for tests), full logits on both sides`
        : `gpt2: GPT-2-small-shaped random model (124M: vocab ${shape.vocab_size}, ${shape.n_layer} layers, ${shape.n_head} heads, width ${shape.n_embd}), full logits on both sides`,
    );
  }
  const qwen2Shape = options.tiny ? TINY_QWEN2 : QWEN2_SHAPED;
  const [seq, promptLen] = options.tiny ? [32, 24] : [options.seq ?? 1024, Math.floor(((options.seq ?? 1024) * 3) / 4)];
  const qwen2Steps = options.tiny || !options.quick ? 2 : 1;
  const qwen2Config = {
    arch: "qwen2",
    ...qwen2Shape,
    ...base,
    seq,
    prompt_len: promptLen,
    steps: qwen2Steps,
    gradient_checkpointing: true,
  } as const;
  const qwen2Label = `Qwen2-shaped, checkpointed, seq ${seq} = ${promptLen} + ${seq - promptLen} (${2 * base.pairs} rows)`;
  const qwen2Model =
    `${options.tiny ? "tiny " : ""}Qwen2-shaped random model (vocab ${qwen2Shape.vocab_size}, width ${qwen2Shape.n_embd}, ${qwen2Shape.n_layer} layers, ` +
    `${qwen2Shape.n_head} heads / ${qwen2Shape.n_kv_head} key-value heads, MLP ${qwen2Shape.intermediate_size}, tied embeddings)`;
  if (cases.includes("qwen2")) {
    plan.push([qwen2Config, "train_qwen2.py", qwen2Label]);
    models.push(
      `qwen2: ${qwen2Model}; gradient checkpointing on both sides: ` +
        "omni-dpo's log-probs on response positions in chunks, PyTorch TRL-style with full logits and torch.utils.checkpoint",
    );
  }
  if (cases.includes("lora")) {
    plan.push([{ ...qwen2Config, lora: LORA }, "train_qwen2.py", `LoRA r ${LORA.r} all-linear, ${qwen2Label}`]);
    models.push(
      `lora: the qwen2 case's model and step with LoRA (r ${LORA.r}, alpha ${LORA.alpha}, every linear layer but the head) on frozen weights; ` +
        "the reference is the adapters switched off (one copy of the weights), on both sides",
    );
  }
  if (cases.includes("qwen2vl")) {
    const shape = options.tiny ? TINY_QWEN2VL : QWEN2VL_SHAPED;
    const v = shape.vision;
    const imageTokens = (v.image_side / v.merge_size) ** 2;
    // Text, the image, a question (10 tokens; 4 in --tiny), then the answer (256; 8 in --tiny).
    const promptLen = shape.image_at + 2 + imageTokens + (options.tiny ? 4 : 10);
    const answer = options.tiny ? 8 : 256;
    plan.push([
      {
        arch: "qwen2vl",
        ...shape,
        ...base,
        seq: promptLen + answer,
        prompt_len: promptLen,
        steps: options.tiny || !options.quick ? 2 : 1,
        gradient_checkpointing: true,
      },
      "train_qwen2vl.py",
      `Qwen2-VL-shaped, an image of ${v.image_side * v.patch_size}x${v.image_side * v.patch_size} per row, ` +
        `seq ${promptLen + answer} = ${promptLen} + ${answer} (${2 * base.pairs} rows)`,
    ]);
    models.push(
      `qwen2vl: ${options.tiny ? "tiny " : ""}Qwen2-VL-2B-shaped random model (vocab ${shape.vocab_size}, ` +
        `width ${shape.n_embd}, ${shape.n_layer} layers, ${shape.n_head} heads / ${shape.n_kv_head} key-value heads, ` +
        `MLP ${shape.intermediate_size}; vision: ${v.depth} blocks of width ${v.embed_dim}, ${v.num_heads} heads, ` +
        `${v.image_side ** 2} patches -> ${imageTokens} tokens ` +
        "per image, frozen with the merger); gradient checkpointing on both sides, omni-dpo's log-probs on response " +
        "positions in chunks, PyTorch TRL-style with full logits",
    );
  }
  const python = torchPython();
  // --tiny (tests): one start per case, written once and read by both sides, so the losses must agree.
  const sharedDir = options.tiny ? mkdtempSync(join(tmpdir(), "omni-dpo-bench-train-")) : null;
  try {
    if (sharedDir) {
      plan.forEach(([cfg], i) => {
        cfg.shared = writeSharedStart(cfg, join(sharedDir, `start-${i}.safetensors`));
      });
    }
    return runPlan(plan, models, base, info, loadAverage, python, seq, options);
  } finally {
    if (sharedDir) rmSync(sharedDir, { recursive: true, force: true });
  }
}

/** The policy's starting weights for `cfg`'s model (saved to `file`) and a batch of tokens, seeded as the worker is. */
function writeSharedStart(cfg: TrainStepConfig, file: string): { weights: string; input_ids: number[][] } {
  torch.manualSeed(0);
  const model = createModel(archConfig(cfg));
  try {
    saveSafetensors(file, model.namedParameters());
    const ids =
      cfg.arch === "qwen2vl"
        ? qwen2vlRows(cfg)
        : torch.tidy(() => torch.randint(0, cfg.vocab_size, [2 * cfg.pairs, cfg.seq]).toArray() as number[][]);
    return { weights: file, input_ids: ids };
  } finally {
    model.dispose();
  }
}

function runPlan(
  plan: [TrainStepConfig, string, string][],
  models: string[],
  base: { pairs: number; threads: number },
  info: ReturnType<typeof torch.buildInfo>,
  loadAverage: number,
  python: string | null,
  seq: number,
  options: TrainBenchOptions,
): TrainBenchResult {
  const runs: TrainStepResult[] = [];
  const rows: Row[] = [];
  let pytorchVersion: string | null = null;
  for (const [cfg, script, label] of plan) {
    const name = cfg.arch === "gpt2" ? `sequence ${cfg.seq}` : `${cfg.arch}, sequence ${cfg.seq}`;
    options.onStatus?.(`omni-dpo: ${name}`);
    const ours = runWorker(cfg);
    runs.push(ours);
    let theirs: TrainStepResult | null = null;
    if (python) {
      options.onStatus?.(`PyTorch: ${name}`);
      theirs = runPythonJson<TrainStepResult>(join(packageRoot(), "apps", "bench", script), cfg, { file: true });
      pytorchVersion = theirs.version;
      runs.push(theirs);
    }
    rows.push(
      row(`Omni-DPO step, ${label}`, "tokens/s", ours.tokens_per_second, theirs?.tokens_per_second ?? null, true),
    );
    if (ours.peak_rss_bytes !== null) {
      rows.push(
        row(
          `  peak RSS during the step`,
          "MiB",
          ours.peak_rss_bytes / MiB,
          theirs?.peak_rss_bytes == null ? null : theirs.peak_rss_bytes / MiB,
          false,
        ),
      );
      if (ours.rss_before_bytes !== null) {
        const grow = (r: TrainStepResult | null) =>
          r?.peak_rss_bytes == null || r.rss_before_bytes == null
            ? null
            : (r.peak_rss_bytes - r.rss_before_bytes) / MiB;
        rows.push(row(`  step's rise over RSS before it`, "MiB", grow(ours)!, grow(theirs), false));
      }
    }
  }
  // LoRA against the full fine-tune, both omni-dpo (the PyTorch column holds the full fine-tune here).
  const full = runs.find((r) => r.side === "omni-dpo" && r.seq === seq && !r.lora);
  const lora = runs.find((r) => r.side === "omni-dpo" && r.lora);
  if (full && lora) {
    rows.push(
      row(
        "LoRA step vs the full fine-tune (both omni-dpo)",
        "tokens/s",
        lora.tokens_per_second,
        full.tokens_per_second,
        true,
      ),
    );
    if (full.peak_rss_bytes !== null && lora.peak_rss_bytes !== null)
      rows.push(row("  peak RSS, LoRA vs full", "MiB", lora.peak_rss_bytes / MiB, full.peak_rss_bytes / MiB, false));
  }
  return {
    rows,
    runs,
    model: models.join("\n"),
    pairs: base.pairs,
    threads: base.threads,
    torchVersion: info.torchVersion,
    pytorchVersion,
    openblasCoretype: info.openblasCoretype,
    peakReset: runs.every((r) => r.peak_reset),
    loadAverage,
    cores: availableParallelism(),
    sharedStart: plan.every(([cfg]) => cfg.shared !== undefined),
    note: python ? undefined : `PyTorch column empty: ${NO_TORCH_PYTHON}`,
  };
}

/** Runs the omni-dpo side in a fresh node process (apps/bench/train-worker.ts). */
function runWorker(cfg: TrainStepConfig): TrainStepResult {
  const worker = fileURLToPath(new URL("./train-worker.js", import.meta.url));
  const r = spawnSync(process.execPath, [worker], {
    input: JSON.stringify(cfg),
    encoding: "utf8",
    maxBuffer: 64 * MiB,
    env: process.env,
  });
  if (r.status !== 0)
    throw new Error(`bench train: the omni-dpo worker failed (exit ${r.status ?? r.signal}):\n${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as TrainStepResult;
}

// ---------------------------------------------------------------------------------------------
// The measured process (the worker calls this; the Python side mirrors it line for line).

function procStatus(): { rss: number; hwm: number } | null {
  if (!existsSync("/proc/self/status")) return null;
  const text = readFileSync("/proc/self/status", "utf8");
  const kb = (key: string) =>
    Number(/^(\w+):\s+(\d+)\s+kB/m.exec(text.split("\n").find((l) => l.startsWith(`${key}:`)) ?? "")?.[2] ?? NaN) *
    1024;
  const rss = kb("VmRSS");
  const hwm = kb("VmHWM");
  return Number.isFinite(rss) && Number.isFinite(hwm) ? { rss, hwm } : null;
}

/** Resets VmHWM to the current RSS; false where the kernel does not allow it. */
function resetPeak(): boolean {
  try {
    writeFileSync("/proc/self/clear_refs", "5");
    return true;
  } catch {
    return false;
  }
}

/** One process's measured run: set up the case's models and step, one warm-up step, the timed steps, peak RSS. */
export function runTrainStep(cfg: TrainStepConfig): TrainStepResult {
  torch.setNumThreads(cfg.threads);
  torch.manualSeed(0);
  const { step, dispose } =
    cfg.arch === "qwen2" ? qwen2Step(cfg) : cfg.arch === "qwen2vl" ? qwen2vlStep(cfg) : gpt2Step(cfg);
  let lastLoss = NaN;
  let firstLoss = NaN;
  for (let i = 0; i < cfg.warmup; i++) {
    lastLoss = step();
    if (i === 0) firstLoss = lastLoss; // before any update: the objective itself, comparable across sides
  }
  const before = procStatus();
  const reset = resetPeak();
  const times: number[] = [];
  for (let i = 0; i < cfg.steps; i++) {
    const t0 = process.hrtime.bigint();
    lastLoss = step();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  const after = procStatus();
  const sorted = [...times].sort((x, y) => x - y);
  dispose();
  return {
    side: "omni-dpo",
    version: torch.buildInfo().torchVersion,
    seq: cfg.seq,
    rows: 2 * cfg.pairs,
    seconds_per_step: sorted[Math.floor(sorted.length / 2)],
    best_seconds: sorted[0],
    step_seconds: times,
    tokens_per_second: (2 * cfg.pairs * cfg.seq) / sorted[0],
    rss_before_bytes: before?.rss ?? null,
    peak_rss_bytes: after ? after.hwm : process.resourceUsage().maxRSS * 1024,
    peak_reset: reset && after !== null,
    loss: lastLoss,
    first_loss: firstLoss,
    lora: cfg.lora !== undefined,
  };
}

interface BenchStep {
  step: () => number;
  dispose: () => void;
}

/**
 * The policy, AdamW, the scores and the objective's options, and the reference as training
 * has it: the policy's frozen copy, or with LoRA the policy itself with its adapters off.
 */
function setUp(config: Record<string, unknown>, cfg: TrainStepConfig, frozen: (name: string) => boolean = () => false) {
  const policy = createModel(config).eval();
  if (cfg.shared) {
    const start = loadSafetensors(cfg.shared.weights);
    for (const [name] of policy.namedParameters()) policy.setParameter(name, start.get(name)!);
  }
  for (const [name, p] of policy.namedParameters()) if (frozen(name)) p.requiresGrad_(false);
  let reference: CausalLM | null = null;
  let referenceLogps: <T>(forward: (model: CausalLM) => T) => T;
  if (cfg.lora) {
    const adapters = attachLora(policy, {
      r: cfg.lora.r,
      alpha: cfg.lora.alpha,
      dropout: 0,
      targetModules: "all-linear",
      modulesToSave: [],
      useRslora: false,
    });
    referenceLogps = (forward) => adapters.withAdaptersDisabled(() => forward(policy));
  } else {
    const frozen = createModel(config, { empty: true }).eval();
    for (const [name, p] of policy.namedParameters())
      frozen.setParameter(
        name,
        torch.noGrad(() => p.detach().clone()),
      );
    frozen.requiresGrad_(false);
    reference = frozen;
    referenceLogps = (forward) => forward(frozen);
  }
  const trainable = policy.parameters().filter((p) => p.requiresGrad);
  const optimizer = new torch.AdamW(trainable, { lr: cfg.lr, weightDecay: cfg.weight_decay });
  const l = cfg.loss;
  const scoreChosen = torch.full([cfg.pairs], l.score_chosen);
  const scoreRejected = torch.full([cfg.pairs], l.score_rejected);
  const objective = {
    lossType: "omni_dpo",
    beta: l.beta,
    qualEta: l.qual_eta,
    tauRef: l.tau_ref,
    perfGamma: l.perf_gamma,
    nllLambda: l.nll_lambda,
    tauGood: l.tau_good,
  } as const;
  const dispose = () => {
    torch.dispose([scoreChosen, scoreRejected]);
    optimizer.dispose();
    policy.dispose();
    reference?.dispose();
  };
  return { policy, referenceLogps, optimizer, scoreChosen, scoreRejected, objective, dispose };
}

/** The Hugging Face config.json of the case's model. */
function archConfig(cfg: TrainStepConfig): Record<string, unknown> {
  if (cfg.arch === "gpt2") {
    const shape = pick(cfg, ["vocab_size", "n_positions", "n_embd", "n_layer", "n_head"]);
    return { architectures: ["GPT2LMHeadModel"], model_type: "gpt2", ...shape };
  }
  if (cfg.arch === "qwen2vl") {
    const v = cfg.vision!;
    const t = cfg.tokens!;
    return {
      architectures: ["Qwen2VLForConditionalGeneration"],
      model_type: "qwen2_vl",
      vocab_size: cfg.vocab_size,
      hidden_size: cfg.n_embd,
      intermediate_size: cfg.intermediate_size,
      num_hidden_layers: cfg.n_layer,
      num_attention_heads: cfg.n_head,
      num_key_value_heads: cfg.n_kv_head,
      max_position_embeddings: cfg.n_positions,
      rope_theta: cfg.rope_theta,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      rope_scaling: { type: "mrope", mrope_section: cfg.mrope_section },
      vision_start_token_id: t.vision_start,
      vision_end_token_id: t.vision_end,
      image_token_id: t.image,
      vision_config: {
        depth: v.depth,
        embed_dim: v.embed_dim,
        num_heads: v.num_heads,
        mlp_ratio: v.mlp_ratio,
        in_chans: 3,
        patch_size: v.patch_size,
        temporal_patch_size: v.temporal_patch_size,
        spatial_merge_size: v.merge_size,
        hidden_size: cfg.n_embd,
        hidden_act: "quick_gelu",
      },
    };
  }
  return {
    architectures: ["Qwen2ForCausalLM"],
    model_type: "qwen2",
    vocab_size: cfg.vocab_size,
    hidden_size: cfg.n_embd,
    intermediate_size: cfg.intermediate_size,
    num_hidden_layers: cfg.n_layer,
    num_attention_heads: cfg.n_head,
    num_key_value_heads: cfg.n_kv_head,
    max_position_embeddings: cfg.n_positions,
    rope_theta: cfg.rope_theta,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
  };
}

/** gpt2: full logits and sequenceLogps, written as the Python side writes it. */
function gpt2Step(cfg: TrainStepConfig): BenchStep {
  const { policy, referenceLogps, optimizer, scoreChosen, scoreRejected, objective, dispose } = setUp(
    archConfig(cfg),
    cfg,
  );
  const b = cfg.pairs;
  const inputIds = cfg.shared
    ? torch.tensor(cfg.shared.input_ids, { dtype: "int64" })
    : torch.randint(0, cfg.vocab_size, [2 * b, cfg.seq]); // [2B, T]
  const labels = torch.tidy(() => {
    const promptMask = torch
      .arange(0, cfg.seq)
      .lt(cfg.prompt_len)
      .unsqueeze(0)
      .expand(2 * b, cfg.seq);
    return inputIds.maskedFill(promptMask, -100);
  });
  const step = () =>
    torch.tidy(() => {
      // Equal-length rows without padding: plain causal attention, as on the Python side.
      const logits = policy.forward(inputIds);
      const { logps } = sequenceLogps(logits, labels, true);
      // The reference's logits go as soon as its log-probs exist (Python frees them by refcount).
      const ref = torch.noGrad(() =>
        torch.tidy(() => referenceLogps((reference) => sequenceLogps(reference.forward(inputIds), labels, true).logps)),
      );
      const out = preferenceLoss(
        {
          policyChosenLogps: logps.narrow(0, 0, b),
          policyRejectedLogps: logps.narrow(0, b, b),
          referenceChosenLogps: ref.narrow(0, 0, b),
          referenceRejectedLogps: ref.narrow(0, b, b),
          scoreChosen,
          scoreRejected,
        },
        objective,
      );
      out.loss.backward();
      optimizer.step();
      optimizer.zeroGrad();
      return out.loss.item();
    });
  return {
    step,
    dispose: () => {
      torch.dispose([inputIds, labels]);
      dispose();
    },
  };
}

/** qwen2: the trainer's path (objectiveInputs, as PreferenceTrainer.computeLoss; trainingStep's backward and step). */
function qwen2Step(cfg: TrainStepConfig): BenchStep {
  const { policy, referenceLogps, optimizer, objective, dispose } = setUp(archConfig(cfg), cfg);
  const b = cfg.pairs;
  const ids =
    cfg.shared?.input_ids ??
    torch.tidy(() => torch.randint(0, cfg.vocab_size, [2 * b, cfg.seq]).toArray() as number[][]); // [2B, T]
  const labels = (row: number[]) => row.map((x, t) => (t < cfg.prompt_len ? -100 : x));
  // Equal-length rows: no padding. Pair i: rows i (chosen) and b + i (rejected), scored as the Python side.
  const pairs: TokenizedPair[] = Array.from({ length: b }, (_, i) => ({
    chosenInputIds: ids[i],
    chosenLabels: labels(ids[i]),
    rejectedInputIds: ids[b + i],
    rejectedLabels: labels(ids[b + i]),
    promptLength: cfg.prompt_len,
    truncated: false,
    scoreChosen: cfg.loss.score_chosen,
    scoreRejected: cfg.loss.score_rejected,
  }));
  const resolved = resolvePreferenceOptions(objective);
  const step = () => {
    const recompute = new RecomputeTape();
    try {
      return torch.tidy(() => {
        const { inputs } = objectiveInputs(policy, pairs, resolved, {
          padTokenId: 0,
          lengthNorm: true,
          recompute,
          gradientCheckpointing: cfg.gradient_checkpointing ?? false,
          reference: () =>
            referenceLogps((reference) =>
              pairLogps(reference, pairs, 0, true, b, undefined, referenceLogpsOptions(resolved)),
            ),
        });
        const loss = preferenceLoss(inputs, resolved).loss;
        loss.backward();
        recompute.backward();
        optimizer.step();
        optimizer.zeroGrad();
        return loss.item();
      });
    } finally {
      recompute.dispose();
    }
  };
  return { step, dispose };
}

/**
 * qwen2vl's rows [2B, T]: text, <|vision_start|>, the image's pad tokens, <|vision_end|>, a
 * question (the prompt, shared by chosen and rejected), then each row's own answer.
 */
function qwen2vlRows(cfg: TrainStepConfig): number[][] {
  const v = cfg.vision!;
  const t = cfg.tokens!;
  const imageTokens = (v.image_side / v.merge_size) ** 2;
  const text = (n: number) => torch.tidy(() => torch.randint(0, t.text_vocab, [n]).toArray() as number[]);
  const prompt = [
    ...text(cfg.image_at!),
    t.vision_start,
    ...new Array<number>(imageTokens).fill(t.image),
    t.vision_end,
    ...text(cfg.prompt_len - cfg.image_at! - 2 - imageTokens),
  ];
  return Array.from({ length: 2 * cfg.pairs }, () => [...prompt, ...text(cfg.seq - cfg.prompt_len)]);
}

/**
 * qwen2vl: the trainer's log-prob path (concatenatedForward, checkpointed, the LM head in chunks)
 * with each row's image; the vision tower and merger frozen.
 */
function qwen2vlStep(cfg: TrainStepConfig): BenchStep {
  const { policy, referenceLogps, optimizer, scoreChosen, scoreRejected, objective, dispose } = setUp(
    archConfig(cfg),
    cfg,
    (name) => name.startsWith("visual."),
  );
  const b = cfg.pairs;
  const v = cfg.vision!;
  const ids = cfg.shared?.input_ids ?? qwen2vlRows(cfg); // [2B, T]
  const batch: PaddedBatch = {
    inputIds: ids,
    attentionMask: ids.map((r) => r.map(() => 1)),
    labels: ids.map((r) => r.map((x, t) => (t < cfg.prompt_len ? -100 : x))),
  };
  // One image per row, the same on both sides: sin(0.001 i) over its patches' values.
  const patches = v.image_side ** 2;
  const values = 3 * v.temporal_patch_size * v.patch_size ** 2;
  const pixelValues = torch.tidy(() => {
    const image = torch
      .arange(0, patches * values)
      .to("float32")
      .mul(0.001)
      .sin()
      .reshape(patches, values); // [N, K]
    return torch.cat(new Array<torch.Tensor>(2 * b).fill(image), 0); // [2B * N, K]
  });
  const grid = Array.from({ length: 2 * b }, () => [1, v.image_side, v.image_side]);
  const imageGridThw = torch.tensor(grid, { dtype: "int64" }); // [2B, 3]
  const images = { pixelValues, imageGridThw };
  const step = () => {
    const recompute = new RecomputeTape();
    try {
      return torch.tidy(() => {
        const ours = concatenatedForward(policy, batch, true, { recompute, gradientCheckpointing: true, images });
        const ref = torch.noGrad(() =>
          torch.tidy(() => referenceLogps((reference) => concatenatedForward(reference, batch, true, { images }))),
        );
        const loss = preferenceLoss(
          {
            policyChosenLogps: ours.chosen,
            policyRejectedLogps: ours.rejected,
            referenceChosenLogps: ref.chosen,
            referenceRejectedLogps: ref.rejected,
            scoreChosen,
            scoreRejected,
          },
          objective,
        ).loss;
        loss.backward();
        recompute.backward();
        optimizer.step();
        optimizer.zeroGrad();
        return loss.item();
      });
    } finally {
      recompute.dispose();
    }
  };
  return {
    step,
    dispose: () => {
      torch.dispose([pixelValues, imageGridThw]);
      dispose();
    },
  };
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Pick<T, K> {
  return Object.fromEntries(keys.map((k) => [k, o[k]])) as Pick<T, K>;
}

export function formatTrainBench(r: TrainBenchResult): string {
  const lines = [
    ...r.model.split("\n"),
    `${r.pairs} pair per step = ${2 * r.pairs} rows (chosen + rejected), a live frozen reference (lora: the adapters off), AdamW, Omni-DPO (beta 3.5, eta 0.7, tau_ref 0.8, gamma 3, lambda 0.001, tau_good 3.2)`,
    `LibTorch ${r.torchVersion} via omni-dpo; PyTorch ${r.pytorchVersion ?? "absent"} via Python; ${r.threads} threads; ` +
      `OPENBLAS_CORETYPE=${r.openblasCoretype ?? "unset"}; each side in its own process per case and sequence length`,
    "",
    formatTable(r.rows),
    "",
    "tokens/s: the policy's tokens (rows x sequence) per full step, over the fastest timed step after a warm-up",
    "(the median is in --json); higher is better. Memory: lower is better, so 'vs PyTorch' above 1 means less",
    "memory than PyTorch. Peak RSS is the process's resident peak (VmHWM)" +
      (r.peakReset
        ? " during the timed steps (reset via /proc/self/clear_refs)."
        : "; it could not be reset, so it is the process's lifetime peak."),
  ];
  if (r.rows.some((x) => x.name.startsWith("LoRA step vs")))
    lines.push(
      "In the 'LoRA vs full' rows the PyTorch column holds omni-dpo's full fine-tune (the qwen2 case), not PyTorch.",
    );
  const ours = r.runs.filter((x) => x.side === "omni-dpo").map((x) => x.loss);
  const theirs = r.runs.filter((x) => x.side === "pytorch").map((x) => x.loss);
  const start = r.sharedStart ? "the same starting weights and tokens on both sides" : "each side's own random weights";
  const pytorch = theirs.length ? `; PyTorch ${theirs.map((x) => x.toFixed(4)).join(", ")}` : "";
  if (ours.length)
    lines.push(`last-step loss: omni-dpo ${ours.map((x) => x.toFixed(4)).join(", ")}${pytorch} (${start})`);
  if (r.loadAverage >= 0.5) {
    lines.push(
      `load average before the run: ${r.loadAverage.toFixed(2)} on ${r.cores} cores: other processes were running, so timings are noisy (memory is not affected)`,
    );
  }
  if (r.note) lines.push("", r.note);
  return lines.join("\n");
}
