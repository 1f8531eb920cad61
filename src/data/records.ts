// Preference records: what a row of a preference file must hold, checked field by field.
// Every problem names the file, the line (or record/row) and the field, and all problems are
// found before any training starts.

import type { Message } from "../text/chat-template.js";

export type { Message };
export type Text = string | Message[];

/** Where a record came from, for error messages: "data.jsonl:12". */
export interface Source {
  file: string;
  index: number;
  unit: "line" | "record" | "row";
}

export interface PreferenceRecord {
  prompt: Text | null; // null: taken from chosen[:-1] (conversational records)
  chosen: Text;
  rejected: Text;
  scoreChosen?: number;
  scoreRejected?: number;
  /** TRL RewardTrainer's `margin` column: how far the reward model must rank chosen above rejected. */
  margin?: number;
  source: Source;
}

export function where(s: Source): string {
  return s.unit === "line" ? `${s.file}:${s.index}` : `${s.file} ${s.unit} ${s.index}`;
}

/** The most problems an error keeps: a file of millions of bad lines costs a count, not millions of messages. */
export const KEPT_PROBLEMS = 1000;

/** What checks append their problems to: an array, or a ProblemList. `length` counts every one. */
export interface Problems {
  push(...problems: string[]): unknown;
  readonly length: number;
}

/**
 * Problems as found, in order: the first KEPT_PROBLEMS of them are kept, every one is counted
 * (`length`), so reading a huge file of bad lines stays in bounded memory.
 */
export class ProblemList<T = string> {
  readonly kept: T[] = [];
  #total = 0;

  push(...problems: T[]): number {
    for (const p of problems) {
      if (this.kept.length < KEPT_PROBLEMS) this.kept.push(p);
      this.#total++;
    }
    return this.#total;
  }

  /** Adds what a DataError found, its uncounted rest included. */
  absorb(this: ProblemList<string>, e: DataError): void {
    this.push(...e.problems);
    this.#total += e.total - e.problems.length;
  }

  get length(): number {
    return this.#total;
  }
}

/** A bad input file: all problems found, each naming file, line and field. */
export class DataError extends Error {
  /** The problems kept (all of them, or a ProblemList's first KEPT_PROBLEMS). */
  readonly problems: string[];
  /** How many were found, kept or not. */
  readonly total: number;

  /**
   * `problems` as found (a ProblemList counts those it did not keep); `total` counts them all
   * where the caller kept only some. The message lists the first 20 and says so when there are
   * more ("first 20 of 40 problems").
   */
  constructor(problems: readonly string[] | ProblemList, total?: number) {
    const kept = problems instanceof ProblemList ? problems.kept : [...problems];
    const all = total ?? problems.length;
    const shown = kept.slice(0, 20);
    super(
      all === 1
        ? kept[0]!
        : `${shown.length < all ? `first ${shown.length} of ` : ""}${all} problems in the data:\n  ${shown.join("\n  ")}`,
    );
    this.name = "DataError";
    this.problems = kept;
    this.total = all;
  }
}

/** `fn` over every record; the DataErrors of all of them are gathered into one, thrown after the last. */
export function mapRecords<R, T>(records: readonly R[], fn: (record: R) => T): T[] {
  const problems = new ProblemList();
  const out: T[] = [];
  for (const record of records) {
    try {
      out.push(fn(record));
    } catch (e) {
      if (e instanceof DataError) problems.absorb(e);
      else throw e;
    }
  }
  if (problems.length) throw new DataError(problems);
  return out;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "number" && Number.isNaN(v)) return "NaN";
  return typeof v === "string" ? (v.length ? "a string" : "an empty string") : `a ${typeof v}`;
}

function checkMessages(
  v: unknown[],
  field: string,
  problems: Problems,
  at: string,
  mustEndWithAssistant: boolean,
): v is Message[] {
  let ok = true;
  v.forEach((m, i) => {
    const msg = m as Message;
    if (typeof m !== "object" || m === null || typeof msg.role !== "string" || typeof msg.content !== "string") {
      problems.push(
        `${at}: field '${field}[${i}]': expected a message {role, content} with string values, got ${describe(m)}`,
      );
      ok = false;
    }
  });
  if (ok && v.length === 0) {
    problems.push(`${at}: field '${field}': empty message list`);
    return false;
  }
  if (ok && mustEndWithAssistant) {
    const last = v[v.length - 1] as Message;
    if (last.role !== "assistant") {
      problems.push(
        `${at}: field '${field}': the last message must be the assistant's answer, got role '${last.role}'`,
      );
      ok = false;
    } else if (last.content.trim() === "") {
      problems.push(`${at}: field '${field}': empty response`);
      ok = false;
    }
  }
  return ok;
}

function checkAnswer(row: Record<string, unknown>, field: string, problems: Problems, at: string): Text | undefined {
  const v = row[field];
  if (v === undefined || v === null) {
    problems.push(`${at}: field '${field}': missing`);
    return undefined;
  }
  if (typeof v === "string") {
    if (v.trim() === "") {
      problems.push(`${at}: field '${field}': empty response`);
      return undefined;
    }
    return v;
  }
  if (Array.isArray(v)) return checkMessages(v, field, problems, at, true) ? (v as Message[]) : undefined;
  problems.push(`${at}: field '${field}': expected a string or a list of messages, got ${describe(v)}`);
  return undefined;
}

function checkScore(row: Record<string, unknown>, field: string, problems: Problems, at: string): number | undefined {
  const v = row[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number") {
    problems.push(`${at}: field '${field}': expected a number, got ${describe(v)}`);
    return undefined;
  }
  if (!Number.isFinite(v)) {
    problems.push(`${at}: field '${field}': must be finite, got ${v}`);
    return undefined;
  }
  // Training reads scores as float32, where a JSON number past ±3.4028e38 becomes infinite.
  if (!Number.isFinite(Math.fround(v))) {
    problems.push(`${at}: field '${field}': ${v} overflows float32 (largest ${FLOAT32_MAX})`);
    return undefined;
  }
  return v;
}

/** The largest finite float32. */
const FLOAT32_MAX = 3.4028234663852886e38;

/** Validates one raw row; appends problems and returns null when the row is unusable. */
export function toRecord(row: unknown, source: Source, problems: Problems): PreferenceRecord | null {
  const at = where(source);
  if (typeof row !== "object" || row === null || Array.isArray(row)) {
    problems.push(`${at}: expected an object with prompt, chosen and rejected, got ${describe(row)}`);
    return null;
  }
  const r = row as Record<string, unknown>;
  const before = problems.length;
  const chosen = checkAnswer(r, "chosen", problems, at);
  const rejected = checkAnswer(r, "rejected", problems, at);
  let prompt: Text | null = null;
  const p = r.prompt;
  if (typeof p === "string") prompt = p;
  else if (Array.isArray(p)) prompt = checkMessages(p, "prompt", problems, at, false) ? (p as Message[]) : null;
  else if (p !== undefined && p !== null)
    problems.push(`${at}: field 'prompt': expected a string or a list of messages, got ${describe(p)}`);
  else if (typeof chosen === "string" || typeof rejected === "string") problems.push(`${at}: field 'prompt': missing`);
  if (Array.isArray(chosen) !== Array.isArray(rejected) && chosen !== undefined && rejected !== undefined) {
    problems.push(`${at}: fields 'chosen' and 'rejected' must both be strings or both be message lists`);
  }
  if (prompt === null && Array.isArray(chosen) && chosen.length < 2) {
    problems.push(
      `${at}: field 'chosen': without a 'prompt' field, chosen must hold the conversation before the answer`,
    );
  }
  const scoreChosen = checkScore(r, "score_chosen", problems, at);
  const scoreRejected = checkScore(r, "score_rejected", problems, at);
  const margin = Math.fround(Math.fround(scoreChosen ?? 0) - Math.fround(scoreRejected ?? 0));
  if (!Number.isFinite(margin)) {
    problems.push(
      `${at}: fields 'score_chosen' and 'score_rejected': their difference (the score margin) ` + "overflows float32",
    );
  }
  if ((scoreChosen === undefined) !== (scoreRejected === undefined) && problems.length === before) {
    problems.push(
      `${at}: field '${scoreChosen === undefined ? "score_chosen" : "score_rejected"}': missing (the other score is present)`,
    );
  }
  const rewardMargin = checkScore(r, "margin", problems, at);
  if (problems.length > before) return null;
  const marginField = rewardMargin === undefined ? {} : { margin: rewardMargin };
  return { prompt, chosen: chosen!, rejected: rejected!, scoreChosen, scoreRejected, ...marginField, source };
}
