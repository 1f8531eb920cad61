// Answer extraction from a model's output, per data set, as the reference's extract_answer,
// choice_answer_clean and run_execute (Uni-DPO Math/evaluation parser.py and math_eval.py).
import { lstripChars, rstripChars, stripChars, stripString } from "./normalize.js";

/** Data sets whose answers keep their unit words (the reference's STRIP_EXCEPTIONS). */
export const STRIP_EXCEPTIONS = ["carp_en", "minerva_math"];
/** Multiple-choice data sets: the answer is a letter cleaned out of the whole output. */
const CHOICE_DATASETS = ["mmlu_stem", "sat_math", "aqua", "gaokao2023"];
const CHOICES = ["A", "B", "C", "D", "E"];
/** The stop strings the reference cuts the generated text at. */
export const STOP_WORDS = ["</s>", "<|im_end|>", "<|endoftext|>"];

/** The capital letters A-E standing alone (Python's Unicode \b), in order. */
function choiceLetters(text: string): string[] {
  return [...text.toUpperCase().matchAll(/(?<![\p{L}\p{N}_])[A-E](?![\p{L}\p{N}_])/gu)].map((m) => m[0]);
}

/** choice_answer_clean: the letter a multiple-choice output settles on. */
export function choiceAnswerClean(output: string): string {
  let pred = stripChars(output, "\n");
  const triggers = ["choice is", "answer is"];
  // several triggers: a few-shot continuation; keep the first block
  if (triggers.some((t) => pred.split(t).length - 1 > 1)) pred = pred.split("\n\n")[0];
  const pieces = pred.split(/choice is|answer is/);
  const afterTrigger = pieces.length > 1;
  if (afterTrigger) pred = pieces[pieces.length - 1];
  pred = lstripChars(stripChars(rstripChars(rstripChars(stripChars(pred, "\n"), "."), "/"), " "), ":");
  const letters = choiceLetters(pred);
  const found = letters.length > 0 ? letters : [stripChars(pred.trim(), ".")];
  pred = afterTrigger ? found[0] : found[found.length - 1];
  return rstripChars(rstripChars(pred, "."), "/");
}

/** The content of the last `boxed{...}` with braces matched, or what follows a brace-less `boxed`. */
function lastBoxed(text: string): string {
  const parts = text.split("boxed");
  const after = parts[parts.length - 1];
  if (after.length === 0) return "";
  if (after[0] !== "{") return after.split("$")[0].trim();
  let depth = 1;
  let out = "";
  for (const c of after.slice(1)) {
    if (c === "{") depth++;
    else if (c === "}" && --depth === 0) break;
    out += c;
  }
  return out;
}

/** extract_answer: the raw answer text of an output for a data set, normalised by strip_string. */
export function extractAnswer(output: string, dataset: string, useLastNumber = true): string {
  const text = output.replaceAll("\u043a\u0438", "");
  if (CHOICE_DATASETS.includes(dataset)) return choiceAnswerClean(text);
  let pred: string;
  if (text.includes("final answer is $") && text.includes("$. I hope")) {
    // Minerva's "Final Answer: The final answer is $X$. I hope it is correct."
    pred = text.split("final answer is $").slice(1).join("final answer is $").split("$. I hope")[0].trim();
  } else if (text.includes("boxed")) {
    if (text.split("boxed").pop() === "") return "";
    pred = lastBoxed(text);
  } else if (text.includes("he answer is")) {
    pred = text.split("he answer is").pop()!.trim();
  } else if (text.includes("final answer is")) {
    pred = text.split("final answer is").pop()!.trim();
  } else if (text.includes("答案是")) {
    pred = text.split("答案是")[1].trim().split("\n\n")[0].trim();
  } else if (useLastNumber) {
    const numbers = text.replaceAll(",", "").match(/-?\p{Nd}*\.?\p{Nd}+/gu);
    pred = numbers ? numbers[numbers.length - 1] : "";
  } else pred = "";
  if (["sat_math", "aqua"].includes(dataset) || dataset.includes("mmlu")) {
    const letters = choiceLetters(pred);
    pred = letters.length > 0 ? letters[letters.length - 1] : stripChars(pred.trim(), ".");
  }
  pred = pred.replace(/\n\s*/gu, "");
  if (pred.startsWith(":")) pred = pred.slice(1);
  if (pred.endsWith(".")) pred = pred.slice(0, -1);
  if (pred.endsWith("/")) pred = pred.slice(0, -1);
  return stripString(pred, STRIP_EXCEPTIONS.includes(dataset));
}

/** The generated text as the reference keeps it: cut at the first stop word, trimmed. */
export function cutAtStopWords(output: string): string {
  let code = output.trim();
  for (const stop of STOP_WORDS) if (code.includes(stop)) code = code.split(stop)[0].trim();
  return code;
}

const isMultiChoice = (answer: string): boolean => [...answer].every((c) => CHOICES.includes(c));

/**
 * The prediction the reference grades: run_execute's strip_string over extract_answer, then its
 * multiple-choice fallbacks against the gold answer (a letter gold takes the output's letter).
 */
export function predictedAnswer(output: string, dataset: string, gold: string): string {
  const code = cutAtStopWords(output);
  let pred = stripString(extractAnswer(code, dataset), STRIP_EXCEPTIONS.includes(dataset));
  if (CHOICES.includes(gold) && !CHOICES.includes(pred)) pred = choiceAnswerClean(code);
  else if (isMultiChoice(gold) && !isMultiChoice(pred)) pred = [...pred].filter((c) => CHOICES.includes(c)).join("");
  return pred;
}
