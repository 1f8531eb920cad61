#!/usr/bin/env node
// The `omni-dpo` command line: parses arguments, calls the library, prints. Nothing else.
import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../util/package-root.js";

const HELP = `omni-dpo: preference training (Omni-DPO, DPO, SimPO, ...) for causal language models

Usage: omni-dpo <command> [options]

Commands:
  demo                 run the embedded demo (now: a small training run on the engine)
  train CONFIG.yaml    preference training from a reference-style YAML
  generate             generate text with a model directory (greedy or sampled)
  eval                 pairwise preference accuracy and implied rewards of a model on pairs
  data inspect FILE    counts, token lengths, truncation, score margins, duplicates of a data file
  bench engine|model|train
                       engine throughput and overhead, model forward speed, or one training
                       step's speed and memory, beside PyTorch

Options:
  -h, --help           show help (also: omni-dpo <command> --help)
  -v, --version        print the version
`;

const COMMANDS: Record<string, { help: string; run: (argv: string[]) => Promise<number> }> = {
  demo: {
    help: `Usage: omni-dpo demo [--quick] [--seed N] [--seeds N] [--ablations] [--out DIR] [--json]
       omni-dpo demo sft --out DIR

The paper's math pipeline in miniature, on this machine: a small Llama-style model (SFT on
worked arithmetic solutions, shipped in assets/arith-sft) samples answers to new problems; a
verifier and a noisy process judge score them; pairs are built as the reference builds them;
DPO, SimPO and Omni-DPO train from the same start on the same pairs over several seeds, with
hyperparameters chosen on a validation split; held-out accuracy decides. Prints a table and
writes DIR/report.html (curves, accuracy, the w_qual/w_perf view) and DIR/results.json.

  --quick           smaller sets, 2 seeds, no tuning (about 1-3 minutes)
  --seed N          base seed (default 0)
  --seeds N         training seeds per method (default 3; quick 2)
  --ablations       also train Omni-DPO without each of w_qual, w_perf and c-NLL
  --no-tune         skip the validation grid (use the built-in choice)
  --judge-noise S   the process judge's noise, in score points (default 1.5)
  --out DIR         where runs and the report go (default ./omni-dpo-demo)
  --json            print one JSON object with the results

demo sft --out DIR  retrains the shipped SFT checkpoint with its recipe
`,
    async run(argv) {
      const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
        quick: { type: "boolean" }, seed: { type: "string" }, seeds: { type: "string" }, ablations: { type: "boolean" },
        "no-tune": { type: "boolean" }, "judge-noise": { type: "string" }, out: { type: "string" }, json: { type: "boolean" },
      } });
      const demo = await import("../demo/arith.js");
      const { Progress } = await import("./progress.js");
      if (positionals[0] === "sft") {
        if (!values.out) throw new UsageError("demo sft: --out DIR is required");
        let bar: InstanceType<typeof Progress> | null = null;
        const r = demo.trainSftModel(values.out, (s, t, loss) => (bar ??= new Progress("SFT", t)).update(s, `loss ${loss.toFixed(4)}`));
        console.log(`SFT model saved to ${values.out} (${r.seconds.toFixed(0)} s, final loss ${r.finalLoss.toFixed(4)})`);
        return 0;
      }
      if (positionals.length) throw new UsageError(`demo: unknown argument '${positionals[0]}'`);
      const { demoTable, writeDemoReport, demoJson } = await import("../report/demo-report.js");
      const bars = new Map<string, InstanceType<typeof Progress>>();
      const result = await demo.runDemo({
        quick: values.quick, seed: positiveInt(values.seed, "--seed", 0, true), seeds: values.seeds ? positiveInt(values.seeds, "--seeds", 3) : undefined,
        ablations: values.ablations, tune: values["no-tune"] ? false : undefined, judgeNoise: values["judge-noise"] ? nonNegative(values["judge-noise"], "--judge-noise", 1.5) : undefined,
        outDir: values.out ?? "omni-dpo-demo",
        onStatus: (m) => { if (!values.json) console.error(m); },
        onProgress: (label, done, total) => {
          if (values.json) return;
          let bar = bars.get(label);
          if (!bar) bars.set(label, (bar = new Progress(label, total)));
          bar.update(done);
        },
      });
      const files = writeDemoReport(result);
      if (values.json) { console.log(JSON.stringify(demoJson(result))); return 0; }
      console.log(`\n${demoTable(result)}\n`);
      console.log(`report: ${files.html}\nresults: ${files.json}\nwall time: ${result.wall_seconds.toFixed(0)} s`);
      return 0;
    },
  },
  train: {
    help: `Usage: omni-dpo train CONFIG.yaml [--set key=value ...] [--json]

Trains a causal LM on preference pairs with Omni-DPO or a baseline. CONFIG.yaml takes the
reference implementation's keys as they are (model_name_or_path, dataset_mixer, beta,
uni_dpo_*, pref_loss / loss_type, learning_rate, lr_scheduler_type, warmup_ratio,
num_train_epochs, per_device_train_batch_size, gradient_accumulation_steps, max_length,
max_prompt_length, logging_steps, eval_steps, save_steps, output_dir, ref_model, ...).

Writes output_dir/metrics.jsonl as it goes, checkpoints every save_steps, and the trained
model with its tokenizer to output_dir. Ctrl-C (or SIGTERM) saves a checkpoint and stops;
resume with --set resume_from_checkpoint=true.

  --set key=value   override a config key (repeatable; the value is read as YAML)
  --json            print the final result as JSON
`,
    async run(argv) {
      const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { set: { type: "string", multiple: true }, json: { type: "boolean" } } });
      if (positionals.length !== 1) throw new UsageError("train: expected one CONFIG.yaml");
      const { loadTrainConfig, parseOverride } = await import("../train/config.js");
      const { train } = await import("../train/trainer.js");
      const { Progress } = await import("./progress.js");
      const { config, warnings } = loadTrainConfig(positionals[0], (values.set ?? []).map(parseOverride));
      for (const w of warnings) console.error(`warning: ${w}`);
      let stopRequested = false;
      const onSignal = (signal: string) => {
        if (stopRequested) { console.error(`\n${signal} again: exiting without a checkpoint`); process.exit(130); }
        stopRequested = true;
        console.error(`\n${signal}: saving a checkpoint after this step, then stopping (again to exit now)`);
      };
      const sigint = () => onSignal("SIGINT");
      const sigterm = () => onSignal("SIGTERM");
      process.on("SIGINT", sigint);
      process.on("SIGTERM", sigterm);
      let bar: InstanceType<typeof Progress> | null = null;
      try {
        const result = await train(config, {
          onStatus: (m) => console.error(m),
          onProgress: (step, total, info) => { (bar ??= new Progress("training", total, true)).update(step, info); },
          onLog: (row) => { if (!values.json && String(Object.keys(row).find((k) => k.startsWith("eval_")) ?? "")) console.error(formatRow(row)); },
          shouldStop: () => stopRequested,
        });
        if (values.json) console.log(JSON.stringify(result));
        else if (result.interrupted) console.log(`stopped at step ${result.globalStep}/${result.totalSteps}; checkpoint ${result.checkpoint}`);
        else console.log(`trained ${result.globalStep} steps; model saved to ${result.outputDir}`);
        return result.interrupted ? 130 : 0;
      } finally {
        process.off("SIGINT", sigint);
        process.off("SIGTERM", sigterm);
      }
    },
  },
  generate: {
    help: `Usage: omni-dpo generate --model DIR (--prompt TEXT | --prompts FILE) [options]

Generates text with a causal LM in Hugging Face layout (config.json, safetensors, tokenizer).

  --model DIR            model directory
  --prompt TEXT          one prompt (repeatable)
  --prompts FILE         a file with one prompt per line (or JSONL with a "prompt" field)
  --chat                 wrap each prompt as a user message in the model's chat template
  --max-new-tokens N     tokens to generate (default 128)
  --temperature T        0 decodes greedily (default); above 0 samples
  --top-k K              sample among the K most likely tokens
  --top-p P              sample from the smallest set reaching probability P
  --stop TEXT            stop when the text appears (repeatable)
  --seed N               seed for sampling (default 0)
  --batch-size N         prompts per batch (default 8; left-padded)
  --json                 print JSON lines {prompt, completion, finish_reason}
`,
    async run(argv) {
      const { values } = parseArgs({ args: argv, options: {
        model: { type: "string" }, prompt: { type: "string", multiple: true }, prompts: { type: "string" }, chat: { type: "boolean" },
        "max-new-tokens": { type: "string" }, temperature: { type: "string" }, "top-k": { type: "string" }, "top-p": { type: "string" },
        stop: { type: "string", multiple: true }, seed: { type: "string" }, "batch-size": { type: "string" }, json: { type: "boolean" },
      } });
      if (!values.model) throw new UsageError("generate: --model DIR is required");
      const prompts = [...(values.prompt ?? [])];
      if (values.prompts) {
        const { readFileSync } = await import("node:fs");
        for (const line of readFileSync(values.prompts, "utf8").split("\n")) {
          if (!line.trim()) continue;
          if (line.trimStart().startsWith("{")) {
            const row = JSON.parse(line) as { prompt?: unknown };
            if (typeof row.prompt !== "string") throw new UsageError(`${values.prompts}: a JSON line needs a string field 'prompt'`);
            prompts.push(row.prompt);
          } else prompts.push(line);
        }
      }
      if (prompts.length === 0) throw new UsageError("generate: give --prompt TEXT or --prompts FILE");
      const maxNew = positiveInt(values["max-new-tokens"], "--max-new-tokens", 128);
      const temperature = nonNegative(values.temperature, "--temperature", 0);
      const topK = positiveInt(values["top-k"], "--top-k", 0, true);
      const topP = nonNegative(values["top-p"], "--top-p", 1);
      const seed = positiveInt(values.seed, "--seed", 0, true);
      const batchSize = positiveInt(values["batch-size"], "--batch-size", 8);
      const { loadModel } = await import("../models/auto.js");
      const { generate } = await import("../models/generate.js");
      const { Tokenizer } = await import("../text/index.js");
      const { Progress } = await import("./progress.js");
      const tokenizer = Tokenizer.fromPretrainedSync(values.model);
      const model = loadModel(values.model);
      const texts = prompts.map((p) => (values.chat ? tokenizer.applyChatTemplate([{ role: "user", content: p }], { addGenerationPrompt: true }) : p));
      // A chat render writes its own special tokens; plain prompts get what the tokenizer adds (Llama's BOS).
      const ids = texts.map((t) => tokenizer.encode(t, { addSpecialTokens: !values.chat }));
      const eos = [tokenizer.eosTokenId, ...(tokenizer.tokenToId("<|im_end|>") !== undefined ? [tokenizer.tokenToId("<|im_end|>")] : []),
        ...(tokenizer.tokenToId("<|eot_id|>") !== undefined ? [tokenizer.tokenToId("<|eot_id|>")] : [])].filter((x): x is number => x !== undefined);
      const bar = new Progress("generating", prompts.length * maxNew, !values.json && prompts.length * maxNew > 64);
      for (let start = 0; start < ids.length; start += batchSize) {
        const chunk = ids.slice(start, start + batchSize);
        const r = generate(model, chunk, {
          maxNewTokens: maxNew, temperature, topK, topP, seed: seed + start, eosTokenIds: eos, padTokenId: tokenizer.padTokenId,
          stopStrings: values.stop, decode: (t) => tokenizer.decode(t, { skipSpecialTokens: true }),
          onStep: (s) => bar.update(start * maxNew + s * chunk.length),
        });
        r.tokens.forEach((tokens, i) => {
          const completion = tokenizer.decode(tokens, { skipSpecialTokens: true });
          const prompt = prompts[start + i];
          if (values.json) console.log(JSON.stringify({ prompt, completion, finish_reason: r.finishReasons[i], tokens: tokens.length }));
          else console.log(`${prompt}${values.chat ? "\n" : ""}${completion}\n---`);
        });
      }
      bar.finish();
      model.dispose();
      return 0;
    },
  },
  eval: {
    help: `Usage: omni-dpo eval --model DIR --data FILE [--ref DIR] [options]

Pairwise preference accuracy: the fraction of pairs whose implied reward of the chosen answer
is strictly above the rejected one's, and the mean rewards (chosen, rejected, margin). With
--ref the reward is DPO's, beta * (logp - ref); without it, beta * logp (SimPO-style).
Log-probs are length-normalised (mean per answer token) unless --no-length-norm. The data are
tokenised with the model's tokenizer exactly as training does.

  --model DIR              the model to evaluate (config, safetensors, tokenizer)
  --data FILE              preference pairs (.jsonl, .json, .parquet)
  --ref DIR                reference model (default: none)
  --beta B                 reward scale (default 0.1 with --ref, 2.0 without)
  --batch-size N           pairs per forward pass (default 8)
  --max-length N           truncation as in training (default 512)
  --max-prompt-length N    (default 128)
  --no-length-norm         sum the answer tokens' log-probs instead of averaging them
  --json                   print one JSON object
`,
    async run(argv) {
      const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
        model: { type: "string" }, data: { type: "string" }, ref: { type: "string" }, beta: { type: "string" }, "batch-size": { type: "string" },
        "max-length": { type: "string" }, "max-prompt-length": { type: "string" }, "no-length-norm": { type: "boolean" }, json: { type: "boolean" },
      } });
      if (positionals.length) throw new UsageError(`eval: unexpected argument '${positionals[0]}'`);
      if (!values.model) throw new UsageError("eval: --model DIR is required");
      if (!values.data) throw new UsageError("eval: --data FILE is required");
      const beta = values.beta === undefined ? undefined : nonNegative(values.beta, "--beta", 0);
      if (beta === 0) throw new UsageError("--beta must be positive");
      const maxLength = positiveInt(values["max-length"], "--max-length", 512);
      const maxPromptLength = positiveInt(values["max-prompt-length"], "--max-prompt-length", 128);
      if (maxPromptLength >= maxLength) throw new UsageError(`--max-prompt-length (${maxPromptLength}) must be below --max-length (${maxLength})`);
      const { evaluatePairwiseFile, formatPairwise } = await import("../eval/pairwise.js");
      const { Progress } = await import("./progress.js");
      let bar = null as InstanceType<typeof Progress> | null;
      const r = await evaluatePairwiseFile({
        model: values.model, data: values.data, ref: values.ref ?? null, beta, maxLength, maxPromptLength,
        batchSize: positiveInt(values["batch-size"], "--batch-size", 8), lengthNorm: !values["no-length-norm"],
        onStatus: values.json ? undefined : (m) => console.error(m),
        onProgress: (done, total) => { (bar ??= new Progress(values.ref ? "policy + reference" : "evaluating", total, !values.json)).update(done); },
      });
      bar?.finish();
      if (values.json) {
        const { perPair: _perPair, ...summary } = r;
        console.log(JSON.stringify(summary));
      } else console.log(formatPairwise(r));
      return 0;
    },
  },
  data: {
    help: `Usage: omni-dpo data inspect FILE [--tokenizer DIR] [options]
       omni-dpo data build --model DIR --prompts FILE --out FILE [options]

data build: samples K responses per prompt from the model (T 0.8), scores each (the arithmetic
task's verifier and noisy process judge, or your scorer module exporting score(prompt, response)
that returns a number or {score, correct}), drops prompts whose samples are all the same, and
binarises as the reference does: chosen = a correct response scoring above 6 (highest or random),
rejected = one scoring at most chosen - margin (lowest, random, or "positive"). Writes JSONL with
prompt, chosen, rejected, score_chosen, score_rejected.

  --model DIR              the policy to sample from (with its tokenizer)
  --prompts FILE           one prompt per line, or JSONL with a "prompt" field
  --out FILE               where the pairs go (JSONL)
  --scorer MODULE          a JS module exporting score(prompt, response); default: the arithmetic task
  --judge-noise S          the arithmetic judge's noise in score points (default 1.5)
  --samples K              responses per prompt (default 5)
  --temperature T          sampling temperature (default 0.8)
  --max-new-tokens N       (default 64)
  --chosen highest|random  (default highest)
  --rejected lowest|random|positive  (default lowest)
  --margin M               rejected scores at most chosen - M (default 5)
  --max-pairs N            (default 10000)
  --seed N                 (default 0)

data inspect:

Reads and validates a preference file as training does (bad rows fail with file:line:field)
and reports: counts (records, with scores, conversational vs plain); with a tokenizer, token
lengths (p50/p90/p99/max of prompt, chosen, rejected, prompt + longer answer) and how many
rows truncation will cut; the score-margin (score_chosen - score_rejected) histogram and the
share of near-ambiguous pairs; duplicate prompts.

  --tokenizer DIR          a model or tokenizer directory (tokenizer.json, tokenizer_config.json)
  --max-length N           truncation limit as in training (default 512)
  --max-prompt-length N    (default 128)
  --ambiguous-margin M     |margin| below M is near-ambiguous (default 0.5)
  --json                   print one JSON object
`,
    async run(argv) {
      if (argv[0] === "build") return dataBuild(argv.slice(1));
      const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
        tokenizer: { type: "string" }, "max-length": { type: "string" }, "max-prompt-length": { type: "string" },
        "ambiguous-margin": { type: "string" }, json: { type: "boolean" },
      } });
      const [sub, file, ...extra] = positionals;
      if (sub !== "inspect") throw new UsageError(`data: unknown subcommand '${sub ?? ""}'; available: inspect, build`);
      if (!file || extra.length) throw new UsageError("data inspect: expected one FILE");
      const maxLength = positiveInt(values["max-length"], "--max-length", 512);
      const maxPromptLength = positiveInt(values["max-prompt-length"], "--max-prompt-length", 128);
      if (maxPromptLength >= maxLength) throw new UsageError(`--max-prompt-length (${maxPromptLength}) must be below --max-length (${maxLength})`);
      const { inspectFile, formatInspection } = await import("../data/inspect.js");
      const tokenizer = values.tokenizer ? (await import("../text/index.js")).Tokenizer.fromPretrainedSync(values.tokenizer) : null;
      const r = await inspectFile(file, {
        tokenizer, maxLength, maxPromptLength, ambiguousMargin: nonNegative(values["ambiguous-margin"], "--ambiguous-margin", 0.5),
      });
      console.log(values.json ? JSON.stringify(r) : formatInspection(r));
      return 0;
    },
  },
  bench: {
    help: `Usage: omni-dpo bench <engine|model|train> [--json] [--quick]

engine   matmul GFLOP/s at 1024 and 2048, linear forward+backward GFLOP/s and per-op
         overhead on tiny tensors, each beside PyTorch (Python) measured in the same run.
model    forward tokens/s of a GPT-2-small-shaped (124M) random model at sequence 512,
         batch 2, beside the same forward in PyTorch (Python) in the same run.
train    one Omni-DPO training step (policy forward+backward over chosen+rejected, frozen
         reference forward, Omni-DPO loss, AdamW) on the same 124M model at sequence 256 and
         512, one pair (2 rows) per step: tokens/s and peak memory (peak RSS), beside the same
         step in PyTorch; each side in its own process (2 to 3 minutes on 2 cores).

  --json    print the results as JSON
  --quick   shorter timing trials (noisier); train: sequence 256 only, two timed steps
`,
    async run(argv) {
      const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: "boolean" }, quick: { type: "boolean" }, tiny: { type: "boolean" } } });
      const which = positionals[0];
      if (which === "train") {
        // --tiny (undocumented): a tiny model, so tests can run the whole command in seconds.
        const { benchTrain, formatTrainBench } = await import("../bench/train.js");
        if (!values.json) console.error(`benchmarking one Omni-DPO training step here and in PyTorch (${values.tiny ? "seconds" : values.quick ? "under a minute" : "2 to 3 minutes"})...`);
        const r = benchTrain({ quick: values.quick, tiny: values.tiny, onStatus: values.json ? undefined : (m) => console.error(`  ${m}`) });
        console.log(values.json ? JSON.stringify(r, null, 2) : formatTrainBench(r));
        return 0;
      }
      if (which === "engine") {
        const { benchEngine, formatEngineBench } = await import("../bench/engine.js");
        if (!values.json) console.error("benchmarking the engine and PyTorch (under a minute)...");
        const r = benchEngine({ quick: values.quick });
        console.log(values.json ? JSON.stringify(r, null, 2) : formatEngineBench(r));
        return 0;
      }
      if (which === "model") {
        const { benchModel, formatModelBench } = await import("../bench/model.js");
        if (!values.json) console.error("benchmarking a 124M GPT-2 forward here and in PyTorch (about a minute)...");
        const r = benchModel({ quick: values.quick });
        console.log(values.json ? JSON.stringify(r, null, 2) : formatModelBench(r));
        return 0;
      }
      throw new UsageError(`bench: unknown benchmark '${which ?? ""}'; available: engine, model, train`);
    },
  },
};

class UsageError extends Error {}

function formatRow(row: Record<string, number | string>): string {
  return Object.entries(row).map(([k, v]) => `${k}=${typeof v === "number" && !Number.isInteger(v) ? v.toPrecision(4) : v}`).join(" ");
}

function positiveInt(text: string | undefined, name: string, fallback: number, allowZero = false): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new UsageError(`${name} must be a${allowZero ? " non-negative" : " positive"} integer, got '${text}'`);
  return n;
}

async function dataBuild(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
    model: { type: "string" }, prompts: { type: "string" }, out: { type: "string" }, scorer: { type: "string" },
    "judge-noise": { type: "string" }, samples: { type: "string" }, temperature: { type: "string" }, "max-new-tokens": { type: "string" },
    chosen: { type: "string" }, rejected: { type: "string" }, margin: { type: "string" }, "max-pairs": { type: "string" },
    seed: { type: "string" }, json: { type: "boolean" },
  } });
  if (positionals.length) throw new UsageError(`data build: unexpected argument '${positionals[0]}'`);
  if (!values.model || !values.prompts || !values.out) throw new UsageError("data build: --model DIR, --prompts FILE and --out FILE are required");
  const chosen = values.chosen ?? "highest";
  const rejected = values.rejected ?? "lowest";
  if (chosen !== "highest" && chosen !== "random") throw new UsageError(`--chosen must be highest or random, got '${chosen}'`);
  if (!["lowest", "random", "positive"].includes(rejected)) throw new UsageError(`--rejected must be lowest, random or positive, got '${rejected}'`);
  const { readFileSync, writeFileSync, renameSync } = await import("node:fs");
  const prompts = readFileSync(values.prompts, "utf8").split("\n").filter((l) => l.trim()).map((line, i) => {
    if (!line.trimStart().startsWith("{")) return line;
    const row = JSON.parse(line) as { prompt?: unknown };
    if (typeof row.prompt !== "string") throw new UsageError(`${values.prompts}:${i + 1}: field 'prompt': expected a string`);
    return row.prompt;
  });
  const { buildPairs, loadScorer } = await import("../data/build.js");
  const { loadModel } = await import("../models/auto.js");
  const { Tokenizer } = await import("../text/index.js");
  const { Progress } = await import("./progress.js");
  const seed = positiveInt(values.seed, "--seed", 0, true);
  const scorer = values.scorer ? await loadScorer(values.scorer)
    : (await import("../tasks/arith/index.js")).arithScorer({ noise: nonNegative(values["judge-noise"], "--judge-noise", 1.5), seed });
  const model = loadModel(values.model);
  const tokenizer = Tokenizer.fromPretrainedSync(values.model);
  const bar = new Progress("sampling", prompts.length, !values.json);
  const { pairs, stats } = await buildPairs(model, tokenizer, prompts, scorer, {
    samples: positiveInt(values.samples, "--samples", 5), temperature: nonNegative(values.temperature, "--temperature", 0.8),
    maxNewTokens: positiveInt(values["max-new-tokens"], "--max-new-tokens", 64), chosen: chosen as "highest" | "random",
    rejected: rejected as "lowest" | "random" | "positive", margin: nonNegative(values.margin, "--margin", 5),
    maxPairs: positiveInt(values["max-pairs"], "--max-pairs", 10_000), seed, onProgress: (d) => bar.update(d),
  });
  model.dispose();
  const tmp = `${values.out}.tmp-${process.pid}`;
  writeFileSync(tmp, pairs.map((p) => JSON.stringify(p)).join("\n") + (pairs.length ? "\n" : ""));
  renameSync(tmp, values.out);
  if (values.json) console.log(JSON.stringify({ out: values.out, ...stats }));
  else console.log(`${stats.pairs} pairs from ${stats.prompts} prompts (${stats.identicalDropped} with identical samples, ${stats.noPair} without a qualifying pair; ${(100 * stats.correctShare).toFixed(1)}% of samples correct) -> ${values.out}`);
  return 0;
}

function nonNegative(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${name} must be a non-negative number, got '${text}'`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === "-h" || command === "--help" || command === "help") {
    process.stdout.write(HELP);
    return command ? 0 : 1;
  }
  if (command === "-v" || command === "--version") {
    console.log(JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")).version);
    return 0;
  }
  const cmd = COMMANDS[command];
  if (!cmd) throw new UsageError(`unknown command '${command}'. Run omni-dpo --help for the list.`);
  if (rest.includes("-h") || rest.includes("--help")) { process.stdout.write(cmd.help); return 0; }
  return cmd.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    console.error(`omni-dpo: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = usage ? 2 : 1;
  },
);
