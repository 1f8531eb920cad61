// gradeMath: the reference's verdict on one model output against a benchmark answer.
import { predictedAnswer } from "./extract.js";
import { goldAnswer, GoldAnswerError, MATH_DATASETS } from "./ground-truth.js";
import { mathEqual } from "./equal.js";

export interface GradeOptions {
  /** The benchmark, as the reference names it (default "math"); it picks extraction and gold-answer rules. */
  dataset?: string;
  /** Milliseconds one symbolic comparison may take (default 3000). */
  timeoutMs?: number;
}

export interface MathGrade {
  /** The answer taken from the output, normalised as the reference normalises it. */
  extracted: string;
  /** The gold answer, normalised likewise. */
  gold: string;
  correct: boolean;
}

/** A benchmark record holding the answer text in the field the data set's parser reads. */
export function recordFor(answer: string, dataset: string): Record<string, unknown> {
  switch (dataset) {
    // a worked solution gives its last box; a bare answer is the answer itself
    case "math":
    case "math500":
    case "minerva_math":
      return { solution: answer.includes("boxed") ? answer : `\\boxed{${answer}}` };
    case "gsm8k":
      return { answer: answer.includes("####") ? answer : `####${answer}` };
    case "svamp":
      return { Equation: "", Answer: answer };
    case "asdiv":
      return { formula: "", answer };
    case "mawps":
      return { target: answer };
    case "tabmwp":
      return { solution: "", answer };
    case "carp_en":
      return { steps: "", answer };
    case "mmlu_stem":
      return { answer: "ABCD".indexOf(answer.trim()) };
    case "sat_math":
      return { Answer: answer };
    case "aqua":
      return { correct: answer };
    case "gaokao_math_qa":
      return { label: answer };
    case "gaokao2024_mix":
    case "cn_middle_school":
      return { choice_answer: "", answer };
    case "olympiadbench":
      return { final_answer: [answer] };
    default:
      return { answer };
  }
}

/**
 * Grades `prediction` (a model's whole output) against `answer`: the benchmark's answer text
 * (a GSM8K "... #### 72" answer or a MATH solution with a box are read as the reference reads
 * them), or a whole benchmark record, parsed by the data set's own rules.
 */
export function gradeMath(
  prediction: string,
  answer: string | Record<string, unknown>,
  options: GradeOptions = {},
): MathGrade {
  const dataset = options.dataset ?? "math";
  if (!(MATH_DATASETS as readonly string[]).includes(dataset)) {
    throw new GoldAnswerError(`unknown math data set '${dataset}' (known: ${MATH_DATASETS.join(", ")})`);
  }
  const gold = goldAnswer(typeof answer === "string" ? recordFor(answer, dataset) : answer, dataset);
  return gradeAgainstGold(prediction, gold, dataset, options.timeoutMs);
}

/** The verdict on an output against a gold answer already parsed by goldAnswer. */
export function gradeAgainstGold(prediction: string, gold: string, dataset: string, timeoutMs?: number): MathGrade {
  const extracted = predictedAnswer(prediction, dataset, gold);
  return { extracted, gold, correct: mathEqual(extracted, gold, { timeoutMs }) };
}
