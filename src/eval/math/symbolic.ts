// The last step of math_equal: do two answers denote the same mathematical object? The reference
// parses both with sympy's LaTeX parser and compares structure, then simplify(a - b) == 0, then
// equation sides, then numeric values (relative 1e-4). Here the Compute Engine (a LaTeX-aware
// computer algebra system, @cortex-js/compute-engine) plays sympy's part, with the text first
// rewritten so that it reads as sympy's parser reads it:
//  - `\pi`, `e` and `i` are plain symbols (sympy's LaTeX parser returns Symbol('pi'), Symbol('e'),
//    Symbol('i')): "10\pi" is not 31.4159, but 2\pi equals \pi+\pi;
//  - juxtaposition multiplies: 1\frac{1}{2} is 1/2, not a mixed number;
//  - a colon divides (3:2 is 3/2), and 1,000 is a number;
//  - the parser stops at a top-level comma ("a,b" reads as a), at a closing bracket that closes
//    nothing, and before a dangling operator ("b+" reads as b), as sympy's grammar does.
// Expressions with free symbols are compared at random points (sympy's `equals` also tests
// numerically). A comparison that runs past its time limit counts as different, as a reference
// comparison killed by its pool's timeout does.
import { createRequire } from "node:module";
import type { ComputeEngine as Engine, Expression } from "@cortex-js/compute-engine";
import type * as ComputeEngineModule from "@cortex-js/compute-engine";
import { isClose } from "./equal-numbers.js";

/** The Compute Engine, loaded on first use (it takes about half a second). */
let engine: Engine | null = null;
function computeEngine(): Engine {
  if (!engine) {
    const { ComputeEngine } = createRequire(import.meta.url)("@cortex-js/compute-engine") as typeof ComputeEngineModule;
    engine = new ComputeEngine();
  }
  return engine;
}

/**
 * The text sympy's parser reads before it stops: up to the first comma outside brackets and
 * braces, or the first closing bracket that closes nothing ("-2]\cup[3" reads as -2). Commas
 * between digits in groups of three are thousands separators, part of a number (its NUMBER token).
 */
function parsedPrefix(s: string): string {
  const t = s.replace(/(?<=[0-9]),(?=[0-9]{3}(?![0-9]))/g, "");
  let depth = 0;
  for (let i = 0; i < t.length; i++) {
    const c = t[i];
    if ("([{".includes(c)) depth++;
    else if (")]}".includes(c) && --depth < 0) return t.slice(0, i);
    else if (c === "," && depth === 0) return t.slice(0, i);
  }
  return t;
}

/** LaTeX rewritten so that the Compute Engine reads it as sympy's parse_latex does (see the header). */
export function asSympyReads(latex: string): string {
  // sympy's parser also stops before a dangling operator: "b+" reads as b
  const s = parsedPrefix(latex.replaceAll("\\\\", "\\")).replace(/(\s*[-+*/^=]|\\cdot|\\times)+\s*$/u, "");
  let out = "";
  for (let i = 0; i < s.length;) {
    const command = /^\\[a-zA-Z]+/.exec(s.slice(i));
    if (command) {
      out += command[0] === "\\pi" ? "\\mathrm{PiSymbol}" : command[0];
      i += command[0].length;
    } else {
      const c = s[i];
      out += c === "e" ? "\\mathrm{Ee}" : c === "i" ? "\\mathrm{Ii}" : c;
      i++;
    }
  }
  // a number directly before \frac multiplies it; a colon divides (sympy's grammar: 3:2 is 3/2)
  return out.replace(/([0-9.])(\s*)\\frac/g, "$1\\cdot\\frac").replaceAll(":", "/");
}

function parse(ce: Engine, latex: string): Expression | null {
  try {
    const e = ce.parse(asSympyReads(latex));
    return e.isValid ? e : null;
  } catch {
    return null;
  }
}

/** The elements of a "{a,b,...}" list (at least two), else null. */
function braceSet(s: string): string[] | null {
  const t = s.trim();
  if (!t.startsWith("{") || !t.endsWith("}")) return null;
  const items = t
    .slice(1, -1)
    .split(",")
    .map((x) => x.trim());
  return items.length > 1 && items.every((x) => x && !/[{}]/.test(x)) ? items : null;
}

const RELATIONS = ["Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual"];

/** A complex value, or null when the expression has no numeric value. */
function value(e: Expression): [number, number] | null {
  const n = e.N();
  const re = n.re;
  const im = n.im;
  if (typeof re !== "number" || Number.isNaN(re)) return null;
  return [re, typeof im === "number" && !Number.isNaN(im) ? im : 0];
}

/** Deterministic pseudo-random points, so a verdict never changes between runs. */
function* points(seed: number): Generator<number> {
  let x = seed;
  for (;;) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const u = x / 2147483648;
    yield (u < 0.5 ? -1 : 1) * (0.3 + u);
  }
}

/** Equal values: as numbers (relative 1e-4), or with free symbols as sympy's simplify(a - b) == 0. */
function sameValue(ce: Engine, a: Expression, b: Expression): boolean {
  const names = [...new Set([...a.unknowns, ...b.unknowns])];
  if (names.length === 0) {
    const va = value(a);
    const vb = value(b);
    if (!va || !vb) return false;
    if (va[1] === 0 && vb[1] === 0) return isClose(va[0], vb[0]);
    return Math.hypot(va[0] - vb[0], va[1] - vb[1]) <= 1e-9 * Math.max(1, Math.hypot(...va), Math.hypot(...vb));
  }
  // the difference, simplified: zero or a nonzero constant settles it
  const diff = ce.box(["Subtract", a, b]).simplify();
  if (diff.isSame(0)) return true;
  if (diff.unknowns.length === 0) return false;
  // else the difference vanishes at random points (sympy's `equals` also tests numerically)
  const rng = points(names.length * 7919 + 17);
  let agreeing = 0;
  for (let trial = 0; trial < 8 && agreeing < 4; trial++) {
    const at = Object.fromEntries(names.map((n) => [n, ce.number(rng.next().value as number)]));
    const va = value(a.subs(at));
    const vb = value(b.subs(at));
    if (!va || !vb || !va.every(Number.isFinite) || !vb.every(Number.isFinite)) continue;
    const scale = Math.max(1, Math.hypot(...va), Math.hypot(...vb));
    if (Math.hypot(va[0] - vb[0], va[1] - vb[1]) > 1e-10 * scale) return false;
    agreeing++;
  }
  return agreeing >= 3;
}

/** |lhs - rhs| of a relation, the reference's "equation equal" (which ignores the relation's kind). */
function gap(ce: Engine, rel: Expression): Expression {
  const [lhs, rhs] = (rel as unknown as { ops: Expression[] }).ops;
  return ce.box(["Abs", ["Subtract", lhs, rhs]]);
}

/** symbolic_equal(a, b) under a time limit in milliseconds. */
export function symbolicEqual(a: string, b: string, timeoutMs = 3000): boolean {
  const ce = computeEngine();
  try {
    return ce.withTimeLimit(timeoutMs, () => {
      // Python's parse_expr reads "{1,2}" as a set, which compares unordered
      const sa = braceSet(a);
      const sb = braceSet(b);
      if (sa && sb)
        return sa.length === sb.length && sa.every((x) => sb.includes(x)) && sb.every((x) => sa.includes(x));
      const ea = parse(ce, a);
      const eb = parse(ce, b);
      // unparsable text stays text, and text equals only itself
      if (!ea || !eb) return !ea && !eb && a === b;
      if (ea.isSame(eb)) return true;
      const relations = RELATIONS.includes(ea.operator) && RELATIONS.includes(eb.operator);
      if (relations) return sameValue(ce, gap(ce, ea), gap(ce, eb));
      if (RELATIONS.includes(ea.operator) || RELATIONS.includes(eb.operator)) return false;
      // infinities equal only themselves (sympy: oo != zoo), which isSame has settled
      if (ea.isFinite === false || eb.isFinite === false) return false;
      if (ea.isEqual(eb) === true) return true;
      return sameValue(ce, ea, eb);
    });
  } catch {
    // a timeout (CancellationError) or an expression the engine cannot evaluate
    return false;
  }
}
