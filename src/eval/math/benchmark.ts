// Math benchmarks, as the reference's math_eval.py runs them: each problem prompted with the
// qwen25-math-cot template (or another), K generations (greedy by default, 3000 new tokens at
// most), each graded by the reference's rules, then accuracy (pass@1), pass@k (the unbiased
// estimator) and maj@k, overall and per subject and level. Every generation and verdict goes to a
// journal, so an interrupted run continues where it stopped.
import { createHash } from "node:crypto";
import { basename, dirname } from "node:path";
import type { CausalLM } from "../../models/causal-lm.js";
import type { Message } from "../../text/chat-template.js";
import type { Tokenizer } from "../../text/index.js";
import { asGenerator, isGenerator } from "../../generation/local.js";
import { promptIds } from "../../generation/prompt.js";
import type { Generator } from "../../generation/types.js";
import { openRecordJournal } from "../../data/journal.js";
import { readRows } from "../../data/readers.js";
import { DataError, where } from "../../data/records.js";
import { createGrader, defaultGradeThreads } from "./grade-pool.js";
import { cutAtStopWords, STOP_WORDS } from "./extract.js";
import { recordFor } from "./grade.js";
import { goldAnswer, GoldAnswerError, MATH_DATASETS } from "./ground-truth.js";

/** The reference's qwen25-math-cot prompt (math_eval.py's default prompt type), with {input} for the question. */
export const QWEN25_MATH_COT =
  "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n" +
  "<|im_start|>user\n{input} Let's think step by step and output the final answer within \\boxed{}<|im_end|>\n" +
  "<|im_start|>assistant\n";

export interface Problem {
  idx: number;
  question: string;
  gold: string;
  subject?: string;
  level?: string;
}

export interface ProblemResult extends Problem {
  outputs: string[];
  extracted: string[];
  correct: boolean[];
  tokens: number[];
}

export interface GroupMetrics {
  n: number;
  accuracy: number;
  pass_at_k: Record<string, number>;
  maj_at_k: number;
}

export interface BenchmarkResult extends GroupMetrics {
  dataset: string;
  file: string;
  samples: number;
  /** Per subject and per level, when the data have them. */
  groups: Record<string, Record<string, GroupMetrics>>;
  /** Problems finished by an earlier run and read back from the journal. */
  resumed: number;
  seconds: number;
  problems_per_second: number;
  generated_tokens: number;
  /** Threads that graded beside generation at the end of the run (0: the main thread). */
  grade_threads: number;
}

export interface BenchmarkOptions {
  /** The reference's name of the benchmark; default: the file's (or its folder's) name when it is one. */
  dataset?: string;
  /** Generations per problem (default 1). */
  samples?: number;
  /** 0 (default) decodes greedily, as the reference. */
  temperature?: number;
  topP?: number;
  /** New tokens per generation (default 3000, the reference's max_tokens_per_call), never past the model's context. */
  maxNewTokens?: number;
  /**
   * Prompt text with {input} for the question (default the qwen25-math-cot template); "chat": the
   * tokenizer's chat template.
   */
  promptTemplate?: string;
  /** Generations per batch (default 16). */
  batchSize?: number;
  /**
   * Threads grading beside generation; 0 grades on the main thread. "auto" (default) grades on
   * the main thread until grading takes over a tenth of the time of generating, then on the
   * cores left (at most 4): a thread costs about half a second to start and competes for a core,
   * which cheap grading does not repay.
   */
  gradeThreads?: number | "auto";
  /** Seed of the sampler (default 0); each generation has its own stream, so resuming changes nothing. */
  seed?: number;
  /** The journal: every problem's generations and verdicts, one JSON line each; resumed when it exists. */
  out?: string;
  /** More identity for the journal (the model's directory). */
  identity?: Record<string, unknown>;
  onProgress?: (done: number, total: number) => void;
  /** Only these problems (indices in the file), and the figures theirs: one rank's share of a generation eval. */
  only?: number[];
}

/** The data set a file's name gives (".../math500/test.jsonl", "aime24.jsonl"), or null. */
export function datasetOfFile(file: string): string | null {
  const names = [basename(file).replace(/\.(jsonl|json|parquet)$/i, ""), basename(dirname(file))];
  return names.find((n) => (MATH_DATASETS as readonly string[]).includes(n)) ?? null;
}

const QUESTION_KEYS = ["question", "problem", "Question", "input"];
const text = (v: unknown): string | undefined =>
  typeof v === "string" ? v : typeof v === "number" ? String(v) : undefined;

/** The problems of a benchmark file: question, gold answer (the data set's rules), subject and level. */
export async function readBenchmark(file: string, dataset: string): Promise<Problem[]> {
  const rows = await readRows(file);
  if (rows.length === 0) throw new DataError([`${file}: no problems`]);
  return rows.map(({ row, source }, idx) => {
    const at = where(source);
    if (row === null || typeof row !== "object" || Array.isArray(row))
      throw new DataError([`${at}: expected an object`]);
    const record = row as Record<string, unknown>;
    const key = QUESTION_KEYS.find((k) => typeof record[k] === "string");
    if (!key)
      throw new DataError([`${at}: no question (a string field ${QUESTION_KEYS.map((k) => `'${k}'`).join(", ")})`]);
    let gold: string;
    try {
      gold = goldAnswer(record, dataset);
    } catch (e) {
      // MATH-500 style records may carry the final answer without the worked solution
      const answer = text(record.answer);
      if (!(e instanceof GoldAnswerError) || answer === undefined)
        throw new DataError([`${at}: ${(e as Error).message}`]);
      gold = goldAnswer(recordFor(answer, dataset), dataset);
    }
    let question = record[key] as string;
    // the reference's parse_question: yes/no and true/false questions say so
    if (["true", "false"].includes(gold.toLowerCase())) question += " (True or False)";
    if (["yes", "no"].includes(gold.toLowerCase())) question += " (Yes or No)";
    const subject = text(record.subject) ?? text(record.type);
    const level = text(record.level);
    return { idx, question: question.trim(), gold, ...(subject ? { subject } : {}), ...(level ? { level } : {}) };
  });
}

/** A question as the sampler gets it: the template's text, or a user message for "chat" (the model's chat template). */
export function questionPrompt(question: string, template: string): string | Message[] {
  if (template === "chat") return [{ role: "user", content: question }];
  return template.replaceAll("{input}", question);
}

/** Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k). */
export function passAtK(n: number, c: number, k: number): number {
  if (n - c < k) return 1;
  let p = 1;
  for (let i = n - c + 1; i <= n; i++) p *= 1 - k / i;
  return 1 - p;
}

/** maj@k: whether the most frequent extracted answer (ties: the one seen first) is correct. */
export function majorityCorrect(extracted: string[], correct: boolean[]): boolean {
  const counts = new Map<string, number>();
  extracted.forEach((e) => counts.set(e, (counts.get(e) ?? 0) + 1));
  let best = 0;
  extracted.forEach((e, i) => {
    if (counts.get(e)! > counts.get(extracted[best])!) best = i;
  });
  return correct[best];
}

/** The k values reported: 1, 2, 4, ... below K, and K. */
const kValues = (samples: number): number[] => {
  const ks: number[] = [];
  for (let k = 1; k < samples; k *= 2) ks.push(k);
  return [...ks, samples];
};

export function metricsOf(results: ProblemResult[], samples: number): GroupMetrics {
  const n = results.length;
  const mean = (f: (r: ProblemResult) => number) => results.reduce((s, r) => s + f(r), 0) / Math.max(n, 1);
  const count = (r: ProblemResult) => r.correct.filter(Boolean).length;
  return {
    n,
    accuracy: mean((r) => count(r) / r.correct.length),
    pass_at_k: Object.fromEntries(
      kValues(samples).map((k) => [String(k), mean((r) => passAtK(r.correct.length, count(r), k))]),
    ),
    maj_at_k: mean((r) => Number(majorityCorrect(r.extracted, r.correct))),
  };
}

function groupsOf(results: ProblemResult[], samples: number): BenchmarkResult["groups"] {
  const groups: BenchmarkResult["groups"] = {};
  for (const key of ["subject", "level"] as const) {
    const by = new Map<string, ProblemResult[]>();
    for (const r of results) if (r[key] !== undefined) by.set(r[key]!, [...(by.get(r[key]!) ?? []), r]);
    if (by.size > 0)
      groups[key] = Object.fromEntries(
        [...by].sort(([a], [b]) => a.localeCompare(b)).map(([v, rs]) => [v, metricsOf(rs, samples)]),
      );
  }
  return groups;
}

/** A 32-bit seed for generation j of problem idx. */
const rowSeed = (seed: number, idx: number, j: number): number =>
  createHash("sha256").update(`${seed}:${idx}:${j}`).digest().readUInt32LE(0);

/**
 * Runs one benchmark file through a sampler: the local engine or an endpoint. With the model's
 * tokenizer, answers are sized to the model's context and problems are batched by prompt length in
 * tokens (else in characters, and the server caps the answers). A batch's outputs can be graded on
 * worker threads while the next batch generates (`gradeThreads`).
 */
export async function evaluateMathBenchmark(
  sampler: CausalLM | Generator,
  tokenizer: Tokenizer | null,
  file: string,
  options: BenchmarkOptions = {},
): Promise<{ result: BenchmarkResult; problems: ProblemResult[] }> {
  const dataset = options.dataset ?? datasetOfFile(file);
  if (!dataset)
    throw new DataError([`${file}: which benchmark is it? Name it with --dataset (${MATH_DATASETS.join(", ")})`]);
  if (!(MATH_DATASETS as readonly string[]).includes(dataset)) {
    throw new DataError([`unknown math data set '${dataset}' (known: ${MATH_DATASETS.join(", ")})`]);
  }
  if (!isGenerator(sampler) && !tokenizer) throw new Error("evaluateMathBenchmark: a local model needs its tokenizer");
  const generator = isGenerator(sampler) ? sampler : asGenerator(sampler, tokenizer!);
  const samples = options.samples ?? 1;
  const temperature = options.temperature ?? 0;
  const topP = temperature === 0 ? 1 : (options.topP ?? 1);
  const maxNew = options.maxNewTokens ?? 3000;
  const template = options.promptTemplate ?? QWEN25_MATH_COT;
  const batchSize = options.batchSize ?? 16;
  const seed = options.seed ?? 0;
  const problems = await readBenchmark(file, dataset);
  const chosen = options.only ? problems.filter((p) => options.only!.includes(p.idx)) : problems;
  const prompts = problems.map((p) => questionPrompt(p.question, template));
  // prompt lengths: tokens when the tokenizer is known, else characters (only for ordering)
  const lengths = prompts.map((p) =>
    tokenizer ? promptIds(tokenizer, p).length : typeof p === "string" ? p.length : p[0].content.length,
  );
  const identity = createHash("sha256")
    .update(
      JSON.stringify({
        problems,
        dataset,
        samples,
        temperature,
        topP,
        maxNew,
        template,
        seed,
        ...options.identity,
      }),
    )
    .digest("hex");
  const journal = options.out
    ? openRecordJournal<ProblemResult>(options.out, {
        kind: "omni-dpo eval math",
        identity,
        key: (r) => r.idx,
        otherWork:
          "this file holds another evaluation (other problems, model or settings); " +
          "choose another --out, or run with the settings it was made with to continue it",
      })
    : null;
  const done = journal?.done ?? new Map<number, ProblemResult>();
  const resumed = done.size;
  const context = tokenizer ? generator.maxPositions : undefined;
  const room = (i: number) => (context === undefined ? maxNew : Math.min(maxNew, context - lengths[i]));
  // shortest prompts first, so a batch's rows are of similar length
  const order = chosen.map((p) => p.idx).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const tooLong = order.find((i) => !done.has(i) && room(i) < 1);
  if (tooLong !== undefined) {
    throw new DataError([
      `${file}: problem ${tooLong + 1}'s prompt (${lengths[tooLong]} tokens) fills the model's ${context} positions`,
    ]);
  }
  const perBatch = Math.max(1, Math.floor(batchSize / samples));
  const threads = options.gradeThreads ?? "auto";
  let gradeThreads = threads === "auto" ? 0 : threads;
  let grader = createGrader(gradeThreads);
  let adaptive = threads === "auto" && defaultGradeThreads() > 0;
  let batches = 0;
  const spent = { grading: 0, generating: 0 };
  const start = Date.now();
  let generatedTokens = 0;
  options.onProgress?.(done.size, chosen.length);
  // the grading and journaling of the batches so far, in order; a failure surfaces at the next await of it
  let graded: Promise<void> = Promise.resolve();
  try {
    for (let b = 0; b < order.length; b += perBatch) {
      const todo = order.slice(b, b + perBatch).filter((i) => !done.has(i));
      if (todo.length === 0) continue;
      const generating = performance.now();
      const samplesOf = await generator.generate(
        todo.map((i) => ({
          prompt: prompts[i],
          ...(temperature > 0
            ? { seeds: Array.from({ length: samples }, (_, j) => rowSeed(seed, i, j)) }
            : { n: samples }),
          maxTokens: room(i),
          temperature,
          topP,
          stop: STOP_WORDS,
        })),
      );
      const grading = performance.now();
      const outputs = samplesOf.map((ss) => ss.map((s) => cutAtStopWords(s.text)));
      const grades = Promise.all(todo.map((i, n) => grader.grade(outputs[n], problems[i].gold, dataset)));
      // on the main thread, grading is done here: worth moving to threads when it rivals generating,
      // judged over two batches or more, from the second (the first also starts the Compute Engine)
      if (adaptive && batches++ > 0) {
        spent.grading += performance.now() - grading;
        spent.generating += grading - generating;
        if (batches > 2 && spent.grading > 0.1 * spent.generating) {
          gradeThreads = defaultGradeThreads();
          grader = createGrader(gradeThreads);
          adaptive = false;
        }
      }
      const batch = Promise.all([grades, graded]).then(([verdicts]) => {
        const finished = todo.map((i, n) => ({
          ...problems[i],
          outputs: outputs[n],
          extracted: verdicts[n].map((g) => g.extracted),
          correct: verdicts[n].map((g) => g.correct),
          tokens: samplesOf[n].map((s) => s.tokens),
        }));
        generatedTokens += finished.reduce((s, f) => s + f.tokens.reduce((t, x) => t + x, 0), 0);
        if (journal) journal.append(finished);
        else for (const f of finished) done.set(f.idx, f);
        options.onProgress?.(done.size, chosen.length);
      });
      batch.catch(() => {}); // awaited below; this only marks the rejection as handled meanwhile
      graded = batch;
      // let finished grades land (a local generator holds the thread for a whole batch)
      await new Promise((resolve) => setImmediate(resolve));
    }
    await graded;
  } finally {
    await grader.close();
  }
  const seconds = (Date.now() - start) / 1000;
  const results = chosen.map((p) => done.get(p.idx)!);
  const result: BenchmarkResult = {
    dataset,
    file,
    samples,
    ...metricsOf(results, samples),
    groups: groupsOf(results, samples),
    resumed,
    seconds,
    problems_per_second: (chosen.length - resumed) / Math.max(seconds, 1e-9),
    generated_tokens: generatedTokens,
    grade_threads: gradeThreads,
  };
  return { result, problems: results };
}

/** The console table: one row per benchmark, then their average (the reference's summary). */
export function formatBenchmarks(results: BenchmarkResult[]): string {
  const pct = (x: number) => (100 * x).toFixed(1);
  const k = results[0]?.samples ?? 1;
  const head = ["benchmark", "n", "acc", ...(k > 1 ? [`pass@${k}`, `maj@${k}`] : [])];
  const row = (r: { name: string; n: number | string; acc: number; pass: number; maj: number }) => [
    r.name,
    String(r.n),
    pct(r.acc),
    ...(k > 1 ? [pct(r.pass), pct(r.maj)] : []),
  ];
  const rows = results.map((r) =>
    row({ name: r.dataset, n: r.n, acc: r.accuracy, pass: r.pass_at_k[String(k)], maj: r.maj_at_k }),
  );
  if (results.length > 1) {
    const avg = (f: (r: BenchmarkResult) => number) => results.reduce((s, r) => s + f(r), 0) / results.length;
    rows.push(
      row({
        name: "avg",
        n: "",
        acc: avg((r) => r.accuracy),
        pass: avg((r) => r.pass_at_k[String(k)] ?? 0),
        maj: avg((r) => r.maj_at_k),
      }),
    );
  }
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  const line = (cells: string[]) =>
    cells.map((x, c) => (c === 0 ? x.padEnd(widths[c]) : x.padStart(widths[c]))).join("  ");
  const out = [line(head), ...rows.map(line)];
  for (const r of results) {
    for (const [key, groups] of Object.entries(r.groups)) {
      out.push("", `${r.dataset} by ${key}:`);
      for (const [name, g] of Object.entries(groups))
        out.push(`  ${name.padEnd(24)} ${pct(g.accuracy).padStart(5)}  (${g.n})`);
    }
  }
  return out.join("\n");
}
