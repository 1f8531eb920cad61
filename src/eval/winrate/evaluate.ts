// One call from answers to a win-rate report: every prompt's pair of answers (the model's and the
// baseline's) judged, in batches journaled as they finish, then the figures: the win rate (ties
// count half), its bootstrap interval over prompts, the length-controlled win rate, the mean
// answer lengths, and with an LLM judge how often the two orders agreed.
import type { Message } from "../../data/records.js";
import type { PromptRow } from "../../data/readers.js";
import type { AnswerPair, PairJudgement, Verdict, WinRateJudge } from "./judges.js";
import { preferenceOf } from "./judges.js";
import { identityHash, WinRateJournal, type JournalLine } from "./journal.js";
import { bootstrapCI, lengthControlledWinRate, mean } from "./stats.js";

export type WinRateMode = "pairwise" | "score";

export interface WinRateOptions {
  /** The prompts: text, a message list, or a prompt file's row (with where it came from). */
  prompts: (string | Message[] | PromptRow)[];
  /** The model's answer to each prompt. */
  answers: string[];
  /** The baseline's answer to each prompt. */
  baselineAnswers: string[];
  judge: WinRateJudge;
  /** pairwise (default): the judge compares the two answers; score: it scores each answer alone. */
  mode?: WinRateMode;
  /** Seeds the bootstrap (default 0). */
  seed?: number;
  /** Bootstrap resamples (default 1000). */
  resamples?: number;
  /** Pairs per judge call, and per journal write (default 16). */
  batchSize?: number;
  /** A journal file (or an open journal): judged pairs are read back from it instead of judged again. */
  journal?: string | WinRateJournal;
  /** The ridge on the length slope of the length-controlled fit (default 0.01; see stats.ts). */
  lengthPenalty?: number;
  onProgress?: (done: number, total: number) => void;
}

export type Winner = "model" | "baseline" | "tie";

export interface WinRateRecord {
  i: number;
  prompt: string | Message[];
  answer: string;
  baseline_answer: string;
  /** Answer lengths in characters. */
  length: number;
  baseline_length: number;
  /** 1 the model's answer won, 0 the baseline's, 0.5 a tie (or split verdicts); null unjudged. */
  preference: number | null;
  winner: Winner | null;
  /** Rewards or 1-10 ratings, [model, baseline]. */
  scores?: [number | null, number | null];
  /** An LLM judge's verdicts, [model shown as A, model shown as B]; null where unparseable. */
  verdicts?: [Verdict | null, Verdict | null];
}

export interface WinRateReport {
  mode: WinRateMode;
  judge: string;
  /** Prompts with a judgement (the win rate's denominator). */
  n: number;
  prompts: number;
  /** Mean preference over judged prompts (ties half); null when none was judged. */
  win_rate: number | null;
  /** 95% percentile bootstrap interval of the win rate over prompts. */
  ci95: [number, number] | null;
  /** The win rate a logistic fit on the standardised length difference gives at equal lengths. */
  lc_win_rate: number | null;
  wins: number;
  ties: number;
  losses: number;
  /** Mean answer length in characters, the model's and the baseline's (all prompts). */
  mean_length: number;
  baseline_mean_length: number;
  /** Prompts left unjudged (both verdicts or a score unparseable). */
  unjudged: number;
  /** Verdicts (pairwise) or ratings (score) the judge gave in no parseable form. */
  unparseable: number;
  /** LLM judge: the share of pairs, of those with both verdicts parsed, whose two orders agree on the winner. */
  position_consistency?: number | null;
  /** Score mode: mean score of each side over answers scored, with a bootstrap interval. */
  mean_score?: number | null;
  score_ci95?: [number, number] | null;
  baseline_mean_score?: number | null;
  baseline_score_ci95?: [number, number] | null;
  /** Answers cut to fit the judge's context before judging (a reward model's; absent: none). */
  truncated?: number;
  /** Verdicts the LLM judge's server refused (HTTP 400, a prompt beyond its context, say; absent: none). */
  refused?: number;
  /** Pairs read back from the journal of an interrupted run. */
  resumed: number;
  records: WinRateRecord[];
}

const promptOf = (p: string | Message[] | PromptRow) =>
  typeof p === "string" || Array.isArray(p) ? p : (p as PromptRow).prompt;
const atOf = (p: string | Message[] | PromptRow, i: number) =>
  typeof p === "string" || Array.isArray(p) ? `prompt ${i + 1}` : (p as PromptRow).at;

function winnerOf(preference: number | null): Winner | null {
  if (preference === null) return null;
  return preference > 0.5 ? "model" : preference < 0.5 ? "baseline" : "tie";
}

/** A journaled judgement read back, checked. */
function judgedFromJournal(line: JournalLine, at: string, prompts: number): PairJudgement & { i: number } {
  const bad = (what: string) => new Error(`${at}: ${what}; not a line this evaluation wrote`);
  if (line.i < 0 || line.i >= prompts) throw bad(`field 'i' must be a prompt index below ${prompts}`);
  const p = line.preference;
  if (!(p === null || (typeof p === "number" && p >= 0 && p <= 1)))
    throw bad("field 'preference' must be 0..1 or null");
  return line as unknown as PairJudgement & { i: number };
}

/**
 * Judges every pair and computes the report. Pairs go to the judge `batchSize` at a time; with a
 * journal each finished batch is written before the next starts, and the pairs an earlier run
 * finished are read back, so a killed evaluation continues.
 */
export async function evaluateWinRate(options: WinRateOptions): Promise<WinRateReport> {
  const { prompts, answers, baselineAnswers, judge } = options;
  const mode = options.mode ?? "pairwise";
  if (answers.length !== prompts.length || baselineAnswers.length !== prompts.length) {
    throw new Error(
      `evaluateWinRate: ${prompts.length} prompts need as many answers and baseline answers ` +
        `(got ${answers.length} and ${baselineAnswers.length})`,
    );
  }
  if (prompts.length === 0) throw new Error("evaluateWinRate: no prompts");
  const pairs: AnswerPair[] = prompts.map((p, i) => ({
    prompt: promptOf(p),
    answer: answers[i],
    baseline: baselineAnswers[i],
    at: atOf(p, i),
  }));
  const journal =
    typeof options.journal === "string"
      ? WinRateJournal.open(options.journal, identityHash({ judge: judge.name, mode, pairs }))
      : options.journal;
  const judged = new Map<number, PairJudgement>();
  for (const { line, at } of journal?.entries("judged") ?? []) {
    judged.set(line.i, judgedFromJournal(line, at, pairs.length));
  }
  const resumed = judged.size;
  const todo = pairs.map((_, i) => i).filter((i) => !judged.has(i));
  const batchSize = options.batchSize ?? 16;
  options.onProgress?.(judged.size, pairs.length);
  for (let start = 0; start < todo.length; start += batchSize) {
    const batch = todo.slice(start, start + batchSize);
    const results =
      mode === "score"
        ? await scoreBoth(
            judge,
            batch.map((i) => pairs[i]),
          )
        : await judge.comparePairs(batch.map((i) => pairs[i]));
    batch.forEach((i, n) => judged.set(i, results[n]));
    journal?.append(batch.map((i, n) => ({ kind: "judged", i, ...results[n] })));
    options.onProgress?.(judged.size, pairs.length);
  }
  return report(options, mode, pairs, judged, resumed);
}

/** Score mode: each answer scored alone; the pair goes to the higher score (equal scores tie). */
async function scoreBoth(judge: WinRateJudge, pairs: AnswerPair[]): Promise<PairJudgement[]> {
  const scores = await judge.scoreAnswers([
    ...pairs.map((p) => ({ prompt: p.prompt, response: p.answer, at: p.at })),
    ...pairs.map((p) => ({ prompt: p.prompt, response: p.baseline, at: p.at })),
  ]);
  return pairs.map((_, i) => {
    const [m, b] = [scores[i], scores[pairs.length + i]];
    const preference = m === null || b === null ? null : m > b ? 1 : m < b ? 0 : 0.5;
    return { preference, scores: [m, b] as [number, number], unparseable: [m, b].filter((s) => s === null).length };
  });
}

function report(
  options: WinRateOptions,
  mode: WinRateMode,
  pairs: AnswerPair[],
  judged: Map<number, PairJudgement>,
  resumed: number,
): WinRateReport {
  const boot = { seed: options.seed ?? 0, resamples: options.resamples };
  const records: WinRateRecord[] = pairs.map((p, i) => {
    const j = judged.get(i)!;
    return {
      i,
      prompt: p.prompt,
      answer: p.answer,
      baseline_answer: p.baseline,
      length: p.answer.length,
      baseline_length: p.baseline.length,
      preference: j.preference,
      winner: winnerOf(j.preference),
      ...(j.scores ? { scores: j.scores } : {}),
      ...(j.verdicts ? { verdicts: j.verdicts } : {}),
    };
  });
  const done = records.filter((r) => r.preference !== null);
  const prefs = done.map((r) => r.preference!);
  const fit =
    prefs.length > 0
      ? lengthControlledWinRate(
          prefs,
          done.map((r) => r.length - r.baseline_length),
          options.lengthPenalty,
        )
      : null;
  const out: WinRateReport = {
    mode,
    judge: options.judge.name,
    n: done.length,
    prompts: records.length,
    win_rate: prefs.length ? mean(prefs) : null,
    ci95: prefs.length ? bootstrapCI(prefs, boot) : null,
    lc_win_rate: fit ? fit.lcWinRate : null,
    wins: done.filter((r) => r.winner === "model").length,
    ties: done.filter((r) => r.winner === "tie").length,
    losses: done.filter((r) => r.winner === "baseline").length,
    mean_length: mean(records.map((r) => r.length)),
    baseline_mean_length: mean(records.map((r) => r.baseline_length)),
    unjudged: records.length - done.length,
    unparseable: [...judged.values()].reduce((s, j) => s + (j.unparseable ?? 0), 0),
    resumed,
    records,
  };
  if (options.judge.truncated) out.truncated = options.judge.truncated;
  const refused = [...judged.values()].reduce((s, j) => s + (j.refused ?? 0), 0);
  if (refused) out.refused = refused;
  if (options.judge.positional && mode === "pairwise") {
    const both = records.filter((r) => r.verdicts?.[0] && r.verdicts[1]);
    const agree = both.filter(
      (r) => winnerOf(preferenceOf(r.verdicts![0]!, "A")) === winnerOf(preferenceOf(r.verdicts![1]!, "B")),
    );
    out.position_consistency = both.length ? agree.length / both.length : null;
  }
  if (mode === "score") {
    const side = (k: 0 | 1) => records.map((r) => r.scores?.[k]).filter((s): s is number => typeof s === "number");
    const [m, b] = [side(0), side(1)];
    out.mean_score = m.length ? mean(m) : null;
    out.score_ci95 = m.length ? bootstrapCI(m, boot) : null;
    out.baseline_mean_score = b.length ? mean(b) : null;
    out.baseline_score_ci95 = b.length ? bootstrapCI(b, boot) : null;
  }
  return out;
}

const pct = (x: number | null | undefined) => (x === null || x === undefined ? "-" : `${(100 * x).toFixed(1)}%`);
const num = (x: number | null | undefined) => (x === null || x === undefined ? "-" : x.toFixed(2));

/** The report as a console table. */
export function formatWinRate(r: WinRateReport): string {
  const rows: [string, string][] = [
    ["judge", r.judge],
    ["prompts judged", `${r.n} of ${r.prompts}${r.resumed ? ` (${r.resumed} resumed)` : ""}`],
    ["win rate", `${pct(r.win_rate)}  (95% CI ${r.ci95 ? `${pct(r.ci95[0])} - ${pct(r.ci95[1])}` : "-"})`],
    ["length-controlled win rate", pct(r.lc_win_rate)],
    ["wins / ties / losses", `${r.wins} / ${r.ties} / ${r.losses}`],
    ["mean length (chars)", `${num(r.mean_length)} model, ${num(r.baseline_mean_length)} baseline`],
  ];
  if (r.position_consistency !== undefined) rows.push(["position consistency", pct(r.position_consistency)]);
  if (r.mode === "score") {
    const ci = (c: [number, number] | null | undefined) => (c ? ` (95% CI ${num(c[0])} - ${num(c[1])})` : "");
    rows.push(["mean score (model)", `${num(r.mean_score)}${ci(r.score_ci95)}`]);
    rows.push(["mean score (baseline)", `${num(r.baseline_mean_score)}${ci(r.baseline_score_ci95)}`]);
  }
  if (r.truncated) rows.push(["cut to fit the judge", `${r.truncated} answers (their start judged)`]);
  if (r.refused)
    rows.push(["refused by the judge", `${r.refused} verdicts (HTTP 400: the judge prompt beyond its context?)`]);
  if (r.unparseable || r.unjudged) {
    const what = r.mode === "score" ? "ratings" : "verdicts";
    const prompts = `${r.unjudged} prompt${r.unjudged === 1 ? "" : "s"}`;
    rows.push(["unparseable", `${r.unparseable} ${what}; ${prompts} left unjudged`]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n");
}

/** The report without its per-prompt records (what --json prints). */
export function winRateSummary(r: WinRateReport): Omit<WinRateReport, "records"> {
  const { records: _records, ...summary } = r;
  return summary;
}
