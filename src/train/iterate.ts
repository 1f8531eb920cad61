// `omni-dpo iterate`: the paper's cycle, round after round (iterative on-policy DPO). Round k
// samples responses to fresh prompts from round k-1's final model (the starting model in round
// 1), scores them (a reward model, a scorer, or the math grader against each prompt's answer),
// pairs each prompt's best and worst response, trains on those pairs from that model (its
// reference: round k-1's policy, or the starting model), and evaluates the result. Each round
// lives in output_dir/round-K/: pairs.jsonl with its build summary (which records the sampling
// model), train/ (the training run), eval.json, and round.json once the round is done.
//
// Every stage resumes as it does alone (the build's journal, training's checkpoints, the
// evaluation's journal) and a finished round is never redone, so after a kill -9 anywhere the
// same command continues where it stopped. output_dir/iterate.json holds one row per round.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { buildTextPairs, moduleScorer, preparePrompts, writeTextBuild, type BatchScorer } from "../data/text-build.js";
import { loadScorer, registeredScorers } from "../data/build.js";
import { readPromptRows, type PromptRow } from "../data/readers.js";
import { DataError } from "../data/records.js";
import { rewardModelScorer } from "../data/reward.js";
import { datasetOfFile, evaluateMathBenchmark, type BenchmarkResult } from "../eval/math/benchmark.js";
import {
  binarizeUniDpo,
  labelMathProblems,
  normalizeScoreMargins,
  readMathProblems,
  type MathProblem,
} from "../eval/math/preference-pairs.js";
import { winRateSummary } from "../eval/winrate/evaluate.js";
import { EndpointGenerator } from "../generation/endpoint.js";
import { DEFAULT_JUDGE_TEMPLATE, llmJudgeScorer, readJudgeTemplate, type JudgeCounts } from "../eval/llm-judge.js";
import { loadModel } from "../models/auto.js";
import { loadProcessRewardModel } from "../models/process-reward.js";
import { tokenizerDirectory } from "../models/peft.js";
import { Tokenizer } from "../text/index.js";
import * as torch from "../torch/index.js";
import type { Device } from "../torch/index.js";
import { writeJsonAtomic, writeJsonLinesAtomic } from "../util/files.js";
import { readTextFile } from "../util/utf8.js";
import { ConsoleProgressCallback } from "./callbacks/console-progress.js";
import { ConfigError, loadTrainConfig, parseOverride, type TrainConfig } from "./config.js";
import {
  IterationsError,
  readIterations,
  type IterationJudge,
  type Iterations,
  type RoundEval,
} from "./iterate-keys.js";
import { answersOf, rewardJudge, winRate } from "./winrate-eval.js";
import { train } from "./trainer.js";

/** One round, as iterate.json and round-K/round.json hold it. */
export interface RoundRow {
  round: number;
  /** The model round k sampled from (round k-1's final model; the starting model in round 1). */
  sampling_model: string;
  /** The training run's reference: null is the sampling model itself (as ref_model: None). */
  reference_model: string | null;
  prompts: number;
  pairs: number;
  train_loss: number | null;
  train_steps: number;
  /** The round's final model (its training run's output_dir). */
  model: string;
  eval: Record<string, unknown> | null;
}

export interface IterateResult {
  outputDir: string;
  rounds: RoundRow[];
  /** Stopped by shouldStop before the last round finished (its work so far kept, to resume). */
  interrupted: boolean;
}

export interface IterateOptions {
  /** `key=value` overrides of the training keys, as train's --set. */
  set?: string[];
  /** No console output. */
  quiet?: boolean;
  /** Each finished round's row (the CLI prints it). */
  onRound?: (row: RoundRow) => void;
  onStatus?: (message: string) => void;
  /** Asked between training steps: true stops training with a checkpoint, then iterate returns. */
  shouldStop?: () => boolean;
}

export const ITERATE_FILE = "iterate.json";

/** Keys that name training data: iterate trains each round on the pairs it builds. */
const DATA_KEYS = ["dataset_mixer", "dataset_name", "train_data_path"];

interface Plan {
  where: string;
  recipe: string | Record<string, unknown>;
  iterations: Iterations;
  config: TrainConfig;
  overrides: [string, unknown][];
  rows: PromptRow[];
  /** The graded math task's problems (task: math, no scorer): built as data build --task math builds. */
  problems: MathProblem[] | null;
  scorer: string | null;
}

/** Reads and checks everything (the recipe, the block, the prompts, the scorer) before any work. */
function plan(recipe: string | Record<string, unknown>, set: string[]): Plan {
  let raw: Record<string, unknown>;
  let where = "recipe";
  let baseDir = process.cwd();
  if (typeof recipe === "string") {
    where = recipe;
    if (!existsSync(recipe)) throw new ConfigError(`${recipe}: file not found`);
    let parsed: unknown;
    try {
      parsed = parseYaml(readTextFile(recipe, (m) => new ConfigError(m)));
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      throw new ConfigError(`${recipe}: not valid YAML (${(e as Error).message.split("\n")[0]})`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      throw new ConfigError(`${recipe}: expected a mapping of keys to values`);
    raw = parsed as Record<string, unknown>;
    baseDir = dirname(resolve(recipe));
  } else raw = recipe;
  const iterations = readIterations(raw.iterations, where, baseDir);
  for (const key of DATA_KEYS)
    if (raw[key] !== undefined && raw[key] !== null)
      throw new ConfigError(
        `${where}: key '${key}': omni-dpo iterate trains each round on the pairs it builds; remove it`,
      );
  const overrides: [string, unknown][] = [...set.map(parseOverride), ["iterations", null]];
  // The training keys, checked now (the prompts file stands in for the rounds' pairs, not read).
  const { config } = loadTrainConfig(recipe, [...overrides, ["train_data_path", iterations.prompts]]);
  if (iterations.rewardModel !== null && !existsSync(join(iterations.rewardModel, "config.json")))
    throw new IterationsError(
      `${where}: key 'iterations.reward_model': ${iterations.rewardModel} is not a model directory (no config.json)`,
    );
  let scorer = iterations.scorer;
  if (scorer !== null && !registeredScorers().includes(scorer)) {
    scorer = isAbsolute(scorer) ? scorer : resolve(baseDir, scorer);
    if (!existsSync(scorer))
      throw new IterationsError(
        `${where}: key 'iterations.scorer': '${iterations.scorer}' is neither a named scorer ` +
          `(${registeredScorers().join(", ") || "none registered"}) nor a file (${scorer})`,
      );
  }
  if (iterations.judge) {
    try {
      readJudgeTemplate(iterations.judge.templateFile ?? DEFAULT_JUDGE_TEMPLATE);
    } catch (e) {
      throw new IterationsError(`${where}: key 'iterations.judge_template': ${(e as Error).message}`);
    }
  }
  if (iterations.prm !== null && !existsSync(join(iterations.prm, "config.json")))
    throw new IterationsError(
      `${where}: key 'iterations.prm': ${iterations.prm} is not a model directory (no config.json)`,
    );
  const graded = iterations.task === "math" && scorer === null;
  const problems = graded ? readMathProblems(iterations.prompts) : null;
  const rows = graded ? [] : readPromptRows(iterations.prompts);
  return { where, recipe, iterations, config, overrides, rows, problems, scorer };
}

/** The LLM judge the judge_* keys describe: a scorer asking the endpoint for each response's rating. */
function judgeScorer(judge: IterationJudge): BatchScorer & { counts: JudgeCounts } {
  const generator = new EndpointGenerator({
    baseURL: judge.endpoint,
    model: judge.model,
    apiKey: process.env[judge.keyEnv ?? "OPENAI_API_KEY"],
    concurrency: judge.concurrency,
    timeoutMs: 1000 * judge.timeoutSeconds,
    maxRetries: judge.requestRetries,
  });
  return llmJudgeScorer(generator, {
    templateFile: judge.templateFile ?? undefined,
    retries: judge.retries,
    maxTokens: judge.maxTokens,
  });
}

/** Round k's prompts: prompts_per_round of them (each once) from where round k-1 stopped, wrapping around. */
function roundPrompts<T>(rows: T[], perRound: number | null, k: number): T[] {
  if (perRound === null || perRound >= rows.length) return rows;
  return Array.from({ length: perRound }, (_, j) => rows[((k - 1) * perRound + j) % rows.length]);
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, "utf8")) as T;

/**
 * Runs the recipe's rounds (a YAML path, or its keys as an object with `iterations`), each
 * resuming what an earlier, interrupted run left. Returns every round's row.
 */
export async function iterate(
  recipe: string | Record<string, unknown>,
  options: IterateOptions = {},
): Promise<IterateResult> {
  const p = plan(recipe, options.set ?? []);
  const { iterations, config } = p;
  const status = options.onStatus ?? (options.quiet ? () => {} : (m: string) => console.error(m));
  const device: Device =
    config.device === "auto" ? (torch.cuda.isAvailable() ? "cuda" : "cpu") : (config.device as Device);
  const outputDir = config.outputDir;
  mkdirSync(outputDir, { recursive: true });
  const rows: RoundRow[] = [];
  for (let k = 1; k <= iterations.rounds; k++) {
    const dir = join(outputDir, `round-${k}`);
    const done = join(dir, "round.json");
    if (existsSync(done)) {
      rows.push(readJson<RoundRow>(done));
      continue;
    }
    mkdirSync(dir, { recursive: true });
    const samplingModel = k === 1 ? config.modelNameOrPath : rows[k - 2].model;
    const reference =
      k === 1 || iterations.reference === "initial"
        ? (config.refModel ?? (k === 1 ? null : config.modelNameOrPath))
        : null;
    const prompts = p.problems
      ? roundPrompts(p.problems, iterations.promptsPerRound, k)
      : roundPrompts(p.rows, iterations.promptsPerRound, k);
    const pairs = p.problems
      ? await buildMathRound(p, k, dir, samplingModel, prompts as MathProblem[], device, status)
      : await buildRound(p, k, dir, samplingModel, prompts as PromptRow[], device, status);
    if (pairs === 0)
      throw new DataError([
        `round ${k}: the build made no pairs from ${prompts.length} prompts (see ${join(dir, "pairs.jsonl.summary.json")})`,
      ]);
    const trainDir = join(dir, "train");
    const { config: roundConfig } = loadTrainConfig(p.recipe, [
      ...p.overrides,
      ["model_name_or_path", samplingModel],
      ["ref_model", reference],
      ["output_dir", trainDir],
      ["train_data_path", join(dir, "pairs.jsonl")],
    ]);
    status(`round ${k}: training on ${pairs} pairs from ${samplingModel} -> ${trainDir}`);
    const result = await train(roundConfig, {
      onStatus: status,
      shouldStop: options.shouldStop,
      callbacks: options.quiet ? [] : [new ConsoleProgressCallback(true)],
    });
    if (result.interrupted) return { outputDir, rounds: rows, interrupted: true };
    const trainResults = join(trainDir, "train_results.json");
    const trainLoss = existsSync(trainResults)
      ? (readJson<{ train_loss?: number }>(trainResults).train_loss ?? null)
      : null;
    const evaluation = iterations.eval
      ? await evaluateRound(iterations.eval, dir, trainDir, config.modelNameOrPath, outputDir, device, status)
      : null;
    const row: RoundRow = {
      round: k,
      sampling_model: samplingModel,
      reference_model: reference,
      prompts: prompts.length,
      pairs,
      train_loss: trainLoss,
      train_steps: result.globalStep,
      model: trainDir,
      eval: evaluation,
    };
    writeJsonAtomic(done, row);
    rows.push(row);
    writeJsonAtomic(join(outputDir, ITERATE_FILE), { rounds: rows });
    options.onRound?.(row);
  }
  writeJsonAtomic(join(outputDir, ITERATE_FILE), { rounds: rows });
  return { outputDir, rounds: rows, interrupted: false };
}

/** Round k's pairs (round-K/pairs.jsonl, its summary recording the sampling model), built or read back; their count. */
async function buildRound(
  p: Plan,
  k: number,
  dir: string,
  samplingModel: string,
  prompts: PromptRow[],
  device: Device,
  status: (m: string) => void,
): Promise<number> {
  const out = join(dir, "pairs.jsonl");
  const summaryFile = `${out}.summary.json`;
  if (existsSync(summaryFile)) return readJson<{ pairs: number }>(summaryFile).pairs;
  const { iterations } = p;
  const judge = iterations.judge ? judgeScorer(iterations.judge) : null;
  const scorer: BatchScorer = p.scorer
    ? moduleScorer(await loadScorer(p.scorer, { seed: k }), p.scorer)
    : iterations.rewardModel
      ? rewardModelScorer(iterations.rewardModel, { device })
      : judge!;
  const tokenizer = Tokenizer.fromPretrainedSync(tokenizerDirectory(samplingModel));
  const policy = loadModel(samplingModel, { device });
  try {
    status(`round ${k}: sampling ${iterations.samples} responses to ${prompts.length} prompts from ${samplingModel}`);
    const prepared = preparePrompts(prompts, policy, tokenizer, "auto", samplingModel);
    const journal = `${out}.progress.jsonl`;
    const { pairs, summary } = await buildTextPairs(policy, tokenizer, prepared, scorer, {
      samples: iterations.samples,
      seeds: iterations.seeds ?? undefined,
      temperature: iterations.temperature,
      topP: iterations.topP,
      maxNewTokens: iterations.maxNewTokens,
      batchSize: iterations.batchSize,
      journal,
      identity: { policy: resolve(samplingModel), round: k },
      onNotice: status,
    });
    // The summary records where the samples came from: this round, its sampling model, its scorer.
    const recorded = {
      ...summary,
      round: k,
      sampling_model: resolve(samplingModel),
      scorer: scorer.name,
      ...(judge ? { judge: { ...judge.counts } } : {}),
    };
    if (judge) {
      const c = judge.counts;
      status(
        `round ${k}: judge: ${c.asked} verdicts asked, ${c.unparseable} unparseable` +
          `${c.refused ? `, ${c.refused} refused (HTTP 400)` : ""}, ${c.dropped} left unscored`,
      );
    }
    writeTextBuild(out, journal, pairs, recorded);
    return pairs.length;
  } finally {
    policy.dispose();
    scorer.dispose?.();
  }
}

/**
 * The graded math task's round: data build --task math's pipeline (sample, grade against the
 * answer, optionally score each step with the PRM, pair by the reference's rules), journaled.
 */
async function buildMathRound(
  p: Plan,
  k: number,
  dir: string,
  samplingModel: string,
  problems: MathProblem[],
  device: Device,
  status: (m: string) => void,
): Promise<number> {
  const out = join(dir, "pairs.jsonl");
  const summaryFile = `${out}.summary.json`;
  if (existsSync(summaryFile)) return readJson<{ pairs: number }>(summaryFile).pairs;
  const { iterations: it } = p;
  const prmTokenizer = it.prm ? Tokenizer.fromPretrainedSync(it.prm) : null;
  const prm = it.prm ? loadProcessRewardModel(it.prm, { device }) : null;
  const tokenizer = Tokenizer.fromPretrainedSync(tokenizerDirectory(samplingModel));
  const policy = loadModel(samplingModel, { device });
  const journal = `${out}.progress.jsonl`;
  try {
    status(`round ${k}: sampling ${it.samples} answers to ${problems.length} problems from ${samplingModel}`);
    const { labelled, summary } = await labelMathProblems(policy, tokenizer, prm, prmTokenizer, problems, {
      samples: it.samples,
      temperature: it.temperature,
      topP: it.topP,
      maxNewTokens: it.maxNewTokens,
      promptTemplate: it.promptTemplate ?? undefined,
      stepToken: it.stepToken ?? undefined,
      batchSize: it.batchSize,
      journal,
      identity: { policy: resolve(samplingModel), prm: it.prm ? resolve(it.prm) : null, round: k },
    });
    // data build --task math's pairing: with a PRM the rejected answer may be a weaker right one.
    const pairs = binarizeUniDpo(labelled, {
      rewardType: it.rewardType,
      negStrategy: it.prm ? "positive" : "min",
      scoreMargin: it.scoreMargin,
    });
    normalizeScoreMargins(pairs);
    writeJsonLinesAtomic(out, pairs);
    writeJsonAtomic(summaryFile, {
      ...summary,
      pairs: pairs.length,
      problems_without_pair: summary.labelled - new Set(pairs.map((q) => q.prompt)).size,
      round: k,
      sampling_model: resolve(samplingModel),
      scorer: it.prm ? `math grader + PRM ${resolve(it.prm)} (${it.rewardType})` : "math grader",
    });
    rmSync(journal, { force: true });
    return pairs.length;
  } finally {
    policy.dispose();
    prm?.dispose();
  }
}

/** The round's evaluation (round-K/eval.json), run or read back; an interrupted one continues from its journal. */
async function evaluateRound(
  spec: RoundEval,
  dir: string,
  modelDir: string,
  startModel: string,
  outputDir: string,
  device: Device,
  status: (m: string) => void,
): Promise<Record<string, unknown>> {
  const file = join(dir, "eval.json");
  if (existsSync(file)) return readJson<Record<string, unknown>>(file);
  status(`evaluating ${modelDir} (${spec.task})`);
  const row =
    spec.task === "math"
      ? { task: spec.task, ...(await mathRound(spec, dir, modelDir, device)) }
      : { task: spec.task, ...(await winRateRound(spec, modelDir, startModel, outputDir, device)) };
  writeJsonAtomic(file, row);
  return row;
}

async function mathRound(
  spec: Extract<RoundEval, { task: "math" }>,
  dir: string,
  modelDir: string,
  device: Device,
): Promise<BenchmarkResult> {
  const tokenizer = Tokenizer.fromPretrainedSync(tokenizerDirectory(modelDir));
  const model = loadModel(modelDir, { device });
  try {
    const { result } = await evaluateMathBenchmark(model, tokenizer, spec.data, {
      dataset: datasetOfFile(spec.data) ?? "math",
      maxNewTokens: spec.maxNewTokens,
      promptTemplate: spec.promptTemplate ?? undefined,
      out: join(dir, "eval.jsonl"),
      identity: { model: resolve(modelDir) },
    });
    return result;
  } finally {
    model.dispose();
  }
}

/** The starting model's answers to the win-rate prompts: generated once, kept in output_dir for every round. */
async function baselineAnswers(
  spec: Extract<RoundEval, { task: "winrate" }>,
  prompts: PromptRow[],
  startModel: string,
  outputDir: string,
  device: Device,
): Promise<string[]> {
  const file = join(outputDir, "winrate-baseline.json");
  if (existsSync(file)) return readJson<{ answers: string[] }>(file).answers;
  const answers = await modelAnswers(startModel, prompts, spec.maxNewTokens, device);
  writeJsonAtomic(file, { model: startModel, prompts: spec.prompts, answers });
  return answers;
}

async function modelAnswers(dir: string, prompts: PromptRow[], maxNewTokens: number, device: Device) {
  const model = loadModel(dir, { device });
  try {
    const tokenizer = Tokenizer.fromPretrainedSync(tokenizerDirectory(dir));
    return await answersOf(model, tokenizer, dir, prompts, { maxNewTokens, batchSize: 16 });
  } finally {
    model.dispose();
  }
}

async function winRateRound(
  spec: Extract<RoundEval, { task: "winrate" }>,
  modelDir: string,
  startModel: string,
  outputDir: string,
  device: Device,
): Promise<Record<string, unknown>> {
  const prompts = readPromptRows(spec.prompts);
  const baseline = await baselineAnswers(spec, prompts, startModel, outputDir, device);
  const answers = await modelAnswers(modelDir, prompts, spec.maxNewTokens, device);
  const judge = rewardJudge(spec.rewardModel, device, 16);
  try {
    return winRateSummary(await winRate(prompts, answers, baseline, judge, 16));
  } finally {
    judge.dispose?.();
  }
}
