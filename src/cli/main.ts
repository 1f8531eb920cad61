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
  bench engine|model   engine throughput and overhead, or model forward speed, beside PyTorch

Options:
  -h, --help           show help (also: omni-dpo <command> --help)
  -v, --version        print the version
`;

const COMMANDS: Record<string, { help: string; run: (argv: string[]) => Promise<number> }> = {
  demo: {
    help: `Usage: omni-dpo demo [--steps N] [--seed N] [--json]

Trains a small MLP on two interleaved spirals with AdamW, a cosine schedule and gradient
clipping, and reports loss and accuracy. (The preference-training demo replaces it.)

  --steps N   optimizer steps (default 1500)
  --seed N    random seed (default 0)
  --json      print one JSON object instead of text
`,
    async run(argv) {
      const { values } = parseArgs({ args: argv, options: { steps: { type: "string" }, seed: { type: "string" }, json: { type: "boolean" } } });
      const steps = positiveInt(values.steps, "--steps", 1500);
      const seed = positiveInt(values.seed, "--seed", 0, true);
      const { trainSpirals } = await import("../demo/spirals.js");
      const { Progress } = await import("./progress.js");
      const bar = new Progress("training", steps, !values.json);
      const r = trainSpirals({ steps, seed, onStep: (s, loss, lr) => bar.update(s, `loss ${loss.toFixed(4)} lr ${lr.toExponential(2)}`) });
      if (values.json) { console.log(JSON.stringify(r)); return 0; }
      console.log(`two-spirals MLP: loss ${r.initialLoss.toFixed(4)} -> ${r.finalLoss.toFixed(4)} in ${r.steps} steps (${r.seconds.toFixed(1)} s)`);
      console.log(`accuracy: train ${(100 * r.trainAccuracy).toFixed(1)}%, held-out ${(100 * r.testAccuracy).toFixed(1)}%`);
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
  bench: {
    help: `Usage: omni-dpo bench <engine|model> [--json] [--quick]

engine   matmul GFLOP/s at 1024 and 2048, linear forward+backward GFLOP/s and per-op
         overhead on tiny tensors, each beside PyTorch (Python) measured in the same run.
model    forward tokens/s of a GPT-2-small-shaped (124M) random model at sequence 512,
         batch 2, beside the same forward in PyTorch (Python) in the same run.

  --json    print the results as JSON
  --quick   shorter timing trials (noisier)
`,
    async run(argv) {
      const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { json: { type: "boolean" }, quick: { type: "boolean" } } });
      const which = positionals[0];
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
      throw new UsageError(`bench: unknown benchmark '${which ?? ""}'; available: engine, model`);
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
