// Arithmetic problems and their prompts: a seeded generator over a difficulty (which operations,
// how many digits per operand), and the prompt text "Q:47+85=" that a char-level model reads.
import { pickWeighted, randomInt, seededRandom, type Random } from "./random.js";

export type ArithOp = "+" | "-" | "*";

export const ARITH_OPS: readonly ArithOp[] = ["+", "-", "*"];

/** One problem: `a op b`, and its answer. */
export interface ArithProblem {
  a: number;
  b: number;
  op: ArithOp;
  answer: number;
}

/** Digit counts of an operand, both ends included: [2, 2] is 10..99, [1, 3] is 0..999. */
export type DigitRange = readonly [min: number, max: number];

/** One kind of problem a difficulty draws. */
export interface OpSpec {
  op: ArithOp;
  digitsA: DigitRange;
  digitsB: DigitRange;
  /** Relative frequency among the difficulty's specs; default 1. */
  weight?: number;
  /** Subtraction only: allow a < b (negative answers). Default false: the operands are swapped. */
  allowNegative?: boolean;
}

export interface Difficulty {
  name?: string;
  ops: readonly OpSpec[];
}

export type DifficultyName = "easy" | "medium" | "hard";

/**
 * The preset difficulties (digit counts exact):
 * - easy: 2-digit + 2-digit, 2-digit - 2-digit;
 * - medium: 3-digit +/- 3-digit, 2-digit * 1-digit;
 * - hard: 4-digit +/- 4-digit, 3-digit * 1-digit, 2-digit * 2-digit.
 */
export const DIFFICULTIES: Readonly<Record<DifficultyName, Difficulty>> = {
  easy: {
    name: "easy",
    ops: [
      { op: "+", digitsA: [2, 2], digitsB: [2, 2] },
      { op: "-", digitsA: [2, 2], digitsB: [2, 2] },
    ],
  },
  medium: {
    name: "medium",
    ops: [
      { op: "+", digitsA: [3, 3], digitsB: [3, 3] },
      { op: "-", digitsA: [3, 3], digitsB: [3, 3] },
      { op: "*", digitsA: [2, 2], digitsB: [1, 1] },
    ],
  },
  hard: {
    name: "hard",
    ops: [
      { op: "+", digitsA: [4, 4], digitsB: [4, 4] },
      { op: "-", digitsA: [4, 4], digitsB: [4, 4] },
      { op: "*", digitsA: [3, 3], digitsB: [1, 1] },
      { op: "*", digitsA: [2, 2], digitsB: [2, 2] },
    ],
  },
};

/** Most digits an operand may have (results stay exact in a double). */
export const MAX_OPERAND_DIGITS = 7;

function checkRange(range: DigitRange, what: string): void {
  const [lo, hi] = range;
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1 || hi < lo || hi > MAX_OPERAND_DIGITS) {
    throw new RangeError(
      `${what}: digit range must be integers 1 <= min <= max <= ${MAX_OPERAND_DIGITS}, got [${lo}, ${hi}]`,
    );
  }
}

/** A preset by name, or a custom difficulty checked for sense. */
export function resolveDifficulty(difficulty: DifficultyName | Difficulty): Difficulty {
  if (typeof difficulty === "string") {
    const preset = DIFFICULTIES[difficulty];
    if (!preset)
      throw new RangeError(`unknown difficulty "${difficulty}" (known: ${Object.keys(DIFFICULTIES).join(", ")})`);
    return preset;
  }
  if (!difficulty.ops || difficulty.ops.length === 0) throw new RangeError("a difficulty needs at least one op spec");
  for (const [i, spec] of difficulty.ops.entries()) {
    if (!ARITH_OPS.includes(spec.op)) throw new RangeError(`ops[${i}]: unknown op "${String(spec.op)}" (use + - *)`);
    checkRange(spec.digitsA, `ops[${i}].digitsA`);
    checkRange(spec.digitsB, `ops[${i}].digitsB`);
    if (spec.weight !== undefined && !(spec.weight >= 0)) throw new RangeError(`ops[${i}].weight must be >= 0`);
  }
  return difficulty;
}

/** The value of `a op b`. */
export function applyOp(a: number, op: ArithOp, b: number): number {
  switch (op) {
    case "+":
      return a + b;
    case "-":
      return a - b;
    case "*":
      return a * b;
  }
}

/** A problem from its operands (non-negative integers). */
export function makeProblem(a: number, op: ArithOp, b: number): ArithProblem {
  for (const [name, v] of [
    ["a", a],
    ["b", b],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new RangeError(`operand ${name} must be a non-negative integer, got ${v}`);
  }
  if (!ARITH_OPS.includes(op)) throw new RangeError(`unknown op "${String(op)}" (use + - *)`);
  return { a, b, op, answer: applyOp(a, op, b) };
}

function drawOperand(random: Random, [lo, hi]: DigitRange): number {
  const digits = randomInt(random, lo, hi);
  return digits === 1 ? randomInt(random, 0, 9) : randomInt(random, 10 ** (digits - 1), 10 ** digits - 1);
}

/** One problem drawn from a difficulty with `random`. */
export function drawProblem(random: Random, difficulty: DifficultyName | Difficulty): ArithProblem {
  const spec = pickWeighted(random, resolveDifficulty(difficulty).ops, (s) => s.weight ?? 1);
  let a = drawOperand(random, spec.digitsA);
  let b = drawOperand(random, spec.digitsB);
  if (spec.op === "-" && !spec.allowNegative && a < b) [a, b] = [b, a];
  return makeProblem(a, spec.op, b);
}

export interface GenerateOptions {
  difficulty?: DifficultyName | Difficulty;
  /** Default 0. */
  seed?: number;
  /** No two problems with the same prompt; default true. */
  unique?: boolean;
  /** Prompts (formatPrompt) never to draw, e.g. a held-out set's. */
  exclude?: ReadonlySet<string>;
}

/** `n` problems, reproducible by seed. Throws when the difficulty has too few distinct problems. */
export function generateProblems(n: number, options: GenerateOptions = {}): ArithProblem[] {
  if (!Number.isInteger(n) || n < 0)
    throw new RangeError(`generateProblems: n must be a non-negative integer, got ${n}`);
  const difficulty = resolveDifficulty(options.difficulty ?? "easy");
  const random = seededRandom(options.seed ?? 0);
  const unique = options.unique ?? true;
  const seen = new Set<string>(options.exclude ?? []);
  const out: ArithProblem[] = [];
  const maxDraws = 100 * n + 1000;
  for (let draws = 0; out.length < n; draws++) {
    if (draws >= maxDraws) {
      throw new RangeError(
        `generateProblems: found only ${out.length} of ${n} distinct problems after ${draws} draws; ` +
          "widen the difficulty or ask for fewer",
      );
    }
    const p = drawProblem(random, difficulty);
    const key = formatPrompt(p);
    if (seen.has(key) && (unique || options.exclude?.has(key))) continue;
    seen.add(key);
    out.push(p);
  }
  return out;
}

/** Number of decimal digits of a non-negative integer (0 has one). */
export function digitCount(n: number): number {
  return String(Math.abs(Math.trunc(n))).length;
}

/** The prompt a model sees: "Q:47+85=". The worked solution follows it directly. */
export function formatPrompt(p: Pick<ArithProblem, "a" | "b" | "op">): string {
  return `Q:${p.a}${p.op}${p.b}=`;
}

const PROMPT_RE = /^Q:(\d{1,15})([+\-*])(\d{1,15})=$/;

/** The problem of a prompt written by formatPrompt, or undefined. */
export function parsePrompt(text: string): ArithProblem | undefined {
  const m = PROMPT_RE.exec(text.trim());
  if (!m) return undefined;
  const a = Number(m[1]),
    b = Number(m[3]);
  if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b)) return undefined;
  return makeProblem(a, m[2] as ArithOp, b);
}
