// Answer normalisation, as the reference grader's strip_string (Uni-DPO Math/evaluation, from
// Qwen2.5-Math's harness): the same rewrites in the same order, quirks included, because a verdict
// depends on them (e.g. single-letter unit words such as "a" or "m" are deleted wherever they stand
// alone, in the prediction and the gold answer alike). Regexes use Unicode classes where Python's
// re does (\w, \d, \W).
import { convertWordNumber } from "./word-number.js";

/** Python's \w and \W for str patterns: letters, digits (any script) and underscore. */
const WORD = String.raw`[\p{L}\p{N}_]`;
const NON_WORD = String.raw`[^\p{L}\p{N}_]`;

// Units, mainly from MathQA, each also with a plural "s". The texts are regex sources, as in the
// reference: "." in "a ." matches any character.
const BASE_UNITS = [
  "east",
  "degree",
  "mph",
  "kmph",
  "ft",
  "m sqaure",
  " m east",
  "sq m",
  "deg",
  "mile",
  "q .",
  "monkey",
  "prime",
  "ratio",
  "profit of rs",
  "rd",
  "o",
  "gm",
  "p . m",
  "lb",
  "tile",
  "per",
  "dm",
  "lt",
  "gain",
  "ab",
  "way",
  "west",
  "a .",
  "b .",
  "c .",
  "d .",
  "e .",
  "f .",
  "g .",
  "h .",
  "t",
  "a",
  "h",
  "no change",
  "men",
  "soldier",
  "pie",
  "bc",
  "excess",
  "st",
  "inches",
  "noon",
  "percent",
  "by",
  "gal",
  "kmh",
  "c",
  "acre",
  "rise",
  "a . m",
  "th",
  "π r 2",
  "sq",
  "mark",
  "l",
  "toy",
  "coin",
  "sq . m",
  "gallon",
  "° f",
  "profit",
  "minw",
  "yr",
  "women",
  "feet",
  "am",
  "pm",
  "hr",
  "cu cm",
  "square",
  "v â € ™",
  "are",
  "rupee",
  "rounds",
  "cubic",
  "cc",
  "mtr",
  "s",
  "ohm",
  "number",
  "kmph",
  "day",
  "hour",
  "minute",
  "min",
  "second",
  "man",
  "woman",
  "sec",
  "cube",
  "mt",
  "sq inch",
  "mp",
  "∏ cm ³",
  "hectare",
  "more",
  "sec",
  "unit",
  "cu . m",
  "cm 2",
  "rs .",
  "rs",
  "kg",
  "g",
  "month",
  "km",
  "m",
  "cm",
  "mm",
  "apple",
  "liter",
  "loss",
  "yard",
  "pure",
  "year",
  "increase",
  "decrease",
  "d",
  "less",
  "Surface",
  "litre",
  "pi sq m",
  "s .",
  "metre",
  "meter",
  "inch",
];
const UNIT_PATTERNS = [...BASE_UNITS, ...BASE_UNITS.map((u) => u + "s")].map(
  (u) => new RegExp(`(^|${NON_WORD})${u}($|${NON_WORD})`, "gu"),
);

/** Code points, as Python indexes a str. */
const chars = (s: string): string[] => Array.from(s);

/** _fix_fracs: \frac12 -> \frac{1}{2}, \frac1{72} -> \frac{1}{72}; a bare \frac at the end leaves the string. */
export function fixFracs(text: string): string {
  const parts = text.split("\\frac");
  let out = parts[0];
  for (const part of parts.slice(1)) {
    out += "\\frac";
    const p = chars(part);
    if (p.length > 0 && p[0] === "{") {
      out += part;
      continue;
    }
    if (p.length < 2) return text;
    const [a, b] = p;
    const rest = p.slice(2).join("");
    out += b !== "{" ? `{${a}}{${b}}${rest}` : `{${a}}${b}${rest}`;
  }
  return out;
}

/** _fix_a_slash_b: "3/4" -> \frac{3}{4} when both sides are integers written canonically (or contain sqrt). */
export function fixSlash(text: string): string {
  const parts = text.split("/");
  if (parts.length !== 2) return text;
  // int(x) then "{}/{}".format must give the string back: canonical ASCII integers only
  const ok = (x: string) => x.includes("sqrt") || /^(0|-?[1-9][0-9]*)$/.test(x);
  return ok(parts[0]) && ok(parts[1]) ? `\\frac{${parts[0]}}{${parts[1]}}` : text;
}

/** _fix_sqrt: \sqrt2 -> \sqrt{2}. */
export const fixSqrt = (text: string): string => text.replace(new RegExp(`\\\\sqrt(${WORD}+)`, "gu"), "\\sqrt{$1}");

/** Python's str.rstrip(chars) / lstrip for a set of single characters. */
export function rstripChars(s: string, set: string): string {
  let end = s.length;
  while (end > 0 && set.includes(s[end - 1])) end--;
  return s.slice(0, end);
}
export function lstripChars(s: string, set: string): string {
  let start = 0;
  while (start < s.length && set.includes(s[start])) start++;
  return s.slice(start);
}
export const stripChars = (s: string, set: string): string => lstripChars(rstripChars(s, set), set);

/** strip_string: the reference's normal form of an answer; `skipUnit` keeps unit words (carp_en, minerva_math). */
export function stripString(input: string, skipUnit = false): string {
  let s = input.trim().replaceAll("\n", "");
  s = rstripChars(s, ".");
  s = s.replaceAll("\\!", "").replaceAll("\\ ", "").replaceAll("\\\\", "\\");
  // matrices
  s = s.replace(/\\begin\{array\}\{.*?\}/gu, "\\begin{pmatrix}").replace(/\\end\{array\}/gu, "\\end{pmatrix}");
  s = s.replaceAll("bmatrix", "pmatrix");
  s = s.replaceAll("tfrac", "frac").replaceAll("dfrac", "frac");
  s = s.replaceAll("\\neq", "\\ne").replaceAll("\\leq", "\\le").replaceAll("\\geq", "\\ge");
  s = s.replaceAll("\\left", "").replaceAll("\\right", "").replaceAll("\\{", "{").replaceAll("\\}", "}");
  // a trailing \text{...} is a unit when something is left before it
  const noUnit = s.replace(/\\text\{.*?\}$/u, "").trim();
  if (noUnit !== "" && noUnit !== s) s = noUnit;
  if (!skipUnit) {
    for (let pass = 0; pass < 2; pass++) {
      for (const re of UNIT_PATTERNS) {
        const t = s.replace(re, "$1$2");
        if (t !== "") s = t;
      }
    }
  }
  s = s.replaceAll("^{\\circ}", "").replaceAll("^\\circ", "");
  s = s.replaceAll("\\$", "").replaceAll("$", "").replaceAll("\\(", "").replaceAll("\\)", "");
  s = convertWordNumber(s);
  s = s.replace(/\\text\{(.*?)\}/gu, "$1");
  for (const key of ["x=", "y=", "z=", "x\\in", "y\\in", "z\\in", "x\\to", "y\\to", "z\\to"]) s = s.replaceAll(key, "");
  s = s.replaceAll("\\emptyset", "{}").replaceAll("(-\\infty,\\infty)", "\\mathbb{R}");
  s = s.replaceAll("\\%", "").replaceAll("%", "");
  s = s.replaceAll(" .", " 0.").replaceAll("{.", "{0.");
  // (the reference's bracket unwrapping here tests isalnum() on a string with brackets: never true)
  s = s.replaceAll("infinity", "\\infty");
  if (!s.includes("\\infty")) s = s.replaceAll("inf", "\\infty");
  s = s.replaceAll("+\\inity", "\\infty");
  s = s.replaceAll("and", "").replaceAll("\\mathbf", "");
  s = s.replace(/\\mbox\{.*?\}/gu, "");
  if (s.includes("j") && !s.includes("i")) s = s.replaceAll("j", "i");
  // 2.000x -> 2x, 5.0 -> 5
  s = s.replace(/(\p{Nd}+)\.0*([^\p{Nd}])/gu, "$1$2").replace(/(\p{Nd}+)\.0*$/u, "$1");
  if (s.length === 0) return s;
  if (s[0] === ".") s = "0" + s;
  // "k = 5" -> "5" when what is left of the only "=" is at most two characters
  const sides = s.split("=");
  if (sides.length === 2 && chars(sides[0]).length <= 2) s = sides[1];
  s = fixSqrt(s);
  s = s.replaceAll(" ", "");
  s = fixFracs(s);
  return fixSlash(s);
}
