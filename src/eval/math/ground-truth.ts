// The gold answer of a benchmark record, as the reference's parse_ground_truth per data set. The
// reference parses it twice (math_eval.py, then evaluate.py on the saved sample with `gt_cot` and
// `gt`), and strip_string is not idempotent, so goldAnswer applies both passes.
import { extractAnswer, STRIP_EXCEPTIONS } from "./extract.js";
import { stripString } from "./normalize.js";

/** Data sets the reference's parse_ground_truth knows. */
export const MATH_DATASETS = [
  "math",
  "minerva_math",
  "math500",
  "gsm8k",
  "svamp",
  "asdiv",
  "mawps",
  "tabmwp",
  "carp_en",
  "mmlu_stem",
  "sat_math",
  "aqua",
  "gaokao2023en",
  "college_math",
  "gaokao_math_cloze",
  "gaokao_math_qa",
  "gaokao2024_mix",
  "cn_middle_school",
  "olympiadbench",
  "aime24",
  "amc23",
  "cmath",
  "gaokao2024_I",
  "gaokao2024_II",
  "imo2024",
] as const;

export class GoldAnswerError extends Error {}

type Example = Record<string, unknown>;

function field(example: Example, key: string, dataset: string): unknown {
  if (!(key in example) || example[key] === undefined || example[key] === null) {
    throw new GoldAnswerError(`${dataset} records need a '${key}' field`);
  }
  return example[key];
}
const text = (example: Example, key: string, dataset: string): string => {
  const v = field(example, key, dataset);
  return typeof v === "string" ? v : typeof v === "number" ? pyRepr(v) : JSON.stringify(v);
};

/** Python's str() of a float: exponent form below 1e-4 and from 1e16, "x.0" for integral values. */
export function pyRepr(x: number, isFloat = !Number.isInteger(x)): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  const abs = Math.abs(x);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e16)) {
    const [m, e] = x.toExponential().split("e");
    const exp = Number(e);
    return `${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  }
  const s = String(x);
  return isFloat && Number.isInteger(x) ? `${s}.0` : s;
}

/** The first pass: (gt_cot, gt_ans) before the final normalisation. */
function firstPass(example: Example, dataset: string): [string, string] {
  switch (dataset) {
    case "math":
    case "minerva_math":
    case "math500": {
      const cot = text(example, "solution", dataset);
      return [cot, extractAnswer(cot, dataset)];
    }
    case "gsm8k": {
      const parts = text(example, "answer", dataset).split("####");
      if (parts.length !== 2) throw new GoldAnswerError("gsm8k answers need exactly one '#### N'");
      return [parts[0], parts[1]];
    }
    case "svamp":
      return [text(example, "Equation", dataset), text(example, "Answer", dataset)];
    case "asdiv":
      return [text(example, "formula", dataset), text(example, "answer", dataset).replace(/\(.*?\)/gu, "")];
    case "mawps":
      return ["None", text(example, "target", dataset)];
    case "tabmwp": {
      let ans = text(example, "answer", dataset);
      if (["integer_number", "decimal_number"].includes(String(example.ans_type))) {
        const num = (s: string) => {
          const v = Number(s.trim());
          if (s.trim() === "" || Number.isNaN(v)) throw new GoldAnswerError(`tabmwp: '${s}' is not a number`);
          return v;
        };
        let v: number;
        if (ans.includes("/")) v = Math.trunc(num(ans.split("/")[0])) / Math.trunc(num(ans.split("/")[1]));
        else if (ans.includes(",")) v = num(ans.replaceAll(",", ""));
        else if (ans.includes("%")) v = num(ans.split("%")[0]) / 100;
        else v = num(ans);
        ans = pyRepr(v, true);
      }
      return [text(example, "solution", dataset), ans];
    }
    case "carp_en":
      return [text(example, "steps", dataset), text(example, "answer", dataset)];
    case "mmlu_stem":
      return ["None", "ABCD"[Number(field(example, "answer", dataset))] ?? ""];
    case "sat_math":
      return ["None", text(example, "Answer", dataset)];
    case "aqua":
      return ["None", text(example, "correct", dataset)];
    case "gaokao2023en":
    case "college_math":
    case "gaokao_math_cloze":
      return ["None", text(example, "answer", dataset).replaceAll("$", "").trim()];
    case "gaokao_math_qa":
      return ["None", text(example, "label", dataset)];
    case "gaokao2024_mix":
    case "cn_middle_school": {
      const choice = field(example, "choice_answer", dataset);
      return ["None", String(choice).length > 0 ? String(choice) : text(example, "answer", dataset)];
    }
    case "olympiadbench": {
      const answers = field(example, "final_answer", dataset);
      if (!Array.isArray(answers) || answers.length === 0)
        throw new GoldAnswerError("olympiadbench: 'final_answer' must be a list");
      return ["None", String(answers[0]).replace(/^\$+|\$+$/gu, "")];
    }
    case "aime24":
    case "amc23":
    case "cmath":
    case "gaokao2024_I":
    case "gaokao2024_II":
    case "imo2024":
      return ["None", text(example, "answer", dataset)];
    default:
      throw new GoldAnswerError(`unknown math data set '${dataset}' (known: ${MATH_DATASETS.join(", ")})`);
  }
}

/** One parse_ground_truth call on a record without `gt_cot`/`gt`. */
function parseOnce(example: Example, dataset: string): [string, string] {
  const [cot, ans] = firstPass(example, dataset);
  if (STRIP_EXCEPTIONS.includes(dataset)) {
    return [cot.trim(), ans.replaceAll("\\neq", "\\ne").replaceAll("\\leq", "\\le").replaceAll("\\geq", "\\ge")];
  }
  return [cot.trim(), stripString(ans, dataset === "carp_en")];
}

/** The gold answer the reference's evaluate() compares against: parse_ground_truth over its own output. */
export function goldAnswer(example: Example, dataset: string): string {
  const [cot, gt] = parseOnce(example, dataset);
  if (dataset === "math") return extractAnswer(cot, dataset);
  if (STRIP_EXCEPTIONS.includes(dataset)) return gt;
  return stripString(gt);
}
