// Reading preference files: JSON Lines, JSON arrays and Parquet. Rows keep their provenance
// (file and line, record or row number) so every later error can point at them. Text is strict
// UTF-8 (a BOM at the start of a file is allowed) and sizes are bounded, so a corrupt or
// oversized file is an error naming file and line, never replacement characters or a crash.
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { extname } from "node:path";
import { asyncBufferFromFile, parquetReadObjects } from "hyparquet";
import { decodeUtf8, Utf8Error } from "../util/utf8.js";
import { checkReadable, MAX_LINE_BYTES, readLines, sizeLimit } from "./lines.js";
import {
  DataError,
  KEPT_PROBLEMS,
  ProblemList,
  toRecord,
  where,
  type Message,
  type PreferenceRecord,
  type Source,
} from "./records.js";

export interface RawRow {
  row: unknown;
  source: Source;
}

/** The most bytes a JSON array file may hold: it is parsed whole (256 MiB). */
export const MAX_JSON_ARRAY_BYTES = 256 * 2 ** 20;

export interface ReadOptions {
  /** The most bytes one JSON line (one record, one prompt) may hold (default MAX_LINE_BYTES, 64 MiB). */
  maxLineBytes?: number;
  /** The most bytes a JSON array file may hold (default MAX_JSON_ARRAY_BYTES, 256 MiB). */
  maxJsonArrayBytes?: number;
}

/** Reads every row of a .jsonl, .json or .parquet file, unvalidated. */
export async function readRows(file: string, options: ReadOptions = {}): Promise<RawRow[]> {
  const { rows, problems } = await readRowsCollecting(file, options);
  if (problems.length)
    throw new DataError(
      problems.kept.map((p) => p.problem),
      problems.length,
    );
  return rows;
}

interface LineProblem {
  index: number;
  problem: string;
}

/** readRows, but JSON Lines that cannot be read come back as problems beside the rows that can. */
async function readRowsCollecting(
  file: string,
  options: ReadOptions,
): Promise<{ rows: RawRow[]; problems: ProblemList<LineProblem> }> {
  if (!existsSync(file)) throw new DataError([`${file}: file not found`]);
  checkReadable(file, statSync(file));
  const ext = extname(file).toLowerCase();
  if (ext === ".parquet") return { rows: await readParquet(file), problems: new ProblemList() };
  if (ext === ".json" && firstNonSpaceByte(file) === 0x5b /* [ */) {
    return {
      rows: readJsonArray(file, options.maxJsonArrayBytes ?? MAX_JSON_ARRAY_BYTES),
      problems: new ProblemList(),
    };
  }
  if (ext === ".json") {
    const read = readJsonLines(file, options.maxLineBytes ?? MAX_LINE_BYTES);
    checkNotOneObject(file, read, options.maxJsonArrayBytes ?? MAX_JSON_ARRAY_BYTES);
    return read;
  }
  if (ext === ".jsonl" || ext === ".ndjson") return readJsonLines(file, options.maxLineBytes ?? MAX_LINE_BYTES);
  throw new DataError([`${file}: unknown format '${ext}'; expected .jsonl, .json or .parquet`]);
}

function readJsonLines(file: string, maxLineBytes: number): { rows: RawRow[]; problems: ProblemList<LineProblem> } {
  const rows: RawRow[] = [];
  const problems = new ProblemList<LineProblem>();
  for (const line of readLines(file, maxLineBytes)) {
    if ("problem" in line) {
      problems.push({ index: line.number, problem: line.problem });
      continue;
    }
    if (line.text.trim() === "") continue;
    try {
      rows.push({ row: JSON.parse(line.text), source: { file, index: line.number, unit: "line" } });
    } catch (e) {
      problems.push({
        index: line.number,
        problem: `${file}:${line.number}: not valid JSON (${(e as Error).message})`,
      });
    }
  }
  return { rows, problems };
}

/**
 * A .json file that is one JSON object, not records: its records are elsewhere (under a key, or
 * the wrong file). Read as JSON Lines it would be one record missing every field, or lines that
 * are not JSON; say what it is instead.
 */
function checkNotOneObject(
  file: string,
  read: { rows: RawRow[]; problems: ProblemList<LineProblem> },
  maxBytes: number,
): void {
  const isRecordless = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v) && !("chosen" in v) && !("rejected" in v);
  let top: unknown;
  if (read.rows.length === 1 && read.problems.length === 0) top = read.rows[0]!.row;
  else if (read.problems.kept[0]?.index === 1 && statSync(file).isFile() && statSync(file).size <= maxBytes) {
    try {
      top = JSON.parse(decodeUtf8(readBounded(file, maxBytes), true));
    } catch {
      return;
    } // not one object: JSON Lines after all
  }
  if (!isRecordless(top)) return;
  const keys = Object.keys(top);
  const arrays = keys.filter((k) => Array.isArray(top[k]));
  throw new DataError([
    `${file}: expected an array of records (or JSON Lines, one record per line); its top level is an object ` +
      `with ${
        keys.length
          ? `keys ${keys
              .slice(0, 5)
              .map((k) => `'${k}'`)
              .join(", ")}${keys.length > 5 ? ", ..." : ""}`
          : "no keys"
      }` +
      (arrays.length ? ` (are the records in '${arrays[0]}'?)` : ""),
  ]);
}

/** The first byte after a BOM and JSON white space (-1 for none): "[" means a JSON array, anything else JSON Lines. */
function firstNonSpaceByte(file: string): number {
  const fd = openSync(file, "r");
  try {
    const chunk = Buffer.alloc(64 * 1024);
    let offset = 0;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) return -1;
      let i = offset === 0 && n >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf ? 3 : 0;
      for (; i < n; i++) if (![0x20, 0x09, 0x0a, 0x0d].includes(chunk[i])) return chunk[i];
      offset += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** The file's bytes, read until its end, refusing more than `maxBytes` (a pipe's size is not known before). */
function readBounded(file: string, maxBytes: number): Buffer {
  const fd = openSync(file, "r");
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(2 ** 20);
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) return Buffer.concat(chunks, total);
      total += n;
      if (total > maxBytes) {
        throw new DataError([
          `${file}: a JSON array file is parsed whole and may hold at most ${sizeLimit(maxBytes)}; this one holds more`,
        ]);
      }
      chunks.push(chunk.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
}

function readJsonArray(file: string, maxBytes: number): RawRow[] {
  const size = statSync(file).size;
  if (size > maxBytes) {
    throw new DataError([
      `${file}: a JSON array file is parsed whole and may hold at most ${sizeLimit(maxBytes)}, this one holds ${size} bytes; ` +
        "write the records as JSON Lines (.jsonl, one per line), which are read line by line",
    ]);
  }
  const bytes = readBounded(file, maxBytes);
  let text: string;
  try {
    text = decodeUtf8(bytes, true);
  } catch (e) {
    if (!(e instanceof Utf8Error)) throw e;
    throw new DataError([`${file}:${e.line}: invalid UTF-8 at byte ${e.byteOffset} of the file`]);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new DataError([`${file}: not valid JSON (${(e as Error).message})`]);
  }
  if (!Array.isArray(data)) throw new DataError([`${file}: expected a JSON array of records`]);
  return data.map((row, i) => ({ row, source: { file, index: i + 1, unit: "record" as const } }));
}

/** A Parquet string whose bytes are not UTF-8, kept so the error can name its row and field. */
class InvalidString {
  constructor(readonly byteOffset: number) {}
}

/** Parquet's strings, decoded strictly (hyparquet's own decoder would replace invalid bytes with U+FFFD). */
function parquetString(bytes: Uint8Array): string | InvalidString {
  try {
    return decodeUtf8(bytes);
  } catch (e) {
    if (e instanceof Utf8Error) return new InvalidString(e.byteOffset);
    throw e;
  }
}

async function readParquet(file: string): Promise<RawRow[]> {
  let rows: Record<string, unknown>[];
  try {
    rows = (await parquetReadObjects({
      file: await asyncBufferFromFile(file),
      parsers: { stringFromBytes: parquetString },
    })) as Record<string, unknown>[];
  } catch (e) {
    throw new DataError([`${file}: cannot read Parquet (${(e as Error).message})`]);
  }
  const problems = new ProblemList();
  const out = rows.map((row, i) => {
    const source = { file, index: i + 1, unit: "row" as const };
    return {
      row: plain(row, (field, bad) =>
        problems.push(`${file} row ${i + 1}: field '${field}': invalid UTF-8 at byte ${bad.byteOffset} of the value`),
      ),
      source,
    };
  });
  if (problems.length) throw new DataError(problems);
  return out;
}

/**
 * Parquet values as plain JSON values: BigInt integer columns become numbers (scores and text
 * want them), and strings that were not UTF-8 are reported with their field path ("chosen[1].content").
 */
function plain(v: unknown, invalid: (field: string, bad: InvalidString) => void, field = ""): unknown {
  if (typeof v === "bigint") return Number(v);
  if (v instanceof InvalidString) {
    invalid(field, v);
    return null;
  }
  if (Array.isArray(v)) return v.map((x, i) => plain(x, invalid, `${field}[${i}]`));
  if (v && typeof v === "object" && !(v instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x, invalid, field ? `${field}.${k}` : k)]));
  }
  return v;
}

/**
 * Reads a prompt file: one prompt per line, or JSON lines with a string field "prompt".
 * Blank lines are skipped; a bad line (not JSON, not UTF-8, too long) is an error naming file and line.
 */
export function readPromptFile(file: string, options: Pick<ReadOptions, "maxLineBytes"> = {}): string[] {
  if (!existsSync(file)) throw new DataError([`${file}: file not found`]);
  const prompts: string[] = [];
  const problems = new ProblemList();
  for (const line of readLines(file, options.maxLineBytes ?? MAX_LINE_BYTES)) {
    if ("problem" in line) {
      problems.push(line.problem);
      continue;
    }
    const text = line.text;
    if (!text.trim()) continue;
    if (!text.trimStart().startsWith("{")) {
      prompts.push(text);
      continue;
    }
    let row: { prompt?: unknown };
    try {
      row = JSON.parse(text) as { prompt?: unknown };
    } catch (e) {
      problems.push(`${file}:${line.number}: not valid JSON (${(e as Error).message})`);
      continue;
    }
    if (typeof row.prompt === "string") prompts.push(row.prompt);
    else problems.push(`${file}:${line.number}: field 'prompt': expected a string`);
  }
  if (problems.length) throw new DataError(problems);
  return prompts;
}

/** Reads and validates a preference file; throws one DataError listing every bad row. */
export async function readPreferenceFile(file: string, options: ReadOptions = {}): Promise<PreferenceRecord[]> {
  // Lines that cannot be read and rows that fail validation are reported together, in file order.
  const { rows, problems: unreadable } = await readRowsCollecting(file, options);
  const invalid = new ProblemList<LineProblem>();
  const records: PreferenceRecord[] = [];
  for (const { row, source } of rows) {
    const problems: string[] = [];
    // Images would be dropped silently: a text reader cannot use them.
    const images = (row as { images?: unknown } | null)?.images;
    if (Array.isArray(images) && images.length > 0) {
      problems.push(
        `${where(source)}: field 'images': this record has images, which text preference data cannot carry; ` +
          "train a vision-language model (Qwen2-VL) on image pairs, or remove the field",
      );
    }
    const r = problems.length ? null : toRecord(row, source, problems);
    if (r) records.push(r);
    for (const problem of problems) invalid.push({ index: source.index, problem });
  }
  // Each list kept its first problems in file order, so the first of both together are these.
  const first = [...unreadable.kept, ...invalid.kept].sort((a, b) => a.index - b.index).slice(0, KEPT_PROBLEMS);
  const total = unreadable.length + invalid.length;
  if (total)
    throw new DataError(
      first.map((f) => f.problem),
      total,
    );
  if (records.length === 0) throw new DataError([`${file}: no records`]);
  return records;
}

/** A prompt for the text pipeline: plain text, or a conversation to continue; `at` is "file:line". */
export interface PromptRow {
  prompt: string | Message[];
  at: string;
}

/**
 * Reads a prompt file for `data build`: one prompt per line as plain text, or JSONL rows with a
 * "prompt" field (a string, or a message list ending with the user's turn) or a "messages" field.
 * Blank lines are skipped; an empty prompt, a malformed message or bad JSON is an error naming
 * the file, the line and the field, all of them found before any work starts.
 */
export function readPromptRows(file: string, options: Pick<ReadOptions, "maxLineBytes"> = {}): PromptRow[] {
  if (!existsSync(file)) throw new DataError([`${file}: file not found`]);
  const rows: PromptRow[] = [];
  const problems = new ProblemList();
  for (const line of readLines(file, options.maxLineBytes ?? MAX_LINE_BYTES)) {
    if ("problem" in line) {
      problems.push(line.problem);
      continue;
    }
    const at = `${file}:${line.number}`;
    const text = line.text.replace(/\r$/, "");
    if (!text.trim()) continue;
    if (!text.trimStart().startsWith("{")) {
      rows.push({ prompt: text, at });
      continue;
    }
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      problems.push(`${at}: not valid JSON (${(e as Error).message})`);
      continue;
    }
    const field = row.prompt !== undefined ? "prompt" : row.messages !== undefined ? "messages" : null;
    if (field === null) {
      problems.push(`${at}: field 'prompt': missing (give "prompt" or "messages")`);
      continue;
    }
    const value = row[field];
    if (typeof value === "string") {
      if (!value.trim()) problems.push(`${at}: field '${field}': empty prompt`);
      else rows.push({ prompt: value, at });
      continue;
    }
    if (!Array.isArray(value)) {
      problems.push(`${at}: field '${field}': expected a string or a list of messages`);
      continue;
    }
    const before = problems.length;
    if (value.length === 0) problems.push(`${at}: field '${field}': empty message list`);
    value.forEach((m: unknown, i) => {
      const msg = m as Message;
      if (typeof m !== "object" || m === null || typeof msg.role !== "string" || typeof msg.content !== "string") {
        problems.push(`${at}: field '${field}[${i}]': expected a message {role, content} with string values`);
      } else if (!msg.content.trim() && msg.role !== "system")
        problems.push(`${at}: field '${field}[${i}].content': empty message`);
    });
    const last = value[value.length - 1] as Message | undefined;
    if (problems.length === before && last?.role === "assistant") {
      problems.push(
        `${at}: field '${field}[${value.length - 1}]': a prompt ends with the user's turn, not the assistant's`,
      );
    }
    if (problems.length === before)
      rows.push({ prompt: (value as Message[]).map((m) => ({ role: m.role, content: m.content })), at });
  }
  if (problems.length) throw new DataError(problems);
  if (rows.length === 0) throw new DataError([`${file}: no prompts`]);
  return rows;
}
