// Grading a file of outputs generated elsewhere: JSON Lines with `prediction` and `answer` (and
// optionally `dataset`), each graded by gradeMath; with an output path, every line is written back
// with `extracted`, `gold` and `correct` added.
import { existsSync, realpathSync } from "node:fs";
import { readLines } from "../../data/lines.js";
import { writeJsonLinesAtomic } from "../../util/files.js";
import { DataError } from "../../data/records.js";
import { gradeMath } from "./grade.js";
import { MATH_DATASETS } from "./ground-truth.js";

const bad = (problem: string) => new DataError([problem]);

export interface PredictionsOptions {
  /** The data set for lines without their own `dataset` (default "math"). */
  dataset?: string;
  /** Where to write the graded lines; must not exist yet. */
  out?: string;
  /** Milliseconds one symbolic comparison may take. */
  timeoutMs?: number;
  onProgress?: (done: number) => void;
}

export interface PredictionsResult {
  accuracy: number;
  n: number;
  correct: number;
  /** Lines whose extracted answer is empty (no box, trigger or number). */
  empty: number;
  /** Accuracy per data set, when the file mixes several. */
  perDataset: Record<string, { accuracy: number; n: number }>;
}

function checkDataset(name: unknown, where: string): string {
  if (typeof name !== "string" || !(MATH_DATASETS as readonly string[]).includes(name)) {
    throw bad(`${where}: unknown math data set ${JSON.stringify(name)} (known: ${MATH_DATASETS.join(", ")})`);
  }
  return name;
}

/** Grades every line of `file`; a bad line stops the run with its file, line and field named. */
export function gradePredictionsFile(file: string, options: PredictionsOptions = {}): PredictionsResult {
  const fallback = checkDataset(options.dataset ?? "math", "--dataset");
  if (options.out !== undefined) {
    if (existsSync(options.out)) {
      const same = realpathSync(options.out) === realpathSync(file);
      throw bad(`${options.out} already exists${same ? " (it is the predictions file)" : ""}; choose a new --out path`);
    }
  }
  // the graded lines are written whole at the end: a bad line leaves no partial file behind
  const graded: unknown[] = [];
  const groups = new Map<string, { n: number; correct: number }>();
  let n = 0,
    correct = 0,
    empty = 0;
  for (const line of readLines(file)) {
    if ("problem" in line) throw bad(line.problem);
    if (line.text.trim() === "") continue;
    const where = `${file}:${line.number}`;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line.text);
    } catch (e) {
      throw bad(`${where}: not valid JSON (${(e as Error).message})`);
    }
    if (record === null || typeof record !== "object" || Array.isArray(record))
      throw bad(`${where}: expected a JSON object`);
    if (typeof record.prediction !== "string") throw bad(`${where}: 'prediction' must be a string`);
    const answer = record.answer;
    if (typeof answer !== "string" && typeof answer !== "number")
      throw bad(`${where}: 'answer' must be a string or a number`);
    const dataset = record.dataset === undefined ? fallback : checkDataset(record.dataset, `${where}: 'dataset'`);
    let grade;
    try {
      grade = gradeMath(record.prediction, typeof answer === "number" ? String(answer) : answer, {
        dataset,
        timeoutMs: options.timeoutMs,
      });
    } catch (e) {
      throw bad(`${where}: ${(e as Error).message}`);
    }
    n++;
    if (grade.correct) correct++;
    if (grade.extracted === "") empty++;
    const g = groups.get(dataset) ?? { n: 0, correct: 0 };
    g.n++;
    if (grade.correct) g.correct++;
    groups.set(dataset, g);
    if (options.out !== undefined) graded.push({ ...record, ...grade });
    options.onProgress?.(n);
  }
  if (n === 0) throw bad(`${file}: no predictions`);
  if (options.out !== undefined) writeJsonLinesAtomic(options.out, graded);
  const perDataset = Object.fromEntries([...groups].map(([k, g]) => [k, { accuracy: g.correct / g.n, n: g.n }]));
  return { accuracy: correct / n, n, correct, empty, perDataset };
}

/** The console summary. */
export function formatPredictions(r: PredictionsResult): string {
  const lines = [`accuracy ${(100 * r.accuracy).toFixed(1)}% (${r.correct}/${r.n}; ${r.empty} without an answer)`];
  const sets = Object.entries(r.perDataset);
  if (sets.length > 1)
    for (const [name, g] of sets) lines.push(`  ${name.padEnd(16)} ${(100 * g.accuracy).toFixed(1)}% of ${g.n}`);
  return lines.join("\n");
}
