// `omni-dpo data build --task math [--prm DIR]`: preference pairs from real math problems, as the
// reference's Math/data_generation pipeline (src/eval/math/preference-pairs.ts); without a process
// reward model, the grader's verifiable reward is each response's score.
import { parseArgs } from "node:util";
import { UsageError, nonNegative, positiveInt, resolveDevice } from "../args.js";
import { ENDPOINT_OPTIONS, samplerFromFlags } from "../endpoint-flags.js";
import { refuseOverwritingInputs } from "../build-outputs.js";

export const DATA_BUILD_MATH_HELP = `
data build --task math (real problems with gold answers, as the reference's Math/data_generation):
samples K responses per problem from the policy (its chat template with the reference's system
prompt and "Let's think step by step ..." suffix), drops responses past the truncation length,
grades each against the gold answer by the evaluation harness's rules (responses without an
answer dropped, problems without a correct response dropped), scores each response, and pairs
them as get_uni_dpo_data.py (chosen: correct and above 6 of 10; rejected by --neg-strategy at
least --score-margin lower). The score: with --prm, the process reward model's min or mean step
score (steps split on blank lines); without it, the verifiable reward (10 correct, 0 wrong), and
--neg-strategy defaults to min (a wrong response; "positive" would pair two correct ones of equal
score). This is the default of data build when the prompts carry answers and no --scorer,
--reward-model or --judge-endpoint is given. --endpoint (above) samples through a server.
  --prompts FILE           JSON Lines with 'problem' (or 'prompt') and 'answer'
  --prm DIR                the process reward model (Qwen2ForProcessRewardModel, its tokenizer)
  --samples K              (default 8)          --temperature T   (default 1.0)
  --top-p P                (default 0.8)        --max-new-tokens N (default 4096)
  --truncate-length N      prompt + response tokens above it drop the response (default 4000; 0: keep)
  --reward-type min|avg    (default min)        --pos-strategy max|rand (default max)
  --neg-strategy min|rand|positive (default positive with --prm, min without)
  --score-margin M         (default 0, of 10)
  --max-pairs N            (default 10000)      --seed S (default 42)
  --prompt-template TEXT   text with {input} instead of the policy's chat template
  --step-token TEXT        the PRM's step separator (default <extra_0>)
  --batch-size N           problems per generation batch (default 4)
  --restart                discard the journal (<out>.progress.jsonl) of an interrupted build
  --device D  --json
`;

export async function dataBuildMath(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      task: { type: "string" },
      model: { type: "string" },
      prompts: { type: "string" },
      out: { type: "string" },
      prm: { type: "string" },
      samples: { type: "string" },
      temperature: { type: "string" },
      "top-p": { type: "string" },
      "max-new-tokens": { type: "string" },
      "truncate-length": { type: "string" },
      "reward-type": { type: "string" },
      "pos-strategy": { type: "string" },
      "neg-strategy": { type: "string" },
      "score-margin": { type: "string" },
      "max-pairs": { type: "string" },
      seed: { type: "string" },
      "prompt-template": { type: "string" },
      "step-token": { type: "string" },
      "batch-size": { type: "string" },
      restart: { type: "boolean" },
      device: { type: "string" },
      json: { type: "boolean" },
      ...ENDPOINT_OPTIONS,
    },
  });
  if (positionals.length) throw new UsageError(`data build: unexpected argument '${positionals[0]}'`);
  if (values.task !== undefined && values.task !== "math")
    throw new UsageError("data build: --prm belongs to --task math");
  if (!values.model || !values.prompts || !values.out) {
    throw new UsageError("data build --task math: --model DIR, --prompts FILE and --out FILE are required");
  }
  refuseOverwritingInputs(values);
  const oneOf = <T extends string>(v: string | undefined, name: string, allowed: readonly T[], fallback: T): T => {
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v))
      throw new UsageError(`${name} must be ${allowed.join(", ")}, got '${v}'`);
    return v as T;
  };
  const samples = positiveInt(values.samples, "--samples", 8);
  if (samples < 2) throw new UsageError("--samples must be at least 2 to make a pair");
  const template = values["prompt-template"];
  if (template !== undefined && !template.includes("{input}"))
    throw new UsageError("--prompt-template must contain {input}");
  const build = {
    samples,
    temperature: nonNegative(values.temperature, "--temperature", 1.0),
    topP: nonNegative(values["top-p"], "--top-p", 0.8),
    maxNewTokens: positiveInt(values["max-new-tokens"], "--max-new-tokens", 4096),
    truncateLength: positiveInt(values["truncate-length"], "--truncate-length", 4000, true),
    promptTemplate: template,
    stepToken: values["step-token"],
    batchSize: positiveInt(values["batch-size"], "--batch-size", 4),
    seed: positiveInt(values.seed, "--seed", 42, true),
  };
  const pairing = {
    rewardType: oneOf(values["reward-type"], "--reward-type", ["min", "avg"] as const, "min"),
    posStrategy: oneOf(values["pos-strategy"], "--pos-strategy", ["max", "rand"] as const, "max"),
    negStrategy: oneOf(
      values["neg-strategy"],
      "--neg-strategy",
      ["min", "rand", "positive"] as const,
      values.prm ? "positive" : "min",
    ),
    scoreMargin: nonNegative(values["score-margin"], "--score-margin", 0),
    maxPairs: positiveInt(values["max-pairs"], "--max-pairs", 10000),
    seed: build.seed,
  };
  // the PRM runs here even when the policy samples on an endpoint
  const device = await resolveDevice(values.device);
  const { resolve } = await import("node:path");
  const { rmSync } = await import("node:fs");
  const { readMathProblems, labelMathProblems, binarizeUniDpo, normalizeScoreMargins } =
    await import("../../eval/math/preference-pairs.js");
  const { DataError } = await import("../../data/records.js");
  const { writeJsonAtomic, writeJsonLinesAtomic } = await import("../../util/files.js");
  const { loadProcessRewardModel } = await import("../../models/process-reward.js");
  const { Tokenizer } = await import("../../text/index.js");
  const { Progress } = await import("../../util/progress.js");
  let problems;
  try {
    problems = readMathProblems(values.prompts);
  } catch (e) {
    if (!(e instanceof DataError) || values.prm) throw e;
    throw new DataError(
      [
        ...e.problems,
        "data build grades responses against each problem's 'answer' unless a scorer is named: " +
          "give --scorer NAME|MODULE, --reward-model DIR or --judge-endpoint URL for prompts without answers",
      ],
      e.total + 1,
    );
  }
  const prmTokenizer = values.prm ? Tokenizer.fromPretrainedSync(values.prm) : null;
  // the PRM is loaded before the policy samples anything: a bad directory fails fast
  const prm = values.prm ? loadProcessRewardModel(values.prm, { device }) : null;
  const sampler = await samplerFromFlags(values, "data build", device);
  const tokenizer = sampler.tokenizer!;
  const journal = `${values.out}.progress.jsonl`;
  if (values.restart) rmSync(journal, { force: true });
  try {
    let bar: InstanceType<typeof Progress> | undefined;
    const { labelled, summary } = await labelMathProblems(sampler.generator, tokenizer, prm, prmTokenizer, problems, {
      ...build,
      journal,
      identity: { policy: sampler.identity, prm: values.prm ? resolve(values.prm) : null },
      onProgress: (done, total) => {
        (bar ??= new Progress(prm ? "sampling, grading, PRM" : "sampling, grading", total, !values.json)).update(done);
      },
    });
    bar?.finish();
    const pairs = binarizeUniDpo(labelled, pairing);
    normalizeScoreMargins(pairs);
    const pairsSummary = {
      ...summary,
      pairs: pairs.length,
      problems_without_pair: summary.labelled - new Set(pairs.map((p) => p.prompt)).size,
    };
    writeJsonLinesAtomic(values.out, pairs);
    const summaryFile = `${values.out}.summary.json`;
    writeJsonAtomic(summaryFile, pairsSummary);
    rmSync(journal, { force: true });
    console.log(
      values.json
        ? JSON.stringify({ out: values.out, summary: summaryFile, ...pairsSummary })
        : `${pairs.length} pairs from ${summary.problems} problems (dropped: ${JSON.stringify(summary.dropped)}) -> ${values.out}`,
    );
  } finally {
    sampler.generator.dispose?.();
    prm?.dispose();
  }
  return 0;
}
