// Building preference data the way the reference builds its math data: sample K responses per
// prompt from the policy itself, score each (a verifier for the final answer and a judge for
// the steps, or a user's scorer), drop prompts whose responses are all the same, and binarise
// into (chosen, rejected) pairs with the reference's strategies.
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import type { CausalLM } from "../models/causal-lm.js";
import { asGenerator } from "../generation/local.js";
import type { Generator } from "../generation/types.js";
import type { Tokenizer } from "../text/index.js";
import { rng } from "./mixer.js";

export interface Scored {
  response: string;
  score: number;
  correct: boolean;
}

/** What a scorer says about one response: a score (0..10, or 0..1.1 which is rescaled x10) and, when known, correctness. */
export type ScoreResult = number | { score: number; correct?: boolean };
export type Scorer = (prompt: string, response: string) => ScoreResult | Promise<ScoreResult>;

export type ChosenStrategy = "highest" | "random";
export type RejectedStrategy = "lowest" | "random" | "positive";

export interface BinarizeOptions {
  chosen?: ChosenStrategy;
  rejected?: RejectedStrategy;
  /** Rejected must score at most chosen - margin (reference default 5). */
  margin?: number;
  /** A chosen response must score above this (reference: 6). */
  minChosenScore?: number;
  seed?: number;
}

export interface Pair {
  prompt: string;
  chosen: string;
  rejected: string;
  score_chosen: number;
  score_rejected: number;
  chosen_correct: boolean;
  rejected_correct: boolean;
}

/**
 * One prompt's responses to at most one pair, or null (no qualifying chosen or rejected, or
 * all responses identical). Chosen: correct with score > minChosenScore, the highest or a
 * random one. Rejected: score <= chosen - margin, the lowest, a random one, or "positive"
 * (prefer a low-scoring correct response, else a low-scoring wrong one).
 */
export function binarize(
  prompt: string,
  responses: Scored[],
  options: BinarizeOptions = {},
  random: () => number = Math.random,
): Pair | null {
  if (responses.length < 2 || new Set(responses.map((r) => r.response)).size === 1) return null;
  const minChosen = options.minChosenScore ?? 6;
  const margin = options.margin ?? 5;
  const candidates = responses.filter((r) => r.correct && r.score > minChosen);
  if (candidates.length === 0) return null;
  const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)];
  const chosen =
    (options.chosen ?? "highest") === "highest"
      ? candidates.reduce((a, b) => (b.score > a.score ? b : a))
      : pick(candidates);
  const rejectable = responses.filter(
    (r) => r !== chosen && r.response !== chosen.response && r.score <= chosen.score - margin,
  );
  if (rejectable.length === 0) return null;
  const lowest = (xs: Scored[]) => xs.reduce((a, b) => (b.score < a.score ? b : a));
  let rejected: Scored;
  switch (options.rejected ?? "lowest") {
    case "lowest":
      rejected = lowest(rejectable);
      break;
    case "random":
      rejected = pick(rejectable);
      break;
    case "positive": {
      const correct = rejectable.filter((r) => r.correct);
      rejected = lowest(correct.length ? correct : rejectable);
      break;
    }
    default:
      throw new Error(`unknown rejected strategy '${options.rejected}'; expected lowest, random or positive`);
  }
  return {
    prompt,
    chosen: chosen.response,
    rejected: rejected.response,
    score_chosen: chosen.score,
    score_rejected: rejected.score,
    chosen_correct: chosen.correct,
    rejected_correct: rejected.correct,
  };
}

/** A scorer's answer as {score, correct}; a bare number counts as correct (no verifier). */
export function normaliseScore(result: ScoreResult): { score: number; correct: boolean } {
  const r = typeof result === "number" ? { score: result } : result;
  if (typeof r.score !== "number" || !Number.isFinite(r.score))
    throw new Error(`scorer returned a non-finite score: ${JSON.stringify(result)}`);
  return { score: r.score, correct: r.correct ?? true };
}

/**
 * The reference rescales process-reward scores x10 when the scorer works on a 0..1 scale,
 * judged from all the scores (every one at most 1.1), not response by response: a 0..10 judge's
 * low scores stay as they are.
 */
export function scoreScale(scores: number[]): number {
  return scores.length > 0 && scores.every((s) => s <= 1.1) ? 10 : 1;
}

/** What `data build` hands a named scorer: its --seed, and its --judge-noise when given. */
export interface ScorerOptions {
  seed: number;
  noise?: number;
}
export type ScorerFactory = (options: ScorerOptions) => Scorer;

const namedScorers = new Map<string, ScorerFactory>();

/**
 * Makes a scorer available by name to loadScorer (and `data build --scorer NAME`): the package's
 * command registers the arithmetic task's as "arith". A name is a plain word, used once.
 */
export function registerScorer(name: string, factory: ScorerFactory): void {
  if (!/^[a-z][a-z0-9_-]*$/i.test(name))
    throw new Error(`registerScorer: '${name}' is not a plain name (letters, digits, - and _)`);
  if (namedScorers.has(name)) throw new Error(`registerScorer: a scorer named '${name}' is already registered`);
  if (typeof factory !== "function") throw new Error(`registerScorer('${name}'): the factory must be a function`);
  namedScorers.set(name, factory);
}

/** The names registerScorer has taken, in registration order. */
export function registeredScorers(): string[] {
  return [...namedScorers.keys()];
}

/**
 * A scorer by registered name, made with `options`; else a user's JS module at that path
 * exporting `score(prompt, response)`.
 */
export async function loadScorer(nameOrPath: string, options: ScorerOptions = { seed: 0 }): Promise<Scorer> {
  const named = namedScorers.get(nameOrPath);
  if (named) return named(options);
  const path = nameOrPath;
  const mod = (await import(pathToFileURL(resolve(path)).href)) as {
    score?: Scorer;
    default?: { score?: Scorer } | Scorer;
  };
  const fn = mod.score ?? (typeof mod.default === "function" ? mod.default : mod.default?.score);
  if (typeof fn !== "function")
    throw new Error(`${path}: a scorer module must export a function score(prompt, response)`);
  return fn;
}

export interface BuildOptions extends BinarizeOptions {
  samples?: number; // K responses per prompt (default 5)
  temperature?: number; // default 0.8, as the reference samples
  topP?: number;
  maxNewTokens?: number;
  batchSize?: number; // prompts per generation batch
  maxPairs?: number; // reference: up to 10,000
  stopStrings?: string[];
  onProgress?: (done: number, total: number) => void;
}

export interface BuildStats {
  prompts: number;
  responses: number;
  identicalDropped: number;
  noPair: number;
  pairs: number;
  /** Prompts with a pair beyond maxPairs (not kept). */
  overCap: number;
  correctShare: number;
  /** The factor applied to the scorer's scores (10 for a 0..1 scorer, else 1). */
  scoreScale: number;
}

/** Every prompt's K sampled responses, scored, on the scale pairs are built on (see scoreScale). */
export interface ScoredSamples {
  prompts: string[];
  scored: Scored[][];
  scoreScale: number;
  correctShare: number;
}

/**
 * Samples K responses per prompt from the policy and scores them all. All samples are scored
 * before any pair is made, so the score scale is decided from the whole set, as the reference does.
 * The policy is a Generator (the local model, or an OpenAI-compatible endpoint) or a model.
 */
export async function sampleAndScore(
  model: CausalLM | Generator,
  tokenizer: Tokenizer,
  prompts: string[],
  scorer: Scorer,
  options: BuildOptions = {},
): Promise<ScoredSamples> {
  const k = options.samples ?? 5;
  const batchSize = options.batchSize ?? 16;
  const random = rng(options.seed ?? 0);
  const generator = asGenerator(model, tokenizer);
  const scoredByPrompt: Scored[][] = [];
  for (let start = 0; start < prompts.length; start += batchSize) {
    const chunk = prompts.slice(start, start + batchSize);
    const out = await generator.generate(
      chunk.map((prompt) => ({
        prompt,
        n: k,
        maxTokens: options.maxNewTokens ?? 64,
        temperature: options.temperature ?? 0.8,
        topP: options.topP,
        stop: options.stopStrings,
      })),
      { seed: Math.floor(random() * 2 ** 31) },
    );
    for (let i = 0; i < chunk.length; i++) {
      const scored: Scored[] = [];
      for (const { text: response } of out[i]) {
        scored.push({ response, ...normaliseScore(await scorer(chunk[i], response)) });
      }
      scoredByPrompt.push(scored);
    }
    options.onProgress?.(Math.min(start + batchSize, prompts.length), prompts.length);
  }
  const all = scoredByPrompt.flat();
  const scale = scoreScale(all.map((s) => s.score));
  return {
    prompts,
    scoreScale: scale,
    correctShare: all.length ? all.filter((s) => s.correct).length / all.length : 0,
    scored:
      scale === 1 ? scoredByPrompt : scoredByPrompt.map((xs) => xs.map((s) => ({ ...s, score: s.score * scale }))),
  };
}

/** The counts of a binarisation about to start over `samples` (no prompt counted yet). */
export function emptyStats(samples: ScoredSamples): BuildStats {
  return {
    prompts: samples.prompts.length,
    responses: samples.scored.reduce((n, xs) => n + xs.length, 0),
    identicalDropped: 0,
    noPair: 0,
    pairs: 0,
    overCap: 0,
    correctShare: samples.correctShare,
    scoreScale: samples.scoreScale,
  };
}

/** Binarises scored samples with the reference's math rules (see binarize); `seed` drives the random strategies. */
export function pairsFromSamples(
  samples: ScoredSamples,
  options: BuildOptions = {},
): { pairs: Pair[]; stats: BuildStats } {
  // The random strategies' own stream (offset from the sampling stream's seed, so the two do not
  // echo each other): binarising the same samples twice picks the same pairs.
  const random = rng((options.seed ?? 0) + 1_000_003);
  const stats = emptyStats(samples);
  const pairs: Pair[] = [];
  samples.scored.forEach((scored, i) => {
    if (new Set(scored.map((s) => s.response)).size === 1) {
      stats.identicalDropped++;
      return;
    }
    const pair = binarize(samples.prompts[i], scored, options, random);
    if (!pair) {
      stats.noPair++;
      return;
    }
    if (pairs.length < (options.maxPairs ?? 10_000)) pairs.push(pair);
    else stats.overCap++;
  });
  stats.pairs = pairs.length;
  return { pairs, stats };
}

/** Samples, scores and pairs responses for every prompt (sampleAndScore, then pairsFromSamples). */
export async function buildPairs(
  model: CausalLM | Generator,
  tokenizer: Tokenizer,
  prompts: string[],
  scorer: Scorer,
  options: BuildOptions = {},
): Promise<{ pairs: Pair[]; stats: BuildStats }> {
  return pairsFromSamples(await sampleAndScore(model, tokenizer, prompts, scorer, options), options);
}
