// Reading preference files: JSON Lines, JSON arrays and Parquet. Rows keep their provenance
// (file and line, record or row number) so every later error can point at them.
import { readFileSync, existsSync } from "node:fs";
import { extname } from "node:path";
import { asyncBufferFromFile, parquetReadObjects } from "hyparquet";
import { DataError, toRecord, type PreferenceRecord, type Source } from "./records.js";

export interface RawRow { row: unknown; source: Source }

/** Reads every row of a .jsonl, .json or .parquet file, unvalidated. */
export async function readRows(file: string): Promise<RawRow[]> {
  const { rows, problems } = await readRowsCollecting(file);
  if (problems.length) throw new DataError(problems.map((p) => p.problem));
  return rows;
}

interface LineProblem { index: number; problem: string }

/** readRows, but JSON Lines that do not parse come back as problems beside the rows that do. */
async function readRowsCollecting(file: string): Promise<{ rows: RawRow[]; problems: LineProblem[] }> {
  if (!existsSync(file)) throw new DataError([`${file}: file not found`]);
  const ext = extname(file).toLowerCase();
  if (ext === ".parquet") return { rows: await readParquet(file), problems: [] };
  const text = readFileSync(file, "utf8");
  if (ext === ".json" && text.trimStart().startsWith("[")) return { rows: readJsonArray(file, text), problems: [] };
  if (ext === ".json" || ext === ".jsonl" || ext === ".ndjson") return readJsonLines(file, text);
  throw new DataError([`${file}: unknown format '${ext}'; expected .jsonl, .json or .parquet`]);
}

function readJsonLines(file: string, text: string): { rows: RawRow[]; problems: LineProblem[] } {
  const rows: RawRow[] = [];
  const problems: LineProblem[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    try { rows.push({ row: JSON.parse(line), source: { file, index: i + 1, unit: "line" } }); } catch (e) {
      problems.push({ index: i + 1, problem: `${file}:${i + 1}: not valid JSON (${(e as Error).message})` });
    }
  });
  return { rows, problems };
}

function readJsonArray(file: string, text: string): RawRow[] {
  let data: unknown;
  try { data = JSON.parse(text); } catch (e) { throw new DataError([`${file}: not valid JSON (${(e as Error).message})`]); }
  if (!Array.isArray(data)) throw new DataError([`${file}: expected a JSON array of records`]);
  return data.map((row, i) => ({ row, source: { file, index: i + 1, unit: "record" as const } }));
}

async function readParquet(file: string): Promise<RawRow[]> {
  let rows: Record<string, unknown>[];
  try {
    rows = await parquetReadObjects({ file: await asyncBufferFromFile(file) }) as Record<string, unknown>[];
  } catch (e) {
    throw new DataError([`${file}: cannot read Parquet (${(e as Error).message})`]);
  }
  return rows.map((row, i) => ({ row: plain(row), source: { file, index: i + 1, unit: "row" as const } }));
}

/** Parquet readers may hand back BigInt for integer columns; scores and text want plain JSON values. */
function plain(v: unknown): unknown {
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === "object" && !(v instanceof Uint8Array)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/**
 * Reads a prompt file: one prompt per line, or JSON lines with a string field "prompt".
 * Blank lines are skipped; a bad line is an error naming file and line.
 */
export function readPromptFile(file: string): string[] {
  if (!existsSync(file)) throw new DataError([`${file}: file not found`]);
  const prompts: string[] = [];
  const problems: string[] = [];
  readFileSync(file, "utf8").split("\n").forEach((line, i) => {
    if (!line.trim()) return;
    if (!line.trimStart().startsWith("{")) { prompts.push(line); return; }
    let row: { prompt?: unknown };
    try { row = JSON.parse(line) as { prompt?: unknown }; } catch (e) {
      problems.push(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
      return;
    }
    if (typeof row.prompt === "string") prompts.push(row.prompt);
    else problems.push(`${file}:${i + 1}: field 'prompt': expected a string`);
  });
  if (problems.length) throw new DataError(problems);
  return prompts;
}

/** Reads and validates a preference file; throws one DataError listing every bad row. */
export async function readPreferenceFile(file: string): Promise<PreferenceRecord[]> {
  // Lines that are not JSON and rows that fail validation are reported together, in file order.
  const { rows, problems: found } = await readRowsCollecting(file);
  const records: PreferenceRecord[] = [];
  for (const { row, source } of rows) {
    const problems: string[] = [];
    const r = toRecord(row, source, problems);
    if (r) records.push(r);
    for (const problem of problems) found.push({ index: source.index, problem });
  }
  const problems = found.sort((a, b) => a.index - b.index).map((f) => f.problem);
  if (problems.length) throw new DataError(problems);
  if (records.length === 0) throw new DataError([`${file}: no records`]);
  return records;
}
