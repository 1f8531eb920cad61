// `omni-dpo data inspect|build`: look at a preference file, or build one from model samples.
import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { join } from "node:path";
import {
  ENDPOINT_HELP,
  ENDPOINT_OPTIONS,
  JUDGE_HELP,
  JUDGE_OPTIONS,
  judgeFromFlags,
  samplerFromFlags,
} from "../endpoint-flags.js";
import { UsageError, positiveInt, nonNegative, resolveDevice, seedInt, type Command } from "../args.js";
import { refuseOverwritingInputs } from "../build-outputs.js";
import { DATA_BUILD_MATH_HELP } from "./data-math.js";

const INSPECT_HELP = `Usage: omni-dpo data inspect FILE [--tokenizer DIR] [options]

Reads and validates a preference file as training does (bad rows fail with file:line:field)
and reports: counts (records, with scores, conversational vs plain); with a tokenizer, token
lengths (p50/p90/p99/max of prompt, chosen, rejected, prompt + longer answer) and how many
rows truncation will cut; the score-margin (score_chosen - score_rejected) histogram and the
share of near-ambiguous pairs; duplicate prompts. Image records (an "images" list, in TRL's or
LLaMA-Factory's format) have every image decoded and counted; with a Qwen2-VL --tokenizer DIR
(its preprocessor_config.json) their image tokens too.

  --tokenizer DIR          a model or tokenizer directory (tokenizer.json, tokenizer_config.json)
  --images DIR             where relative image paths start (default: the data file's folder)
  --max-length N           truncation limit as in training (default 512)
  --max-prompt-length N    (default 128)
  --ambiguous-margin M     |margin| below M is near-ambiguous (default 0.5)
  --json                   print one JSON object
`;

const BUILD_HELP = `Usage: omni-dpo data build --model POLICY --prompts FILE --reward-model RM_DIR --out FILE [options]
       omni-dpo data build --model DIR --prompts FILE --scorer NAME|MODULE --out FILE [options]   (a custom scorer)
       omni-dpo data build [--task math] --model POLICY --prompts PROBLEMS --out FILE [--prm PRM_DIR] [options]

data build --reward-model (text, as the reference's on_policy_data_gen): samples K responses per
prompt from the policy, one seed per sample (chat prompts through the policy's chat template with
a generation prompt), drops prompts whose responses are all identical, scores each response with
the reward model (a sequence-classification checkpoint; its own chat template when it has one;
the score at the last token), and keeps the highest-scoring response as chosen and the lowest as
rejected (first of equals; all scores tied: dropped). Rows: prompt, chosen, rejected (message
lists for chat prompts), score_chosen, score_rejected, all_generated_responses, all_rm_scores.
Finished prompts are journaled in OUT.progress.jsonl: an interrupted build run again with the
same arguments continues where it stopped. OUT is written whole at the end, its summary (counts,
what was dropped and why, score and margin histograms) in OUT.summary.json.

  --model DIR              the policy (or a LoRA adapter directory)
  --prompts FILE           plain text (one prompt a line) or JSONL with "prompt" (a string or
                           a message list) or "messages"
  --reward-model DIR       the reward model (AutoModelForSequenceClassification, num_labels 1)
  --task text|math         text (default with --reward-model): the pipeline above; --scorer
                           MODULE scores instead of a reward model
  --samples K              responses per prompt (default 5)
  --seeds LIST             one seed per sample (default 13,21,42,79,100; more samples continue
                           1000, 1001, ...); a response's seed is mixed with its prompt's text
  --temperature T          (default 0.8)
  --top-p P                (default 0.95, the reference's decode.py)
  --top-k K                (default 0: no limit)
  --max-new-tokens N       (default 4096, the reference's; never past the policy's context)
  --batch-size N           prompts per generation batch, K rows each (default 8)
  --score-batch-size N     responses per reward-model batch (default 16)
  --prompt-format F        auto (default: chat when the prompt is a message list or the policy
                           has a chat template), chat, or text
  --min-margin M           drop pairs with score_chosen - score_rejected below M
  --normalize-margin       add score_margin and score_margin_normalized (z-scored over the pairs)
  --restart                discard the journal of an earlier run and start over
  --device D               auto (default), cpu, cuda or cuda:N
  --json                   print the summary as JSON

data build --scorer (the math task with a custom scorer): samples K responses per prompt from the
model (T 0.8), scores each (a named scorer, such as arith: the arithmetic task's verifier and noisy
process judge; or your scorer module exporting score(prompt, response) that returns a number or
{score, correct}), drops prompts whose samples are all the same, and
binarises as the reference does: chosen = a correct response scoring above 6 (highest or random),
rejected = one scoring at most chosen - margin (lowest, random, or "positive"). Writes JSONL with
prompt, chosen, rejected, score_chosen, score_rejected.

  --model DIR              the policy to sample from (with its tokenizer)
  --prompts FILE           one prompt per line, or JSONL with a "prompt" field
  --out FILE               where the pairs go (JSONL)
  --scorer NAME|MODULE     a named scorer (arith: the arithmetic task's, in the omni-dpo command) or a
                           JS module exporting score(prompt, response); without it (and without
                           --reward-model or --judge-endpoint), data build grades against each
                           problem's answer (data build --task math, below)
  --judge-noise S          a named scorer's noise in score points (arith: default 1.5)
  --samples K              responses per prompt (default 5)
  --temperature T          sampling temperature (default 0.8)
  --max-new-tokens N       (default 64)
  --chosen highest|random  (default highest)
  --rejected lowest|random|positive  (default lowest)
  --margin M               rejected scores at most chosen - M (default 5)
  --max-pairs N            (default 10000)
  --seed N                 (default 0)
${ENDPOINT_HELP.replace("Generating through", "data build (both tasks) sampling through")}  With --endpoint, --model DIR is read for its tokenizer and config.json only: prompts are
  rendered, length-checked and seeded exactly as a local build does them, and answers sized to
  its context. Each sample with its own seed is one request (n = 1, seed); responses are
  journaled as local ones are, so a killed build resumes.
${JUDGE_HELP}
${DATA_BUILD_MATH_HELP}`;

export const dataCommand: Command = {
  help: `${INSPECT_HELP}\n${BUILD_HELP}`,
  subcommandHelp: { inspect: INSPECT_HELP, build: BUILD_HELP },
  async run(argv) {
    if (argv[0] === "build") return dataBuild(argv.slice(1));
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        tokenizer: { type: "string" },
        "max-length": { type: "string" },
        "max-prompt-length": { type: "string" },
        "ambiguous-margin": { type: "string" },
        images: { type: "string" },
        json: { type: "boolean" },
      },
    });
    const [sub, file, ...extra] = positionals;
    if (sub !== "inspect") throw new UsageError(`data: unknown subcommand '${sub ?? ""}'; available: inspect, build`);
    if (!file || extra.length) throw new UsageError("data inspect: expected one FILE");
    const maxLength = positiveInt(values["max-length"], "--max-length", 512);
    const maxPromptLength = positiveInt(values["max-prompt-length"], "--max-prompt-length", 128);
    if (maxPromptLength >= maxLength)
      throw new UsageError(`--max-prompt-length (${maxPromptLength}) must be below --max-length (${maxLength})`);
    const { inspectFile, formatInspection } = await import("../../data/inspect.js");
    const text = await import("../../text/index.js");
    const tokenizer = values.tokenizer ? text.Tokenizer.fromPretrainedSync(values.tokenizer) : null;
    // A vision-language model directory counts image tokens with its own image processor.
    const imageProcessor =
      values.tokenizer && existsSync(join(values.tokenizer, text.PREPROCESSOR_CONFIG))
        ? text.AutoProcessor.fromPretrained(values.tokenizer).imageProcessor
        : null;
    const r = await inspectFile(file, {
      tokenizer,
      imageProcessor,
      ...(values.images ? { mediaDir: values.images } : {}),
      maxLength,
      maxPromptLength,
      ambiguousMargin: nonNegative(values["ambiguous-margin"], "--ambiguous-margin", 0.5),
    });
    console.log(values.json ? JSON.stringify(r) : formatInspection(r));
    return 0;
  },
};

type BuildValues = Record<string, string | boolean | undefined>;

async function dataBuild(argv: string[]): Promise<number> {
  // real math problems (gold answers, optionally a process reward model): their own pipeline and
  // options; the default when no scorer is named
  const has = (flag: string) => argv.some((a) => a === flag || a.startsWith(`${flag}=`));
  const taskFlag = argv.find((a, i) => argv[i - 1] === "--task") ?? argv.find((a) => a.startsWith("--task="))?.slice(7);
  const named = ["--scorer", "--reward-model", "--judge-endpoint"].some(has);
  if (has("--prm") || (!named && (taskFlag === undefined || taskFlag === "math")))
    return (await import("./data-math.js")).dataBuildMath(argv);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: "string" },
      prompts: { type: "string" },
      out: { type: "string" },
      scorer: { type: "string" },
      "judge-noise": { type: "string" },
      samples: { type: "string" },
      temperature: { type: "string" },
      "max-new-tokens": { type: "string" },
      chosen: { type: "string" },
      rejected: { type: "string" },
      margin: { type: "string" },
      "max-pairs": { type: "string" },
      seed: { type: "string" },
      json: { type: "boolean" },
      "reward-model": { type: "string" },
      task: { type: "string" },
      seeds: { type: "string" },
      "top-p": { type: "string" },
      "top-k": { type: "string" },
      "batch-size": { type: "string" },
      "score-batch-size": { type: "string" },
      "prompt-format": { type: "string" },
      "min-margin": { type: "string" },
      "normalize-margin": { type: "boolean" },
      restart: { type: "boolean" },
      device: { type: "string" },
      ...ENDPOINT_OPTIONS,
      ...JUDGE_OPTIONS,
    },
  });
  if (positionals.length) throw new UsageError(`data build: unexpected argument '${positionals[0]}'`);
  if (!values.model || !values.prompts || !values.out)
    throw new UsageError("data build: --model DIR, --prompts FILE and --out FILE are required");
  refuseOverwritingInputs(values);
  const task = values.task ?? (values["reward-model"] || values["judge-endpoint"] ? "text" : "math");
  if (task !== "text" && task !== "math") throw new UsageError(`--task must be text or math, got '${task}'`);
  if (task === "text") return dataBuildText(values);
  for (const flag of TEXT_ONLY_FLAGS)
    if (values[flag] !== undefined)
      throw new UsageError(`data build: --${flag} belongs to the text pipeline (--reward-model or --task text)`);
  const chosen = values.chosen ?? "highest";
  const rejected = values.rejected ?? "lowest";
  if (chosen !== "highest" && chosen !== "random")
    throw new UsageError(`--chosen must be highest or random, got '${chosen}'`);
  if (!["lowest", "random", "positive"].includes(rejected))
    throw new UsageError(`--rejected must be lowest, random or positive, got '${rejected}'`);
  const prompts = (await import("../../data/readers.js")).readPromptFile(values.prompts);
  const { buildPairs, loadScorer } = await import("../../data/build.js");
  const { Progress } = await import("../../util/progress.js");
  const seed = seedInt(values.seed, "--seed", 0);
  const noise =
    values["judge-noise"] === undefined ? undefined : nonNegative(values["judge-noise"], "--judge-noise", 0);
  const scorer = await loadScorer(values.scorer!, { seed, noise });
  const { generator: model, tokenizer } = await samplerFromFlags(values, "data build");
  const { checkTokenIds, modelVocab } = await import("../../models/vocab.js");
  const promptIds = prompts.map((p, i) => ({ at: `${values.prompts}: prompt ${i + 1}`, ids: tokenizer!.encode(p) }));
  checkTokenIds(promptIds, modelVocab(values.model), values.model);
  const bar = new Progress("sampling", prompts.length, !values.json);
  const { pairs, stats } = await buildPairs(model, tokenizer!, prompts, scorer, {
    samples: positiveInt(values.samples, "--samples", 5),
    temperature: nonNegative(values.temperature, "--temperature", 0.8),
    maxNewTokens: positiveInt(values["max-new-tokens"], "--max-new-tokens", 64),
    chosen: chosen as "highest" | "random",
    rejected: rejected as "lowest" | "random" | "positive",
    margin: nonNegative(values.margin, "--margin", 5),
    maxPairs: positiveInt(values["max-pairs"], "--max-pairs", 10_000),
    seed,
    onProgress: (d) => bar.update(d),
  });
  model.dispose?.();
  (await import("../../util/files.js")).writeJsonLinesAtomic(values.out, pairs);
  if (values.json) console.log(JSON.stringify({ out: values.out, ...stats }));
  else {
    console.log(
      `${stats.pairs} pairs from ${stats.prompts} prompts (${stats.identicalDropped} with identical samples, ${stats.noPair} without a qualifying pair` +
        `${stats.overCap ? `, ${stats.overCap} over --max-pairs` : ""}; ${(100 * stats.correctShare).toFixed(1)}% of samples correct` +
        `${stats.scoreScale !== 1 ? `; scores x${stats.scoreScale} (a 0..1 scorer)` : ""}) -> ${values.out}`,
    );
  }
  return 0;
}

const TEXT_ONLY_FLAGS = [
  "reward-model",
  "judge-endpoint",
  "judge-model",
  "judge-template",
  "judge-retries",
  "judge-max-tokens",
  "seeds",
  "top-p",
  "top-k",
  "batch-size",
  "score-batch-size",
  "prompt-format",
  "min-margin",
  "normalize-margin",
  "restart",
  "device",
] as const;

/** The text pipeline: policy samples, reward-model (or scorer-module) scores, best vs worst. */
async function dataBuildText(values: BuildValues): Promise<number> {
  const str = (k: string) => values[k] as string | undefined;
  const model = str("model")!,
    out = str("out")!;
  const scorers = (["reward-model", "scorer", "judge-endpoint"] as const).filter((f) => values[f] !== undefined);
  if (scorers.length === 0)
    throw new UsageError("data build --task text: give --reward-model DIR, --judge-endpoint URL or --scorer MODULE");
  if (scorers.length > 1)
    throw new UsageError(`data build: give one scorer, not ${scorers.map((f) => `--${f}`).join(" and ")}`);
  for (const flag of ["chosen", "rejected", "margin", "max-pairs", "judge-noise", "seed"]) {
    if (values[flag] !== undefined)
      throw new UsageError(
        `data build: --${flag} belongs to the math task; the text pipeline pairs best vs worst (see --min-margin, --seeds)`,
      );
  }
  const format = str("prompt-format") ?? "auto";
  if (!["auto", "chat", "text"].includes(format))
    throw new UsageError(`--prompt-format must be auto, chat or text, got '${format}'`);
  const seeds = str("seeds")
    ?.split(",")
    .map((s) => {
      const n = Number(s.trim());
      if (s.trim() === "" || !Number.isSafeInteger(n) || n < 0) {
        throw new UsageError(
          `--seeds must be integers from 0 to ${Number.MAX_SAFE_INTEGER} (2^53 - 1) separated by commas, got '${str("seeds")}'`,
        );
      }
      return n;
    });
  const samples = positiveInt(str("samples"), "--samples", seeds?.length ?? 5);
  if (samples < 2) throw new UsageError("--samples must be at least 2 (a pair needs two responses)");
  const minMargin = str("min-margin") === undefined ? undefined : Number(str("min-margin"));
  if (minMargin !== undefined && !Number.isFinite(minMargin))
    throw new UsageError(`--min-margin must be a number, got '${str("min-margin")}'`);
  const options = {
    samples,
    seeds,
    temperature: nonNegative(str("temperature"), "--temperature", 0.8),
    topP: nonNegative(str("top-p"), "--top-p", 0.95),
    topK: positiveInt(str("top-k"), "--top-k", 0, true),
    maxNewTokens: positiveInt(str("max-new-tokens"), "--max-new-tokens", 4096),
    batchSize: positiveInt(str("batch-size"), "--batch-size", 8),
    minMargin,
    normalizeMargin: Boolean(values["normalize-margin"]),
    promptFormat: format as "auto" | "chat" | "text",
  };
  if (options.topP <= 0 || options.topP > 1) throw new UsageError(`--top-p must be in (0, 1], got '${str("top-p")}'`);
  const scoreBatchSize = positiveInt(str("score-batch-size"), "--score-batch-size", 16);
  const device = await resolveDevice(str("device"));
  const { readPromptRows } = await import("../../data/readers.js");
  const { buildTextPairs, formatTextSummary, moduleScorer, preparePrompts, writeTextBuild } =
    await import("../../data/text-build.js");
  const { Progress } = await import("../../util/progress.js");
  const { resolve } = await import("node:path");
  const { rmSync } = await import("node:fs");
  const rows = readPromptRows(str("prompts")!);
  // The reward model is checked before the policy samples anything: a bad directory fails fast.
  const judge = await judgeFromFlags(values, "data build");
  const scorer =
    judge ??
    (values.scorer
      ? moduleScorer(
          await import("../../data/build.js").then((m) => m.loadScorer(str("scorer")!)),
          resolve(str("scorer")!),
        )
      : (await import("../../data/reward.js")).rewardModelScorer(str("reward-model")!, {
          device,
          batchSize: scoreBatchSize,
        }));
  // With --endpoint the policy samples there; --model gives its tokenizer and context (prompts
  // rendered, checked and seeded as a local build's).
  const sampler = await samplerFromFlags(values, "data build", device);
  const policy = sampler.generator;
  const tokenizer = sampler.tokenizer!;
  try {
    const prepared = preparePrompts(
      rows,
      { maxPositions: policy.maxPositions ?? Infinity },
      tokenizer,
      options.promptFormat,
      model,
    );
    const journal = `${out}.progress.jsonl`;
    if (values.restart) rmSync(journal, { force: true });
    // The bar counts this run's prompts, so its rate and ETA leave out those an earlier run finished.
    let bar: InstanceType<typeof Progress> | undefined;
    let resumed = 0;
    const { pairs, summary } = await buildTextPairs(policy, tokenizer, prepared, scorer, {
      ...options,
      journal,
      identity: { policy: sampler.identity },
      onNotice: (m) => console.error(m),
      onProgress: (done, total, info) => {
        if (!bar) {
          resumed = done;
          bar = new Progress("sampling and scoring", total - resumed, !values.json);
        }
        bar.update(done - resumed, resumed ? `${info} (${resumed} prompts done before)` : info);
      },
    });
    bar?.finish();
    if (judge) {
      const c = judge.counts;
      console.error(
        `judge: ${c.asked} verdicts asked, ${c.unparseable} unparseable (asked again)` +
          `${c.refused ? `, ${c.refused} refused by the server (HTTP 400)` : ""}, ${c.dropped} responses left unscored`,
      );
    }
    const summaryFile = writeTextBuild(out, journal, pairs, summary);
    console.log(
      values.json
        ? JSON.stringify({ out, summary: summaryFile, ...summary })
        : `${formatTextSummary(summary)}\n-> ${out} (summary: ${summaryFile})`,
    );
  } finally {
    policy.dispose?.();
    scorer.dispose?.();
  }
  return 0;
}
