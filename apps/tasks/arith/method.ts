// The column method as a walk over roles: for each step it works out the step that is correct
// there given the problem and the steps written so far (their carries, borrows and partial
// products), and lets a caller decide what was written. The worked solution takes the expected
// step every time; a corruption takes a wrong one once and carries on consistently; the process
// judge compares each written step with the expected one and carries on from what was written.
import { digitCount, type ArithProblem } from "./problems.js";
import type { Step } from "./steps.js";

/** Where a step sits in the method. Columns count from the ones (0); rows are multiplier digits. */
export type Role =
  | { kind: "add"; col: number }
  | { kind: "sub"; col: number }
  | { kind: "mul"; row: number; col: number }
  | { kind: "partial"; row: number }
  | { kind: "sum"; col: number }
  | { kind: "answer" };

/**
 * Decides the step written at `role`, given the one expected there. Returning a step of another
 * kind than `expected` counts as returning `expected` for what follows.
 */
export type StepChooser = (expected: Step, role: Role, index: number) => Step;

export interface MethodWalk {
  roles: Role[];
  /** The steps as chosen (the context later steps were derived from). */
  steps: Step[];
  /** The steps expected at each role, given what was chosen before. */
  expected: Step[];
}

/** Most columns a sum of partial products may take (guards against absurd written partials). */
const MAX_SUM_COLUMNS = 18;

/** Decimal digits of a non-negative integer, ones first. */
export function digitsOf(n: number): number[] {
  return [...String(Math.abs(Math.trunc(n)))].reverse().map(Number);
}

function digitAt(n: number, k: number): number {
  return Math.floor(Math.abs(n) / 10 ** k) % 10;
}

/** The number a chain of carrying steps writes: the ones of each result, the last result whole. */
function carryChainValue(results: readonly number[]): number {
  let value = 0;
  results.forEach((r, i) => {
    value += (i === results.length - 1 ? r : r % 10) * 10 ** i;
  });
  return value;
}

/** Walks the column method for `problem`; `choose` decides each written step (default: the expected one). */
export function walkMethod(problem: ArithProblem, choose: StepChooser = (e) => e): MethodWalk {
  const roles: Role[] = [];
  const steps: Step[] = [];
  const expected: Step[] = [];
  const take = <K extends Step["kind"]>(exp: Extract<Step, { kind: K }>, role: Role): Extract<Step, { kind: K }> => {
    const index = roles.length;
    roles.push(role);
    expected.push(exp);
    const chosen = choose(exp, role, index);
    const used = chosen.kind === exp.kind ? (chosen as Extract<Step, { kind: K }>) : exp;
    steps.push(used);
    return used;
  };

  const { a, b, op } = problem;
  if (op === "+") {
    const da = digitsOf(a),
      db = digitsOf(b);
    const results: number[] = [];
    for (let col = 0; col < Math.max(da.length, db.length); col++) {
      const terms = [da[col] ?? 0, db[col] ?? 0];
      const carry = col === 0 ? 0 : Math.floor(results[col - 1]! / 10);
      results.push(
        take({ kind: "add", terms, carry, result: terms[0]! + terms[1]! + carry }, { kind: "add", col }).result,
      );
    }
    take({ kind: "answer", value: carryChainValue(results) }, { kind: "answer" });
  } else if (op === "-") {
    const negative = a < b;
    const dt = digitsOf(negative ? b : a),
      ds = digitsOf(negative ? a : b);
    let value = 0;
    let previousTop = 0;
    for (let col = 0; col < dt.length; col++) {
      const x = dt[col]!,
        bottom = ds[col] ?? 0;
      const borrow = col > 0 && previousTop >= 10 ? 1 : 0;
      const top = x - bottom - borrow < 0 ? x + 10 : x;
      const step = take({ kind: "sub", top, bottom, borrow, result: top - bottom - borrow }, { kind: "sub", col });
      previousTop = step.top;
      value += step.result * 10 ** col;
    }
    take({ kind: "answer", value: negative && value !== 0 ? -value : value }, { kind: "answer" });
  } else {
    const da = digitsOf(a),
      db = digitsOf(b);
    const row = (r: number): number => {
      const results: number[] = [];
      for (let col = 0; col < da.length; col++) {
        const carry = col === 0 ? 0 : Math.floor(results[col - 1]! / 10);
        const digit = da[col]!,
          multiplier = db[r]!;
        results.push(
          take(
            { kind: "mul", digit, multiplier, carry, result: digit * multiplier + carry },
            { kind: "mul", row: r, col },
          ).result,
        );
      }
      return carryChainValue(results);
    };
    if (db.length === 1) {
      take({ kind: "answer", value: row(0) }, { kind: "answer" });
    } else {
      const partials: number[] = [];
      for (let r = 0; r < db.length; r++) {
        const value = row(r) * 10 ** r;
        partials.push(take({ kind: "partial", value }, { kind: "partial", row: r }).value);
      }
      const columns = Math.min(MAX_SUM_COLUMNS, Math.max(...partials.map(digitCount)));
      const results: number[] = [];
      for (let col = 0; col < columns; col++) {
        const terms = partials.map((p) => digitAt(p, col));
        const carry = col === 0 ? 0 : Math.floor(results[col - 1]! / 10);
        results.push(
          take({ kind: "add", terms, carry, result: terms.reduce((s, t) => s + t, 0) + carry }, { kind: "sum", col })
            .result,
        );
      }
      take({ kind: "answer", value: carryChainValue(results) }, { kind: "answer" });
    }
  }
  return { roles, steps, expected };
}
