// Answer equality, as the reference grader's math_equal (Uni-DPO Math/evaluation grader.py), in
// its order: text equality, numbers (relative tolerance 1e-4, percentages), a multiple-choice
// letter, brackets, tuples/intervals elementwise, matrices elementwise, equations, and last a
// symbolic comparison (symbolic.ts) under a time limit.
import { lstripChars, rstripChars, stripChars } from "./normalize.js";
import { isClose } from "./equal-numbers.js";
import { symbolicEqual } from "./symbolic.js";

export interface EqualOptions {
  /** Milliseconds one symbolic comparison may take; past it the pair counts as different (default 3000). */
  timeoutMs?: number;
}

// Python's float() syntax: digits with single underscores, optional fraction and exponent, inf/nan
const DIGITS = "[0-9](?:_?[0-9])*";
const PY_FLOAT = new RegExp(
  `^[+-]?(?:(?:${DIGITS}(?:\\.(?:${DIGITS})?)?|\\.${DIGITS})(?:[eE][+-]?${DIGITS})?|inf(?:inity)?|nan)$`,
  "i",
);

/** Python's float(s), or null where it raises. */
export function pyFloat(s: string): number | null {
  const t = s.trim();
  if (!PY_FLOAT.test(t)) return null;
  const lower = t.toLowerCase().replaceAll("_", "");
  if (lower.endsWith("nan")) return NaN;
  if (lower.endsWith("inf") || lower.endsWith("infinity")) return lower.startsWith("-") ? -Infinity : Infinity;
  return Number(lower);
}

/** A parsed number and whether Python holds it as an int (int-int comparisons are exact). */
interface Num {
  value: number;
  int: boolean;
}

/** _parse_digits: commas dropped, a float (int when integral), or a percentage over 100. */
export function parseDigits(s: string): Num | null {
  let t = s.replaceAll(",", "");
  const v = pyFloat(t);
  if (v !== null) return { value: v, int: Number.isInteger(v) };
  if (t.endsWith("%")) {
    t = t.slice(0, -1);
    if (t.endsWith("\\")) t = t.slice(0, -1);
    const p = pyFloat(t);
    if (p !== null) return { value: p / 100, int: false };
  }
  return null;
}

const numericEqual = (pred: Num, ref: Num): boolean =>
  pred.int && ref.int ? pred.value === ref.value : isClose(ref.value, pred.value);

/** grader._choice_answer_clean: the last standalone A-E letter, else the trimmed text. */
function choiceClean(pred: string): string {
  const p = lstripChars(stripChars(rstripChars(rstripChars(stripChars(pred, "\n"), "."), "/"), " "), ":");
  const letters = [...p.toUpperCase().matchAll(/(?<![\p{L}\p{N}_])[A-E](?![\p{L}\p{N}_])/gu)].map((m) => m[0]);
  const last = letters.length > 0 ? letters[letters.length - 1] : stripChars(p.trim(), ".");
  return rstripChars(rstripChars(last, "."), "/");
}

/** _str_to_pmatrix: "{1,2},{3,4}"-style gold answers as pmatrix text (one greedy {...,...} match). */
function toPmatrix(s: string): string {
  const m = s.trim().match(/\{.*,.*\}/u);
  return m ? `\\begin{pmatrix}${stripChars(m[0], "{}").replaceAll(",", "\\")}\\end{pmatrix}` : "";
}

const BEGIN = "\\begin{pmatrix}";
const END = "\\end{pmatrix}";
const isMatrix = (s: string) =>
  (s.startsWith(BEGIN) || s.startsWith("\\begin{bmatrix}")) && (s.endsWith(END) || s.endsWith("\\end{bmatrix}"));
const matrixRows = (s: string) =>
  s
    .slice(BEGIN.length, s.length - END.length)
    .split("\\\\")
    .map((l) => l.trim())
    .filter(Boolean);

/** Python's str.count. */
const count = (s: string, sub: string) => s.split(sub).length - 1;

/** math_equal(prediction, reference) with include_percentage and is_close on, as the reference grades. */
export function mathEqual(prediction: string, reference: string, options: EqualOptions = {}): boolean {
  if (prediction.trim().toLowerCase() === reference.trim().toLowerCase()) return true;
  if (["A", "B", "C", "D", "E"].includes(reference) && choiceClean(prediction) === reference) return true;

  const pNum = parseDigits(prediction);
  const rNum = parseDigits(reference);
  if (pNum && rNum) {
    // the gold answer may be a percentage of the prediction or the other way round
    const candidates: Num[] = [
      { value: rNum.value / 100, int: false },
      rNum,
      { value: rNum.value * 100, int: rNum.int },
    ];
    return candidates.some((c) => numericEqual(pNum, c));
  }
  if (!prediction) return false;

  let ref = reference.trim();
  const pred = prediction.trim();
  if (pred.includes("pmatrix") && !ref.includes("pmatrix")) ref = toPmatrix(ref);

  // brackets ignored: [a,b] or (a,b) against the same list in other brackets
  let predBare = pred;
  let refBare = ref;
  if (
    (pred.startsWith("[") && pred.endsWith("]") && !ref.startsWith("(")) ||
    (pred.startsWith("(") && pred.endsWith(")") && !ref.startsWith("["))
  ) {
    predBare = stripChars(predBare, "[]()");
    refBare = stripChars(refBare, "[]()");
  }
  const unbrace = (s: string) => s.replace(/[{}()]/gu, "");
  if (unbrace(predBare).toLowerCase() === unbrace(refBare).toLowerCase()) return true;

  // tuples and intervals: elementwise when both open with a bracket and close one later
  const bracketed = /^[([].+[)\]]/su;
  if (bracketed.test(pred) && bracketed.test(ref)) {
    const pp = pred.slice(1, -1).split(",");
    const rp = ref.slice(1, -1).split(",");
    if (pp.length === rp.length && pp.map((p, i) => mathEqual(p, rp[i], options)).every(Boolean)) return true;
  }
  if (isMatrix(pred) && isMatrix(ref)) {
    const pr = matrixRows(pred);
    const rr = matrixRows(ref);
    const same =
      pr.length === rr.length &&
      pr.every((row, i) => {
        const pc = row.split("&");
        const rc = rr[i].split("&");
        return pc.length === rc.length && pc.map((c, j) => mathEqual(c, rc[j], options)).every(Boolean);
      });
    if (same) return true;
  }

  if (count(pred, "=") === 1 && count(ref, "=") === 1) {
    // equations: lhs - (rhs), either sign
    const [pl, pr] = pred.split("=");
    const [rl, rr] = ref.split("=");
    const p = `${pl.trim()} - (${pr.trim()})`;
    const r = `${rl.trim()} - (${rr.trim()})`;
    if (symbolicEqual(p, r, options.timeoutMs) || symbolicEqual(`-(${p})`, r, options.timeoutMs)) return true;
  } else if (count(pred, "=") === 1 && !ref.includes("=")) {
    if (mathEqual(pred.split("=")[1], ref, options)) return true;
  } else if (count(ref, "=") === 1 && !pred.includes("=")) {
    if (mathEqual(pred, ref.split("=")[1], options)) return true;
  }
  return symbolicEqual(pred, ref, options.timeoutMs);
}
