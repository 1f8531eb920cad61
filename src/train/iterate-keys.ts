// The keys of a recipe's `iterations` block (`omni-dpo iterate`), in one table as the recipe keys
// are (keys.ts): kind, default, help. The block is read against it before any work starts: an
// unknown key, a wrong type, a missing file or `rounds: 0` is an error naming the recipe and the
// key. This module does not load LibTorch (the CLI prints help from it).
import { existsSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { nearestKey } from "../util/nearest.js";

type IterationKind = "path" | "string" | "enum" | "integer" | "number" | "list" | "mapping";

interface IterationKeySpec {
  kind: IterationKind;
  values?: readonly string[];
  /** Absent: required. */
  default?: unknown;
  help: string;
  /** The least value of a number. */
  min?: number;
}

export const ITERATION_TASKS = ["text", "math"] as const;
export const ITERATION_REFERENCES = ["previous", "initial"] as const;
/** The evaluations a round can run: math (graded answers) or winrate (a reward model's verdicts vs the starting model). */
export const ITERATION_EVAL_TASKS = ["math", "winrate"] as const;

export const ITERATION_KEYS = {
  rounds: { kind: "integer", min: 1, help: "How many rounds (sample, score, pair, train, evaluate) to run." },
  prompts: {
    kind: "path",
    help:
      "JSON Lines of prompts: 'prompt' (a string or messages); the graded math task reads 'problem' (or 'prompt') " +
      "and 'answer' (the gold answer).",
  },
  prompts_per_round: {
    kind: "integer",
    min: 1,
    default: null,
    help: "Fresh prompts each round, taken in file order and wrapping around at the end; None: every prompt, every round.",
  },
  task: {
    kind: "enum",
    values: ITERATION_TASKS,
    default: "text",
    help:
      "text: responses scored by reward_model (or judge_endpoint, or a scorer), each prompt pairing its best and " +
      "worst; math: graded against each prompt's 'answer' and paired as data build --task math (optional prm), " +
      "or scored by a scorer.",
  },
  reward_model: {
    kind: "path",
    default: null,
    help: "The text task's reward model (a *ForSequenceClassification directory with one label).",
  },
  judge_endpoint: {
    kind: "string",
    default: null,
    help:
      "The text task's LLM judge: the base URL of an OpenAI-compatible server (e.g. http://localhost:8000/v1) " +
      "asked for each response's 1-10 rating, as data build --judge-endpoint.",
  },
  judge_model: {
    kind: "string",
    default: null,
    help: "The model the judge's server serves (needed with judge_endpoint).",
  },
  judge_template: {
    kind: "path",
    default: null,
    help: "The judge's rubric, with {{prompt}} and {{response}}; None: the shipped 1-10 helpfulness rubric.",
  },
  judge_retries: {
    kind: "integer",
    min: 0,
    default: 2,
    help: "Asks again after an unparseable verdict; a response still unparsed is left unscored and counted.",
  },
  judge_max_tokens: { kind: "integer", min: 1, default: 256, help: "Tokens the judge may write per verdict." },
  judge_concurrency: { kind: "integer", min: 1, default: 8, help: "Judge requests in flight at once." },
  judge_timeout: { kind: "integer", min: 1, default: 600, help: "Seconds one judge request may take." },
  judge_request_retries: {
    kind: "integer",
    min: 0,
    default: 4,
    help: "Retries of a judge request on 408/409/429/5xx and connection errors, with exponential backoff.",
  },
  judge_key_env: {
    kind: "string",
    default: null,
    help: "The environment variable holding the judge's API key (None: OPENAI_API_KEY if set; a local server needs none).",
  },
  scorer: {
    kind: "string",
    default: null,
    help: "A named scorer (arith, in the omni-dpo command) or a JS module exporting score(prompt, response).",
  },
  prm: {
    kind: "path",
    default: null,
    help:
      "The math task's process reward model: each response's step scores (min or avg, reward_type) pick the " +
      "pairs as data build --task math --prm does; None: the verifiable reward (right 10, wrong 0).",
  },
  reward_type: {
    kind: "enum",
    values: ["min", "avg"],
    default: "min",
    help: "With prm: a response's score is its least (min) or mean (avg) step score.",
  },
  step_token: { kind: "string", default: null, help: "With prm: its step separator, one token (default <extra_0>)." },
  score_margin: {
    kind: "number",
    min: 0,
    default: 0,
    help: "The math task's least score difference chosen - rejected on the 0..10 scale (relaxed when too few pairs).",
  },
  prompt_template: {
    kind: "string",
    default: null,
    help:
      "The math task's prompt: text with {input} for the problem; None: the policy's chat template with the " +
      "reference's step-by-step system prompt.",
  },
  samples: { kind: "integer", min: 2, default: 5, help: "Responses sampled per prompt." },
  seeds: { kind: "list", default: null, help: "The samples' seeds (default the reference's 13, 21, 42, 79, 100)." },
  temperature: { kind: "number", min: 0, default: 0.8, help: "Sampling temperature." },
  top_p: { kind: "number", min: 0, default: 0.95, help: "Nucleus sampling's probability mass, in (0, 1]." },
  max_new_tokens: { kind: "integer", min: 1, default: 256, help: "New tokens per response, at most." },
  batch_size: { kind: "integer", min: 1, default: 8, help: "Prompts per generation batch." },
  reference: {
    kind: "enum",
    values: ITERATION_REFERENCES,
    default: "previous",
    help:
      "previous: round k's reference is round k-1's policy (iterative DPO); initial: the starting model " +
      "(or the recipe's ref_model) every round.",
  },
  eval: {
    kind: "mapping",
    default: null,
    help:
      "After each round: {task: math, data: FILE} (the model's greedy answers graded as `eval --task math`; " +
      "also max_new_tokens, prompt_template) or {task: winrate, prompts: FILE, reward_model: DIR} (its answers " +
      "judged against the starting model's, generated once, as `eval --task winrate`). Its figures join the round's row.",
  },
} as const satisfies Record<string, IterationKeySpec>;

export type IterationKey = keyof typeof ITERATION_KEYS;

/** The `eval` block's keys. */
const EVAL_KEYS: Record<string, IterationKeySpec> = {
  task: { kind: "enum", values: ITERATION_EVAL_TASKS, help: "math or winrate" },
  data: { kind: "path", default: null, help: "math: the benchmark file" },
  prompts: { kind: "path", default: null, help: "winrate: the held-out prompts" },
  reward_model: { kind: "path", default: null, help: "winrate: the judge" },
  max_new_tokens: { kind: "integer", min: 1, default: 256, help: "new tokens per answer" },
  prompt_template: { kind: "string", default: null, help: "math: text with {input}, or chat" },
};

/** The text task's LLM judge behind an endpoint (judge_* keys). */
export interface IterationJudge {
  endpoint: string;
  model: string;
  templateFile: string | null;
  retries: number;
  maxTokens: number;
  concurrency: number;
  timeoutSeconds: number;
  requestRetries: number;
  keyEnv: string | null;
}

/**
 * Keys that a user may expect here but that iterate refuses, each with its reason. Sampling through
 * a server cannot work past round 1: round k samples from round k-1's model, which exists only here.
 */
const REFUSED_KEYS: Record<string, string> = {
  endpoint:
    "iterate samples each round from the previous round's model, which exists only in output_dir (no server " +
    "serves it); sampling runs locally. Score through a server with iterations.judge_endpoint instead",
};
for (const key of ["endpoint_model", "endpoint_concurrency", "endpoint_key_env", "endpoint_timeout"])
  REFUSED_KEYS[key] = REFUSED_KEYS.endpoint;

export type RoundEval =
  | { task: "math"; data: string; maxNewTokens: number; promptTemplate: string | null }
  | { task: "winrate"; prompts: string; rewardModel: string; maxNewTokens: number };

export interface Iterations {
  rounds: number;
  prompts: string;
  promptsPerRound: number | null;
  task: (typeof ITERATION_TASKS)[number];
  rewardModel: string | null;
  scorer: string | null;
  judge: IterationJudge | null;
  prm: string | null;
  rewardType: "min" | "avg";
  stepToken: string | null;
  scoreMargin: number;
  promptTemplate: string | null;
  samples: number;
  seeds: number[] | null;
  temperature: number;
  topP: number;
  maxNewTokens: number;
  batchSize: number;
  reference: (typeof ITERATION_REFERENCES)[number];
  eval: RoundEval | null;
}

export class IterationsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "IterationsError";
  }
}

/** Reads values against a table: unknown keys (with the nearest known one), types, bounds, required keys, files. */
function readTable(
  block: unknown,
  table: Record<string, IterationKeySpec>,
  where: string,
  prefix: string,
  baseDir: string,
): Record<string, unknown> {
  if (typeof block !== "object" || block === null || Array.isArray(block))
    throw new IterationsError(`${where}: key '${prefix.slice(0, -1)}' must be a mapping of keys to values`);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(block as Record<string, unknown>)) {
    const spec = table[key];
    const name = `${prefix}${key}`;
    if (!spec) {
      const near = nearestKey(key, Object.keys(table));
      throw new IterationsError(
        `${where}: unknown key '${name}'${near ? ` (did you mean '${prefix}${near}'?)` : ""}; ` +
          `known: ${Object.keys(table).join(", ")}`,
      );
    }
    if (value === null || value === "None") continue;
    const bad = (expected: string) =>
      new IterationsError(`${where}: key '${name}' must be ${expected}, got ${JSON.stringify(value)}`);
    switch (spec.kind) {
      case "path":
      case "string":
        if (typeof value !== "string" || value === "") throw bad("a non-empty string");
        break;
      case "enum":
        if (typeof value !== "string" || !spec.values!.includes(value)) throw bad(`one of ${spec.values!.join(", ")}`);
        break;
      case "integer":
      case "number":
        if (typeof value !== "number" || !Number.isFinite(value)) throw bad("a number");
        if (spec.kind === "integer" && !Number.isInteger(value)) throw bad("a whole number");
        if (spec.min !== undefined && value < spec.min) throw bad(`at least ${spec.min}`);
        break;
      case "list":
        if (!Array.isArray(value)) throw bad("a list");
        break;
      case "mapping":
        if (typeof value !== "object" || Array.isArray(value)) throw bad("a mapping");
        break;
    }
    if (spec.kind === "path") {
      const path = isAbsolute(value as string) ? (value as string) : resolve(baseDir, value as string);
      if (!existsSync(path)) throw new IterationsError(`${where}: key '${name}': ${path}: file not found`);
      out[key] = path;
    } else out[key] = value;
  }
  for (const [key, spec] of Object.entries(table)) {
    if (out[key] !== undefined) continue;
    if (!("default" in spec)) throw new IterationsError(`${where}: missing required key '${prefix}${key}'`);
    out[key] = spec.default;
  }
  return out;
}

/**
 * The `iterations` block of the recipe at `where` (paths resolved against `baseDir`), checked
 * whole: what the task needs (text: reward_model or scorer; math: a scorer, or answers), sampling
 * bounds, the eval block.
 */
export function readIterations(block: unknown, where: string, baseDir: string): Iterations {
  if (block === undefined || block === null)
    throw new IterationsError(`${where}: missing required key 'iterations' (the rounds to run; see iterate --help)`);
  if (typeof block === "object" && block !== null)
    for (const key of Object.keys(block))
      if (REFUSED_KEYS[key]) throw new IterationsError(`${where}: key 'iterations.${key}': ${REFUSED_KEYS[key]}`);
  const v = readTable(block, ITERATION_KEYS, where, "iterations.", baseDir);
  const judge = readJudge(v, where);
  const scorers = ["reward_model", "scorer", "judge_endpoint"].filter((k) => v[k] !== null);
  if (v.task === "text" && scorers.length === 0)
    throw new IterationsError(
      `${where}: key 'iterations.reward_model': the text task needs a reward model ` +
        "(or iterations.scorer, or iterations.judge_endpoint)",
    );
  if (scorers.length > 1)
    throw new IterationsError(
      `${where}: keys ${scorers.map((k) => `'iterations.${k}'`).join(" and ")}: give one scorer`,
    );
  if (v.task === "math" && judge !== null)
    throw new IterationsError(
      `${where}: key 'iterations.judge_endpoint' belongs to the text task; math grades against 'answer' (or a scorer)`,
    );
  if (v.task === "math" && v.reward_model !== null)
    throw new IterationsError(
      `${where}: key 'iterations.reward_model' belongs to the text task; math grades against 'answer' (or a scorer)`,
    );
  // The math keys belong to the graded math pipeline (data build --task math's): no scorer.
  const graded = v.task === "math" && v.scorer === null;
  for (const key of ["prm", "step_token", "prompt_template"])
    if (v[key] !== null && !graded)
      throw new IterationsError(
        `${where}: key 'iterations.${key}' belongs to the math task graded against 'answer' (task: math, no scorer)`,
      );
  if (v.prm === null && v.step_token !== null)
    throw new IterationsError(`${where}: key 'iterations.step_token' needs iterations.prm`);
  if (graded && v.seeds !== null)
    throw new IterationsError(
      `${where}: key 'iterations.seeds': the graded math task seeds its samples as data build --task math does`,
    );
  if (v.prompt_template !== null && !(v.prompt_template as string).includes("{input}"))
    throw new IterationsError(`${where}: key 'iterations.prompt_template' must contain {input}`);
  const topP = v.top_p as number;
  if (!(topP > 0 && topP <= 1))
    throw new IterationsError(`${where}: key 'iterations.top_p' must be in (0, 1], got ${topP}`);
  let seeds: number[] | null = null;
  if (v.seeds !== null) {
    seeds = v.seeds as number[];
    if (!seeds.every((s) => Number.isSafeInteger(s) && s >= 0))
      throw new IterationsError(
        `${where}: key 'iterations.seeds' must be a list of whole numbers from 0, got ${JSON.stringify(v.seeds)}`,
      );
  }
  let roundEval: RoundEval | null = null;
  if (v.eval !== null) {
    const e = readTable(v.eval, EVAL_KEYS, where, "iterations.eval.", baseDir);
    const needs = (key: string) => {
      if (e[key] === null)
        throw new IterationsError(`${where}: missing key 'iterations.eval.${key}' (eval task ${String(e.task)})`);
    };
    if (e.task === "math") {
      needs("data");
      roundEval = {
        task: "math",
        data: e.data as string,
        maxNewTokens: e.max_new_tokens as number,
        promptTemplate: e.prompt_template as string | null,
      };
    } else {
      needs("prompts");
      needs("reward_model");
      roundEval = {
        task: "winrate",
        prompts: e.prompts as string,
        rewardModel: e.reward_model as string,
        maxNewTokens: e.max_new_tokens as number,
      };
    }
  }
  return {
    rounds: v.rounds as number,
    prompts: v.prompts as string,
    promptsPerRound: v.prompts_per_round as number | null,
    task: v.task as Iterations["task"],
    rewardModel: v.reward_model as string | null,
    scorer: v.scorer as string | null,
    judge,
    prm: v.prm as string | null,
    rewardType: v.reward_type as "min" | "avg",
    stepToken: v.step_token as string | null,
    scoreMargin: v.score_margin as number,
    promptTemplate: v.prompt_template as string | null,
    samples: v.samples as number,
    seeds,
    temperature: v.temperature as number,
    topP,
    maxNewTokens: v.max_new_tokens as number,
    batchSize: v.batch_size as number,
    reference: v.reference as Iterations["reference"],
    eval: roundEval,
  };
}

/** The judge_* keys, read together: judge_endpoint must be an http(s) URL with judge_model; the rest need it. */
function readJudge(v: Record<string, unknown>, where: string): IterationJudge | null {
  const url = v.judge_endpoint as string | null;
  if (url === null) {
    // A judge key set (not left at its default) without the endpoint it configures.
    const stray = ["judge_model", "judge_template", "judge_key_env"].find((k) => v[k] !== null);
    if (stray) throw new IterationsError(`${where}: key 'iterations.${stray}' needs iterations.judge_endpoint`);
    return null;
  }
  let parsed: URL | null;
  try {
    parsed = new URL(url);
  } catch {
    parsed = null;
  }
  if (parsed === null || (parsed.protocol !== "http:" && parsed.protocol !== "https:"))
    throw new IterationsError(
      `${where}: key 'iterations.judge_endpoint' must be an http(s) URL such as http://localhost:8000/v1, got '${url}'`,
    );
  if (v.judge_model === null)
    throw new IterationsError(
      `${where}: key 'iterations.judge_model': judge_endpoint needs the model name its server serves`,
    );
  const keyEnv = v.judge_key_env as string | null;
  if (keyEnv !== null && process.env[keyEnv] === undefined)
    throw new IterationsError(
      `${where}: key 'iterations.judge_key_env': the environment variable ${keyEnv} is not set`,
    );
  return {
    endpoint: url.replace(/\/+$/, ""),
    model: v.judge_model as string,
    templateFile: v.judge_template as string | null,
    retries: v.judge_retries as number,
    maxTokens: v.judge_max_tokens as number,
    concurrency: v.judge_concurrency as number,
    timeoutSeconds: v.judge_timeout as number,
    requestRetries: v.judge_request_retries as number,
    keyEnv,
  };
}

/** The block's keys for `iterate --help`: one line each (kind, default, help). */
export function iterationKeysHelp(): string {
  const lines: string[] = [];
  for (const [key, spec] of Object.entries(ITERATION_KEYS) as [string, IterationKeySpec][]) {
    const type = spec.kind === "enum" ? spec.values!.join("|") : spec.kind;
    const dflt = !("default" in spec) ? "required" : spec.default === null ? "None" : JSON.stringify(spec.default);
    lines.push(`  ${key} (${type}, ${dflt}): ${spec.help}`);
  }
  return lines.join("\n");
}
