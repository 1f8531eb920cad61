// `omni-dpo eval --task winrate`: the model's answers against a baseline's, judged by a reward
// model or an LLM judge behind an endpoint (src/eval/winrate/).
import { parseArgs } from "node:util";
import { existsSync, rmSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { UsageError, nonNegative, positiveInt, probability, resolveDevice } from "../args.js";
import { ENDPOINT_HELP, ENDPOINT_OPTIONS, endpointFromFlags } from "../endpoint-flags.js";
import type { Generator } from "../../generation/types.js";
import type { WinRateJournal } from "../../eval/winrate/journal.js";
import type { WinRateJudge } from "../../eval/winrate/judges.js";

export const WINRATE_HELP = `
--task winrate: the model's answers against a baseline's on the same prompts, judged pairwise:
  omni-dpo eval --task winrate --model DIR --baseline DIR|FILE --prompts FILE
                (--reward-model DIR | --judge-endpoint URL --judge-model NAME) [options]
  --model DIR              the model (or --endpoint URL --endpoint-model NAME: answers from a server)
  --baseline DIR|FILE      the baseline: a model directory, or JSON Lines of reference outputs, one
                           per prompt in order, with "output" (AlpacaEval's format); or
                           --baseline-endpoint URL --baseline-endpoint-model NAME
  --prompts FILE           one prompt per line, or JSONL with "prompt" (text or messages) or "messages";
                           plain prompts go through each model's chat template when it has one
  --reward-model DIR       judge by reward (the reward model's own chat template): higher wins, equal ties
  --judge-endpoint URL     judge with an LLM (OpenAI-compatible), Arena-Hard style: each pair judged in
  --judge-model NAME       both orders, verdicts [[A>>B]] [[A>B]] [[A=B]] [[B>A]] [[B>>A]] parsed strictly;
                           unparseable verdicts are counted, never fatal
  --judge-template FILE    the judge prompt, with {{prompt}}, {{answer_a}}, {{answer_b}} (default
                           assets/judge/pairwise.txt); in score mode the 1-10 rubric
  --judge-max-tokens N     (default 1024; 256 in score mode)   --judge-retries N  (score mode, default 2)
  --mode pairwise|score    score: MT-Bench's single-answer grading, each answer scored alone (1-10 by
                           the LLM judge, the reward by a reward model), with means and intervals
  --max-new-tokens N       (default 512)   --temperature T (default 0: greedy)   --top-p P (default 1)
  --seed S                 sampling seed and the bootstrap's (default 0)   --bootstrap N (default 1000)
  --batch-size N           prompts per generation and judging batch (default 16)
  --out FILE               every prompt with both answers, scores or verdicts and the winner (JSONL);
                           the run is journaled in FILE.journal, so an interrupted run continues
  --json                   print { win_rate, ci95, lc_win_rate, ties, n, mean_length, ... }
  --device D               auto (default), cpu, cuda or cuda:N
${ENDPOINT_HELP.replace("Generating through", "The model's answers through")}  The --endpoint-* flags (key, concurrency,
  timeout, retries) apply to --baseline-endpoint and --judge-endpoint too.
`;

const OPTIONS = {
  task: { type: "string" },
  model: { type: "string" },
  baseline: { type: "string" },
  "baseline-endpoint": { type: "string" },
  "baseline-endpoint-model": { type: "string" },
  prompts: { type: "string" },
  "reward-model": { type: "string" },
  "judge-endpoint": { type: "string" },
  "judge-model": { type: "string" },
  "judge-template": { type: "string" },
  "judge-max-tokens": { type: "string" },
  "judge-retries": { type: "string" },
  mode: { type: "string" },
  "max-new-tokens": { type: "string" },
  temperature: { type: "string" },
  "top-p": { type: "string" },
  seed: { type: "string" },
  bootstrap: { type: "string" },
  "batch-size": { type: "string" },
  out: { type: "string" },
  json: { type: "boolean" },
  device: { type: "string" },
  ...ENDPOINT_OPTIONS,
} as const;

type Values = Record<string, string | boolean | string[] | undefined>;

/** Checks the flags before anything is loaded: each side and the judge named once. */
function checkFlags(values: Values): void {
  const given = (k: string) => values[k] !== undefined;
  if (given("model") === given("endpoint")) {
    throw new UsageError("eval --task winrate: give the model as --model DIR or --endpoint URL (one of them)");
  }
  if (given("baseline") === given("baseline-endpoint")) {
    throw new UsageError(
      "eval --task winrate: give the baseline as --baseline DIR|FILE or --baseline-endpoint URL (one of them)",
    );
  }
  if (given("baseline-endpoint") && !given("baseline-endpoint-model")) {
    throw new UsageError("eval --task winrate: --baseline-endpoint needs --baseline-endpoint-model NAME");
  }
  if (!given("prompts")) throw new UsageError("eval --task winrate: --prompts FILE is required");
  if (given("reward-model") === given("judge-endpoint")) {
    throw new UsageError("eval --task winrate: give one judge: --reward-model DIR or --judge-endpoint URL");
  }
  if (given("judge-endpoint") && !given("judge-model")) {
    throw new UsageError("eval --task winrate: --judge-endpoint needs --judge-model NAME");
  }
  for (const k of ["judge-model", "judge-template", "judge-max-tokens", "judge-retries"]) {
    if (given(k) && !given("judge-endpoint"))
      throw new UsageError(`eval --task winrate: --${k} needs --judge-endpoint URL`);
  }
  const mode = values.mode ?? "pairwise";
  if (mode !== "pairwise" && mode !== "score") {
    throw new UsageError(`eval --task winrate: --mode must be pairwise or score, got '${String(mode)}'`);
  }
}

export async function runWinRate(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  if (positionals.length) throw new UsageError(`eval: unexpected argument '${positionals[0]}'`);
  checkFlags(values);
  const str = (k: keyof typeof values) => values[k] as string | undefined;
  const mode = (str("mode") ?? "pairwise") as "pairwise" | "score";
  const temperature = nonNegative(str("temperature"), "--temperature", 0);
  const generation = {
    maxNewTokens: positiveInt(str("max-new-tokens"), "--max-new-tokens", 512),
    temperature,
    topP: probability(str("top-p"), "--top-p", 1),
    seed: positiveInt(str("seed"), "--seed", 0, true),
    batchSize: positiveInt(str("batch-size"), "--batch-size", 16),
  };
  const resamples = positiveInt(str("bootstrap"), "--bootstrap", 1000);
  const out = str("out");
  if (out !== undefined && existsSync(out) && !existsSync(`${out}.journal`)) {
    throw new UsageError(`--out ${out}: the file exists (and no journal of an interrupted run); choose a new name`);
  }
  const device = await resolveDevice(str("device"));
  const { readPromptRows } = await import("../../data/readers.js");
  const prompts = readPromptRows(str("prompts")!);
  const baselineKind = str("baseline") === undefined ? null : statSafe(str("baseline")!);
  if (str("baseline") !== undefined && baselineKind === null) {
    throw new UsageError(`--baseline ${str("baseline")}: no such file or directory`);
  }
  const baselineIsFile = baselineKind === "file";

  // Each side as a generator (loaded only when its answers are needed, freed right after).
  const side = async (dirFlag: "model" | "baseline", url: string | undefined, model: string | undefined) => {
    if (url !== undefined) {
      const generator = await endpointFromFlags({ ...values, endpoint: url, "endpoint-model": model }, "eval");
      return { name: generator!.name, chat: true, open: async () => generator as Generator };
    }
    const dir = str(dirFlag)!;
    const { tokenizerDirectory } = await import("../../models/peft.js");
    const { Tokenizer } = await import("../../text/index.js");
    const tokenizer = Tokenizer.fromPretrainedSync(tokenizerDirectory(dir));
    return {
      name: resolve(dir),
      chat: tokenizer.chatTemplate !== undefined,
      open: async () => {
        const { loadModel } = await import("../../models/auto.js");
        const { LocalGenerator } = await import("../../generation/local.js");
        return new LocalGenerator(loadModel(dir, { device }), tokenizer, dir) as Generator;
      },
    };
  };
  const policy = await side("model", str("endpoint"), str("endpoint-model"));
  const baseline = baselineIsFile
    ? null
    : await side("baseline", str("baseline-endpoint"), str("baseline-endpoint-model"));
  const { readBaselineAnswers, generateAnswers } = await import("../../eval/winrate/answers.js");
  const baselineFile = baselineIsFile ? readBaselineAnswers(str("baseline")!, prompts) : null;

  const judgeName = str("reward-model")
    ? `reward model ${resolve(str("reward-model")!)}`
    : `judge ${str("judge-endpoint")} ${str("judge-model")} ${str("judge-template") ?? "default"}`;
  let journal: WinRateJournal | undefined;
  if (out !== undefined) {
    const { WinRateJournal, identityHash } = await import("../../eval/winrate/journal.js");
    const identity = identityHash({
      prompts: prompts.map((p) => p.prompt),
      model: policy.name,
      baseline: baseline?.name ?? baselineFile,
      judge: judgeName,
      mode,
      generation,
    });
    journal = WinRateJournal.open(`${out}.journal`, identity);
  }

  // The judge is checked before any answer is generated (a wrong directory or template fails
  // first); a reward model is loaded only after the answering models are freed.
  const judges = await import("../../eval/winrate/judges.js");
  let openJudge: () => Promise<WinRateJudge>;
  if (str("reward-model")) {
    const dir = str("reward-model")!;
    const { isClassifierDirectory, loadSequenceClassifier } = await import("../../models/sequence-classification.js");
    if (!isClassifierDirectory(dir)) {
      throw new UsageError(
        `--reward-model ${dir}: config.json names no *ForSequenceClassification architecture (not a reward model)`,
      );
    }
    const { Tokenizer } = await import("../../text/index.js");
    const tokenizer = Tokenizer.fromPretrainedSync(dir);
    openJudge = async () => {
      const model = loadSequenceClassifier(dir, { device });
      try {
        // The same object (its truncation count keeps counting), freeing the model it was given.
        const judge = judges.rewardModelJudge(model, tokenizer, { dir, batchSize: generation.batchSize });
        return Object.assign(judge, { dispose: () => model.dispose() });
      } catch (e) {
        model.dispose();
        throw e;
      }
    };
  } else {
    const flags = { ...values, endpoint: str("judge-endpoint"), "endpoint-model": str("judge-model") };
    const generator = await endpointFromFlags(flags, "eval");
    const maxTokens = str("judge-max-tokens");
    const judge = judges.llmPairwiseJudge(generator!, {
      ...(mode === "score" ? { scoreTemplateFile: str("judge-template") } : { templateFile: str("judge-template") }),
      maxTokens: maxTokens === undefined ? undefined : positiveInt(maxTokens, "--judge-max-tokens", 1),
      retries: positiveInt(str("judge-retries"), "--judge-retries", 2, true),
    });
    openJudge = async () => judge;
  }

  const { Progress } = await import("../../util/progress.js");
  const answersOf = async (who: NonNullable<typeof baseline>, label: string) => {
    let bar = null as InstanceType<typeof Progress> | null;
    try {
      return await generateAnswers(who.open, prompts, {
        ...generation,
        chat: who.chat,
        side: label,
        journal,
        onProgress: (d, total) => (bar ??= new Progress(`${label} answers`, total, !values.json)).update(d),
      });
    } finally {
      bar?.finish();
    }
  };
  const answers = await answersOf(policy, "model");
  const baselineAnswers = baselineFile ?? (await answersOf(baseline!, "baseline"));

  const judge = await openJudge();

  const { evaluateWinRate, formatWinRate, winRateSummary } = await import("../../eval/winrate/evaluate.js");
  let bar = null as InstanceType<typeof Progress> | null;
  let report;
  try {
    report = await evaluateWinRate({
      prompts,
      answers,
      baselineAnswers,
      judge,
      mode,
      seed: generation.seed,
      resamples,
      batchSize: generation.batchSize,
      journal,
      onProgress: (d, total) => (bar ??= new Progress("judging", total, !values.json)).update(d),
    });
  } finally {
    bar?.finish();
    judge.dispose?.();
  }
  if (out !== undefined) {
    const { writeJsonLinesAtomic } = await import("../../util/files.js");
    writeJsonLinesAtomic(out, report.records);
    rmSync(`${out}.journal`, { force: true });
  }
  console.log(values.json ? JSON.stringify(winRateSummary(report)) : formatWinRate(report));
  return 0;
}

function statSafe(path: string): "file" | "dir" | null {
  try {
    return statSync(path).isDirectory() ? "dir" : "file";
  } catch {
    return null;
  }
}
