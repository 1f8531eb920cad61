// `omni-dpo eval`: pairwise preference accuracy and implied rewards on a preference file.
import { parseArgs } from "node:util";
import type { CausalLM } from "../../models/causal-lm.js";
import { UsageError, positiveInt, nonNegative, resolveDevice, type Command } from "../args.js";
import { WINRATE_HELP, runWinRate } from "./eval-winrate.js";

export const evalCommand: Command = {
  help: `Usage: omni-dpo eval --model DIR --data FILE [--ref DIR] [options]
       omni-dpo eval --task math --predictions FILE [--dataset NAME] [--out FILE] [--json]
       omni-dpo eval --task math --model DIR --data FILE [--data FILE ...] [options]

Pairwise preference accuracy: the fraction of pairs whose implied reward of the chosen answer
is strictly above the rejected one's, and the mean rewards (chosen, rejected, margin). With
--ref the reward is DPO's, beta * (logp - ref); without it, beta * logp (SimPO-style).
Log-probs are length-normalised (mean per answer token) unless --no-length-norm. The data are
tokenised with the model's tokenizer exactly as training does.

  --model DIR              the model to evaluate (config, safetensors, tokenizer), or a LoRA
                           adapter directory (its base model with the adapter)
  --data FILE              preference pairs (.jsonl, .json, .parquet)
  --ref DIR                reference model, or adapter directory (default: none)
  --beta B                 reward scale (default 0.1 with --ref, 2.0 without)
  --batch-size N           pairs per forward pass (default 8)
  --max-length N           truncation as in training (default 512)
  --max-prompt-length N    (default 128)
  --no-length-norm         sum the answer tokens' log-probs instead of averaging them
  --device D               auto (default: CUDA when LibTorch has it), cpu, cuda or cuda:N
  --json                   print one JSON object

--task pairwise (the default) is the above. --task math grades math answers as the Qwen2.5-Math /
Uni-DPO evaluation harness does (answer extraction, normalisation, numeric and symbolic equality):
  --predictions FILE       JSON Lines, each with 'prediction' (the model's output) and 'answer'
                           (the benchmark's answer or solution), optionally 'dataset'
  --dataset NAME           the benchmark's rules for lines without 'dataset' (default math; also
                           math500, gsm8k, minerva_math, aime24, amc23, olympiadbench, ...)
  --out FILE               write every line back with 'extracted', 'gold' and 'correct' (a new file)
  --json                   print { accuracy, n, correct, empty, perDataset }
With --model and --data it runs benchmarks (JSONL/JSON/Parquet with problem or question, and the
data set's answer fields: MATH500's answer or solution, GSM8K's '#### N', ...) as the reference's
math_eval.py: prompts in its qwen25-math-cot template, greedy, 3000 new tokens at most:
  --data FILE              a benchmark file; repeat for several (a summary table with their average)
  --dataset NAME           its rules (default: the file's or its folder's name, e.g. math500.jsonl)
  --samples K              generations per problem (default 1): pass@k (unbiased) and maj@k
  --temperature T          (default 0: greedy)     --top-p P   (default 1)
  --max-new-tokens N       (default 3000)          --seed S    (default 0)
  --prompt-template TEXT   text with {input} for the question, or "chat" (the tokenizer's template)
  --batch-size N           generations per batch (default 16)
  --out PATH               every generation and verdict, one JSON line per problem; an interrupted
                           run continues from it (with several --data files, a directory)
  --device D               auto (default), cpu, cuda or cuda:N
  --json                   print { accuracy, pass_at_k, maj_at_k, n, groups, ... }; with several
                           files { benchmarks: [...], average }
${WINRATE_HELP}`,
  async run(argv) {
    const task = taskOf(argv);
    if (task === "math") return gradeMathPredictions(argv);
    if (task === "winrate") return runWinRate(argv);
    if (task !== "pairwise") throw new UsageError(`eval: --task must be pairwise or math, got '${task}'`);
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        task: { type: "string" },
        model: { type: "string" },
        data: { type: "string" },
        ref: { type: "string" },
        beta: { type: "string" },
        "batch-size": { type: "string" },
        "max-length": { type: "string" },
        "max-prompt-length": { type: "string" },
        "no-length-norm": { type: "boolean" },
        json: { type: "boolean" },
        device: { type: "string" },
      },
    });
    if (positionals.length) throw new UsageError(`eval: unexpected argument '${positionals[0]}'`);
    if (!values.model) throw new UsageError("eval: --model DIR is required");
    if (!values.data) throw new UsageError("eval: --data FILE is required");
    const beta = values.beta === undefined ? undefined : nonNegative(values.beta, "--beta", 0);
    if (beta === 0) throw new UsageError("--beta must be positive");
    const maxLength = positiveInt(values["max-length"], "--max-length", 512);
    const maxPromptLength = positiveInt(values["max-prompt-length"], "--max-prompt-length", 128);
    if (maxPromptLength >= maxLength)
      throw new UsageError(`--max-prompt-length (${maxPromptLength}) must be below --max-length (${maxLength})`);
    const { evaluatePairwiseFile, formatPairwise } = await import("../../eval/pairwise.js");
    const { Progress } = await import("../../util/progress.js");
    let bar = null as InstanceType<typeof Progress> | null;
    const r = await evaluatePairwiseFile({
      model: values.model,
      data: values.data,
      ref: values.ref ?? null,
      beta,
      maxLength,
      maxPromptLength,
      device: await resolveDevice(values.device),
      batchSize: positiveInt(values["batch-size"], "--batch-size", 8),
      lengthNorm: !values["no-length-norm"],
      onStatus: values.json ? undefined : (m) => console.error(m),
      onProgress: (done, total) => {
        (bar ??= new Progress(values.ref ? "policy + reference" : "evaluating", total, !values.json)).update(done);
      },
    });
    bar?.finish();
    if (values.json) {
      const { perPair: _perPair, ...summary } = r;
      console.log(JSON.stringify(summary));
    } else console.log(formatPairwise(r));
    return 0;
  },
};

/** The value of --task (or --task=...), "pairwise" when absent. */
function taskOf(argv: string[]): string {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--task") return argv[i + 1] ?? "";
    if (argv[i].startsWith("--task=")) return argv[i].slice("--task=".length);
  }
  return "pairwise";
}

/** `eval --task math --predictions FILE`: grades outputs generated elsewhere. */
async function gradeMathPredictions(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      task: { type: "string" },
      predictions: { type: "string" },
      dataset: { type: "string" },
      out: { type: "string" },
      json: { type: "boolean" },
      model: { type: "string" },
      data: { type: "string", multiple: true },
      samples: { type: "string" },
      temperature: { type: "string" },
      "top-p": { type: "string" },
      "max-new-tokens": { type: "string" },
      seed: { type: "string" },
      "prompt-template": { type: "string" },
      "batch-size": { type: "string" },
      device: { type: "string" },
    },
  });
  if (positionals.length) throw new UsageError(`eval: unexpected argument '${positionals[0]}'`);
  if (values.model !== undefined) return runMathBenchmarks(values);
  if (!values.predictions)
    throw new UsageError(
      "eval --task math: --predictions FILE (outputs to grade) or --model DIR --data FILE is required",
    );
  const { gradePredictionsFile, formatPredictions } = await import("../../eval/math/predictions.js");
  const r = gradePredictionsFile(values.predictions, { dataset: values.dataset, out: values.out });
  console.log(values.json ? JSON.stringify(r) : formatPredictions(r));
  return 0;
}

/** `eval --task math --model DIR --data FILE...`: generates and grades benchmark files. */
async function runMathBenchmarks(values: Record<string, string | boolean | string[] | undefined>): Promise<number> {
  const str = (k: string) => values[k] as string | undefined;
  const files = (values.data as string[] | undefined) ?? [];
  if (files.length === 0) throw new UsageError("eval --task math --model DIR: --data FILE is required");
  if (str("predictions")) throw new UsageError("eval --task math: give --predictions or --model/--data, not both");
  const temperature = nonNegative(str("temperature"), "--temperature", 0);
  const topP = nonNegative(str("top-p"), "--top-p", 1);
  if (topP === 0 || topP > 1) throw new UsageError(`--top-p must be in (0, 1], got '${str("top-p")}'`);
  const options = {
    dataset: str("dataset"),
    samples: positiveInt(str("samples"), "--samples", 1),
    temperature,
    topP,
    maxNewTokens: positiveInt(str("max-new-tokens"), "--max-new-tokens", 3000),
    seed: positiveInt(str("seed"), "--seed", 0, true),
    promptTemplate: str("prompt-template"),
    batchSize: positiveInt(str("batch-size"), "--batch-size", 16),
  };
  if (
    options.promptTemplate !== undefined &&
    options.promptTemplate !== "chat" &&
    !options.promptTemplate.includes("{input}")
  ) {
    throw new UsageError("--prompt-template must contain {input} (where the question goes) or be 'chat'");
  }
  if (options.samples > 1 && temperature === 0)
    throw new UsageError("--samples above 1 needs --temperature above 0 (greedy gives one answer)");
  const { join } = await import("node:path");
  const { mkdirSync } = await import("node:fs");
  const out = str("out");
  if (out !== undefined && files.length > 1) mkdirSync(out, { recursive: true });
  const { evaluateMathBenchmark, formatBenchmarks, datasetOfFile } = await import("../../eval/math/benchmark.js");
  const { loadModel } = await import("../../models/auto.js");
  const { tokenizerDirectory } = await import("../../models/peft.js");
  const { Tokenizer } = await import("../../text/index.js");
  const { Progress } = await import("../../util/progress.js");
  const model = str("model")!;
  const tokenizer = Tokenizer.fromPretrainedSync(tokenizerDirectory(model));
  const policy = loadModel(model, { device: await resolveDevice(str("device")) });
  const results = [];
  try {
    for (const file of files) {
      const name = options.dataset ?? datasetOfFile(file) ?? file;
      let bar = null as InstanceType<typeof Progress> | null;
      const { result } = await evaluateMathBenchmark(policy as CausalLM, tokenizer, file, {
        ...options,
        identity: { model },
        out:
          out === undefined ? undefined : files.length > 1 ? join(out, `${name.replace(/[^\w.-]+/g, "_")}.jsonl`) : out,
        onProgress: (done, total) => {
          (bar ??= new Progress(name, total, !values.json)).update(done);
        },
      });
      bar?.finish();
      results.push(result);
    }
  } finally {
    policy.dispose();
  }
  if (values.json) {
    const average = results.reduce((s, r) => s + r.accuracy, 0) / results.length;
    console.log(JSON.stringify(results.length === 1 ? results[0] : { benchmarks: results, average }));
  } else console.log(formatBenchmarks(results));
  return 0;
}
