// Worked solutions (the column method written out, ending in the final answer and ".") and
// corrupted ones: a realistic mistake in one step, after which the work carries on consistently
// from the mistake, as a model's wrong sample would.
import { formatPrompt, type ArithProblem } from "./problems.js";
import { randomInt, seededRandom, hashSeed, type Random } from "./random.js";
import { formatSteps, TERMINATOR, type Step } from "./steps.js";
import { walkMethod, type Role } from "./method.js";

/** The steps of the worked solution, the final answer last. */
export function solutionSteps(problem: ArithProblem): Step[] {
  return walkMethod(problem).steps;
}

/** The worked solution's text, which follows the prompt: e.g. " 7+5+0=12 4+8+1=13 A=132." for 47+85. */
export function workedSolution(problem: ArithProblem): string {
  return formatSteps(solutionSteps(problem));
}

/** Prompt and worked solution together, as an SFT example: "Q:47+85= 7+5+0=12 4+8+1=13 A=132." */
export function trainingText(problem: ArithProblem): string {
  return formatPrompt(problem) + workedSolution(problem);
}

/**
 * Kinds of mistakes:
 * - "slip": one step's result is off by 1 or 2 (an arithmetic slip);
 * - "carry": one step drops its carry (or borrow) in, and computes the rest right;
 * - "operand": one step misreads a digit of the problem (or of a partial product);
 * - "answer": every step right, the final answer miscopied;
 * - "truncate": the text cut off before its end (no final answer).
 */
export type CorruptionKind = "slip" | "carry" | "operand" | "answer" | "truncate";

/** The kinds corruptSolution picks from by default (a truncated text is asked for explicitly). */
export const DEFAULT_CORRUPTIONS: readonly CorruptionKind[] = ["slip", "carry", "operand", "answer"];

export interface CorruptOptions {
  /** One kind, or the kinds to pick from (uniformly); default DEFAULT_CORRUPTIONS. */
  kind?: CorruptionKind | readonly CorruptionKind[];
  /** Seed of the choices (mixed with the problem, so each problem gets its own); default 0. */
  seed?: number;
  /** A generator to draw from instead of `seed`. */
  random?: Random;
}

export interface CorruptedSolution {
  /** The kind applied: the one asked for, or "slip" where it has nothing to act on (no carries to drop). */
  kind: CorruptionKind;
  /** The response text. */
  text: string;
  /** The steps written (for "truncate": the solution's; the text is what counts). */
  steps: Step[];
  /** Index of the wrong step in `steps` (the answer's index for "answer"; for "truncate" the first step cut). */
  stepIndex: number;
  /** The final answer written, undefined when there is none. */
  answer: number | undefined;
  /** Whether the final answer differs from the problem's (or is missing). */
  changesAnswer: boolean;
}

const ARITHMETIC = new Set<Role["kind"]>(["add", "sub", "mul", "sum"]);

function carryIn(step: Step): number {
  switch (step.kind) {
    case "add":
    case "mul":
      return step.carry;
    case "sub":
      return step.borrow;
    default:
      return 0;
  }
}

function otherDigit(random: Random, digit: number): number {
  const d = randomInt(random, 0, 8);
  return d >= digit ? d + 1 : d;
}

/** A slip of the result by +-1 or +-2, kept in the range a step of this kind can write. */
function slip(random: Random, step: Step): Step {
  const lo = 0,
    hi = step.kind === "sub" ? 9 : Number.MAX_SAFE_INTEGER;
  const result = (step as { result: number }).result;
  const options = [-2, -1, 1, 2].map((d) => result + d).filter((r) => r >= lo && r <= hi);
  const wrong = options[randomInt(random, 0, options.length - 1)]!;
  return { ...step, result: wrong } as Step;
}

/** The step computed right, but with its carry/borrow in dropped to 0. */
function dropCarry(step: Step): Step {
  switch (step.kind) {
    case "add":
      return { ...step, carry: 0, result: step.terms.reduce((s, t) => s + t, 0) };
    case "mul":
      return { ...step, carry: 0, result: step.digit * step.multiplier };
    case "sub": {
      const x = step.top % 10;
      const top = x - step.bottom < 0 ? x + 10 : x;
      return { ...step, top, borrow: 0, result: top - step.bottom };
    }
    default:
      return step;
  }
}

/** The step computed right from one misread digit. */
function misread(random: Random, step: Step): Step {
  switch (step.kind) {
    case "add": {
      const i = randomInt(random, 0, step.terms.length - 1);
      const terms = step.terms.map((t, j) => (j === i ? otherDigit(random, t) : t));
      return { ...step, terms, result: terms.reduce((s, t) => s + t, 0) + step.carry };
    }
    case "mul": {
      const digit = otherDigit(random, step.digit);
      return { ...step, digit, result: digit * step.multiplier + step.carry };
    }
    case "sub": {
      const bottom = otherDigit(random, step.bottom);
      const x = step.top % 10;
      const top = x - bottom - step.borrow < 0 ? x + 10 : x;
      return { ...step, top, bottom, result: top - bottom - step.borrow };
    }
    default:
      return step;
  }
}

function miscopy(random: Random, value: number): number {
  const digits = String(Math.abs(value)).length;
  const k = randomInt(random, 0, digits - 1);
  const d = Math.floor(Math.abs(value) / 10 ** k) % 10;
  const delta = (d === 9 ? -1 : d === 0 ? 1 : random() < 0.5 ? -1 : 1) * 10 ** k;
  return value < 0 ? value - delta : value + delta;
}

/**
 * A wrong response for `problem`: the worked solution with one realistic mistake, the work after
 * it carried on consistently (so the final answer follows from the wrong step). Reproducible by seed.
 */
export function corruptSolution(problem: ArithProblem, options: CorruptOptions = {}): CorruptedSolution {
  const random = options.random ?? seededRandom(hashSeed(options.seed ?? 0, formatPrompt(problem), "corrupt"));
  const kinds = typeof options.kind === "string" ? [options.kind] : (options.kind ?? DEFAULT_CORRUPTIONS);
  if (kinds.length === 0) throw new RangeError("corruptSolution: no corruption kinds to choose from");
  let kind = kinds[randomInt(random, 0, kinds.length - 1)]!;
  const clean = walkMethod(problem);
  const n = clean.steps.length;
  const done = (steps: Step[], text: string, stepIndex: number, answer: number | undefined): CorruptedSolution => ({
    kind,
    text,
    steps,
    stepIndex,
    answer,
    changesAnswer: answer !== problem.answer,
  });

  if (kind === "truncate") {
    const text = formatSteps(clean.steps);
    // Keeps at least the leading space and never the terminator; the final answer is cut short or gone.
    const cut = randomInt(random, 1, text.lastIndexOf(TERMINATOR) - 1);
    const kept = text.slice(0, cut);
    const stepIndex = kept.trim().length === 0 ? 0 : kept.trim().split(" ").length - 1;
    return done(clean.steps, kept, stepIndex, undefined);
  }
  if (kind === "answer") {
    const steps = [...clean.steps];
    const value = miscopy(random, (steps[n - 1] as { value: number }).value);
    steps[n - 1] = { kind: "answer", value };
    return done(steps, formatSteps(steps), n - 1, value);
  }
  let eligible = clean.roles.flatMap((r, i) =>
    ARITHMETIC.has(r.kind) && (kind !== "carry" || carryIn(clean.steps[i]!) > 0) ? [i] : [],
  );
  if (eligible.length === 0) {
    kind = "slip";
    eligible = clean.roles.flatMap((r, i) => (ARITHMETIC.has(r.kind) ? [i] : []));
  }
  const at = eligible[randomInt(random, 0, eligible.length - 1)]!;
  const walk = walkMethod(problem, (expected, _role, index) => {
    if (index !== at) return expected;
    return kind === "slip"
      ? slip(random, expected)
      : kind === "carry"
        ? dropCarry(expected)
        : misread(random, expected);
  });
  const answer = (walk.steps[walk.steps.length - 1] as { value: number }).value;
  return done(walk.steps, formatSteps(walk.steps), at, answer);
}
