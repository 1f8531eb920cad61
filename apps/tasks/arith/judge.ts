// The process judge: a stand-in for a process reward model. It scores a response 0..10 from its
// intermediate steps. A step is right when it is the step the column method calls for at that
// place, given the problem and the response's own earlier steps (its operands are the problem's
// digits, its carry/borrow in follows from the step before, its arithmetic holds). Credit:
// - "prefix" (default, as Math-Shepherd-style PRM labels): a step scores 1 when it and every step
//   before it are right, so a response is credited for how far it got before its first mistake;
// - "local": each step scores 1 when it is right given what was written before it, so a mistake
//   costs only the step that makes it.
// Step scores (the method's steps, any extra steps written, the final answer) are aggregated by
// mean or min (the reference's PRM options), a malformed response loses a penalty, and Gaussian
// noise (clamped to 0..10) makes it the imperfect judge a real PRM is.
import { formatPrompt, type ArithProblem } from "./problems.js";
import { gaussian, hashSeed, seededRandom, type Random } from "./random.js";
import { parseResponse, stepsEqual } from "./steps.js";
import { walkMethod } from "./method.js";

/** How step scores become one: their mean, or their minimum (one wrong step gives 0). */
export type StepAggregate = "mean" | "min";

/** Which steps get credit: those before the first mistake ("prefix"), or every right one ("local"). */
export type StepCredit = "prefix" | "local";

export interface JudgeOptions {
  /** Standard deviation of the Gaussian noise, in score points (0..10 scale); default 0. */
  noise?: number;
  /**
   * Seed of the noise; default 0. The noise of a response is drawn from (seed, prompt, response),
   * so the same response always gets the same score and different responses independent noise.
   */
  seed?: number;
  /** A generator to draw the noise from instead (one normal draw per call). */
  random?: Random;
  /** Default "mean". */
  aggregate?: StepAggregate;
  /** Default "prefix". */
  credit?: StepCredit;
  /** Taken off (on the 0..1 scale, before x10) when the response is malformed; default 0.2. */
  malformedPenalty?: number;
}

export interface JudgeReport {
  /** The score, 0..10, noise included. */
  score: number;
  /** The score without noise, 0..10. */
  clean: number;
  /** One score (0 or 1) per step: the method's steps in order, then extra steps written, then the final answer (after `credit`). */
  stepScores: number[];
  /** How many steps the method has (final answer included). */
  expectedSteps: number;
  /** Why the response is malformed; empty when it is not. */
  malformed: string[];
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/** The full judgement of one response: the score and how it came about. Never throws on bad responses. */
export function judgeResponse(problem: ArithProblem, response: string, options: JudgeOptions = {}): JudgeReport {
  const noise = options.noise ?? 0;
  const penalty = options.malformedPenalty ?? 0.2;
  const aggregate = options.aggregate ?? "mean";
  if (!(noise >= 0) || !Number.isFinite(noise))
    throw new RangeError(`judge noise must be a finite number >= 0, got ${noise}`);
  if (!(penalty >= 0 && penalty <= 1)) throw new RangeError(`malformedPenalty must be in [0, 1], got ${penalty}`);
  const credit = options.credit ?? "prefix";
  if (aggregate !== "mean" && aggregate !== "min")
    throw new RangeError(`aggregate must be "mean" or "min", got ${String(aggregate)}`);
  if (credit !== "prefix" && credit !== "local")
    throw new RangeError(`credit must be "prefix" or "local", got ${String(credit)}`);

  const parsed = parseResponse(response);
  const bodyScores: number[] = [];
  let answerScore = 0;
  const walk = walkMethod(problem, (expected, role, index) => {
    if (role.kind === "answer") {
      answerScore = parsed.answer !== undefined && parsed.answer === (expected as { value: number }).value ? 1 : 0;
      return expected;
    }
    const written = parsed.steps[index];
    bodyScores.push(written !== undefined && stepsEqual(written, expected) ? 1 : 0);
    const used = written !== undefined && written.kind === expected.kind ? written : expected;
    return used;
  });
  const extra = Math.max(0, parsed.steps.length - (walk.roles.length - 1));
  const stepScores = [...bodyScores, ...new Array<number>(extra).fill(0), answerScore];
  if (credit === "prefix") {
    const firstWrong = stepScores.indexOf(0);
    if (firstWrong >= 0) stepScores.fill(0, firstWrong);
  }
  const aggregated =
    aggregate === "min" ? Math.min(...stepScores) : stepScores.reduce((s, x) => s + x, 0) / stepScores.length;
  const clean = 10 * clamp(aggregated - (parsed.malformed.length > 0 ? penalty : 0), 0, 1);
  let score = clean;
  if (noise > 0) {
    const random =
      options.random ?? seededRandom(hashSeed(options.seed ?? 0, formatPrompt(problem), String(response), "judge"));
    score = clamp(clean + noise * gaussian(random), 0, 10);
  }
  return { score, clean, stepScores, expectedSteps: walk.roles.length, malformed: parsed.malformed };
}

/** The process judge's score of a response, 0..10 (see judgeResponse). */
export function processJudge(problem: ArithProblem, response: string, options: JudgeOptions = {}): number {
  return judgeResponse(problem, response, options).score;
}
