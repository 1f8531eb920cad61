// `omni-dpo data inspect|build`: look at a preference file, or build one from model samples.
import { parseArgs } from "node:util";
import { UsageError, positiveInt, nonNegative, type Command } from "../args.js";

export const dataCommand: Command = {
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
    const { inspectFile, formatInspection } = await import("../../data/inspect.js");
    const tokenizer = values.tokenizer ? (await import("../../text/index.js")).Tokenizer.fromPretrainedSync(values.tokenizer) : null;
    const r = await inspectFile(file, {
      tokenizer, maxLength, maxPromptLength, ambiguousMargin: nonNegative(values["ambiguous-margin"], "--ambiguous-margin", 0.5),
    });
    console.log(values.json ? JSON.stringify(r) : formatInspection(r));
    return 0;
  },
};

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
  const prompts = (await import("../../data/readers.js")).readPromptFile(values.prompts);
  const { buildPairs, loadScorer } = await import("../../data/build.js");
  const { loadModel } = await import("../../models/auto.js");
  const { Tokenizer } = await import("../../text/index.js");
  const { Progress } = await import("../progress.js");
  const seed = positiveInt(values.seed, "--seed", 0, true);
  const scorer = values.scorer ? await loadScorer(values.scorer)
    : (await import("../../tasks/arith/index.js")).arithScorer({ noise: nonNegative(values["judge-noise"], "--judge-noise", 1.5), seed });
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
  (await import("../../util/files.js")).writeJsonLinesAtomic(values.out, pairs);
  if (values.json) console.log(JSON.stringify({ out: values.out, ...stats }));
  else {
    console.log(`${stats.pairs} pairs from ${stats.prompts} prompts (${stats.identicalDropped} with identical samples, ${stats.noPair} without a qualifying pair` +
      `${stats.overCap ? `, ${stats.overCap} over --max-pairs` : ""}; ${(100 * stats.correctShare).toFixed(1)}% of samples correct` +
      `${stats.scoreScale !== 1 ? `; scores x${stats.scoreScale} (a 0..1 scorer)` : ""}) -> ${values.out}`);
  }
  return 0;
}
