// Image preference records in the two formats the references use, read into one shape:
//   TRL:            {"images": [...], "prompt": [{"role": "user", "content": [{"type": "image"},
//                    {"type": "text", "text": "..."}]}], "chosen": [...assistant...], "rejected": [...]}
//   LLaMA-Factory:  {"instruction": "<image>What is shown?", "input"?: "...", "system"?: "...",
//                    "chosen": "...", "rejected": "...", "images": [...], "score_chosen"?: 9, "score_rejected"?: 2}
//                   (column names may be remapped by a dataset_info.json entry)
// Image paths are resolved against a given folder or the data file's own, and every image is
// decoded before training starts: a missing or undecodable image names the record and the file.
import { existsSync, statSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { readJsonObjectFile } from "../util/utf8.js";
import { readImage, type RgbImage } from "../util/images.js";
import { readRows, type ReadOptions } from "./readers.js";
import { DataError, ProblemList, where, type Message, type Problems, type Source } from "./records.js";

/** Where an image goes in a prompt, as LLaMA-Factory writes it. */
export const IMAGE_PLACEHOLDER = "<image>";

export interface ImagePreferenceRecord {
  /** The system prompt, when the record has one (else the template's default applies). */
  system?: string;
  /** The conversation before the answer; contents are strings with one IMAGE_PLACEHOLDER per image. */
  prompt: Message[];
  chosen: string;
  rejected: string;
  /** Absolute paths, in placeholder order. */
  images: string[];
  scoreChosen?: number;
  scoreRejected?: number;
  source: Source;
}

/** LLaMA-Factory's column names (a dataset_info.json entry's "columns" renames them). */
export interface RankingColumns {
  prompt: string;
  query: string;
  system: string;
  chosen: string;
  rejected: string;
  images: string;
  scoreChosen: string;
  scoreRejected: string;
}

export const RANKING_COLUMNS: RankingColumns = {
  prompt: "instruction",
  query: "input",
  system: "system",
  chosen: "chosen",
  rejected: "rejected",
  images: "images",
  scoreChosen: "score_chosen",
  scoreRejected: "score_rejected",
};

export interface ImageReadOptions extends ReadOptions {
  /** The folder relative image paths are taken from (LLaMA-Factory's media_dir); default: the data file's. */
  mediaDir?: string;
  /** Column names of the LLaMA-Factory format (from a dataset_info.json entry). */
  columns?: Partial<RankingColumns>;
}

/** Whether a raw row is an image record (it has an `images` list, under the given column name). */
export function isImageRow(row: unknown, imagesColumn = "images"): boolean {
  return typeof row === "object" && row !== null && Array.isArray((row as Record<string, unknown>)[imagesColumn]);
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "string" ? (v.length ? "a string" : "an empty string") : `a ${typeof v}`;
}

/** A TRL content (a string, or parts of type text / image) as one string with placeholders. */
function flattenContent(content: unknown, field: string, at: string, problems: Problems): string | undefined {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) {
    problems.push(`${at}: field '${field}': expected a string or a list of {type: "text" | "image"} parts`);
    return undefined;
  }
  let out = "";
  for (const [i, part] of content.entries()) {
    const p = part as Record<string, unknown> | null;
    if (p && typeof p === "object" && p.type === "image") out += IMAGE_PLACEHOLDER;
    else if (p && typeof p === "object" && p.type === "text" && typeof p.text === "string") out += p.text;
    else {
      problems.push(`${at}: field '${field}[${i}]': expected {type: "image"} or {type: "text", text: string}`);
      return undefined;
    }
  }
  return out;
}

function messagesOf(v: unknown, field: string, at: string, problems: Problems): Message[] | undefined {
  if (!Array.isArray(v) || v.length === 0) {
    problems.push(`${at}: field '${field}': expected a non-empty list of messages, got ${describe(v)}`);
    return undefined;
  }
  const out: Message[] = [];
  for (const [i, m] of v.entries()) {
    const msg = m as Record<string, unknown> | null;
    if (!msg || typeof msg !== "object" || typeof msg.role !== "string") {
      problems.push(`${at}: field '${field}[${i}]': expected a message {role, content}`);
      return undefined;
    }
    const content = flattenContent(msg.content, `${field}[${i}].content`, at, problems);
    if (content === undefined) return undefined;
    out.push({ role: msg.role, content });
  }
  return out;
}

/** An answer: a string, or messages ending with the assistant's (its text is the answer). */
function answerOf(v: unknown, field: string, at: string, problems: Problems): string | undefined {
  if (typeof v === "string") {
    if (v.trim() === "") problems.push(`${at}: field '${field}': empty response`);
    return v.trim() === "" ? undefined : v;
  }
  if (v === undefined || v === null) {
    problems.push(`${at}: field '${field}': missing`);
    return undefined;
  }
  const messages = messagesOf(v, field, at, problems);
  if (!messages) return undefined;
  const last = messages[messages.length - 1]!;
  if (messages.length !== 1 || last.role !== "assistant") {
    problems.push(
      `${at}: field '${field}': expected one assistant message, got ${messages.length} ending with '${last.role}'`,
    );
    return undefined;
  }
  if (last.content.includes(IMAGE_PLACEHOLDER)) {
    problems.push(`${at}: field '${field}': an answer cannot hold an image`);
    return undefined;
  }
  if (last.content.trim() === "") {
    problems.push(`${at}: field '${field}': empty response`);
    return undefined;
  }
  return last.content;
}

function scoreOf(row: Record<string, unknown>, field: string, at: string, problems: Problems): number | undefined {
  const v = row[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || !Number.isFinite(Math.fround(v))) {
    problems.push(`${at}: field '${field}': expected a finite number (float32), got ${JSON.stringify(v)}`);
    return undefined;
  }
  return v;
}

/** Resolves image entries (paths, or {path} objects as Hugging Face datasets store them) against `baseDir`. */
function imagePaths(v: unknown[], field: string, baseDir: string, at: string, problems: Problems): string[] {
  const out: string[] = [];
  v.forEach((entry, i) => {
    const path = typeof entry === "string" ? entry : (entry as { path?: unknown } | null)?.path;
    if (typeof path !== "string" || path === "") {
      problems.push(
        `${at}: field '${field}[${i}]': expected an image path (a string or {path}), got ${describe(entry)}`,
      );
      return;
    }
    out.push(isAbsolute(path) ? path : resolve(baseDir, path));
  });
  return out;
}

/** Validates one raw row in either format; appends problems and returns null when it is unusable. */
export function toImageRecord(
  row: unknown,
  source: Source,
  baseDir: string,
  problems: Problems,
  columns: Partial<RankingColumns> = {},
): ImagePreferenceRecord | null {
  const at = where(source);
  const cols = { ...RANKING_COLUMNS, ...columns };
  if (typeof row !== "object" || row === null || Array.isArray(row)) {
    problems.push(`${at}: expected an object with images, a prompt, chosen and rejected, got ${describe(row)}`);
    return null;
  }
  const r = row as Record<string, unknown>;
  const before = problems.length;
  const rawImages = r[cols.images];
  if (!Array.isArray(rawImages)) {
    problems.push(`${at}: field '${cols.images}': expected a list of image paths, got ${describe(rawImages)}`);
    return null;
  }
  const images = imagePaths(rawImages, cols.images, baseDir, at, problems);
  let system: string | undefined;
  let prompt: Message[] | undefined;
  if (Array.isArray(r.prompt)) {
    // TRL: a conversational prompt; a leading system message becomes the system prompt.
    prompt = messagesOf(r.prompt, "prompt", at, problems);
    if (prompt && prompt[0]?.role === "system") {
      system = prompt[0].content;
      prompt = prompt.slice(1);
    }
    if (prompt && prompt[prompt.length - 1]?.role !== "user") {
      problems.push(`${at}: field 'prompt': the last message must be the user's, got '${prompt.at(-1)?.role}'`);
      prompt = undefined;
    }
  } else {
    // LLaMA-Factory's instruction column, or a plain-text TRL prompt (with <image> placeholders).
    const column = r[cols.prompt] === undefined && typeof r.prompt === "string" ? "prompt" : cols.prompt;
    const instruction = r[column];
    if (typeof instruction !== "string") {
      problems.push(
        `${at}: field '${column}': expected a string (or TRL's message list in 'prompt'), got ${describe(instruction)}`,
      );
    } else {
      // LLaMA-Factory joins instruction and input with a newline.
      const query = r[cols.query];
      const parts = [instruction, typeof query === "string" ? query : ""].filter((s) => s !== "");
      prompt = [{ role: "user", content: parts.join("\n") }];
    }
    const sys = r[cols.system];
    if (sys !== undefined && sys !== null && typeof sys !== "string") {
      problems.push(`${at}: field '${cols.system}': expected a string, got ${describe(sys)}`);
    } else if (typeof sys === "string" && sys !== "") system = sys;
  }
  const chosen = answerOf(r[cols.chosen], cols.chosen, at, problems);
  const rejected = answerOf(r[cols.rejected], cols.rejected, at, problems);
  const scoreChosen = scoreOf(r, cols.scoreChosen, at, problems);
  const scoreRejected = scoreOf(r, cols.scoreRejected, at, problems);
  if ((scoreChosen === undefined) !== (scoreRejected === undefined) && problems.length === before) {
    const absent = scoreChosen === undefined ? cols.scoreChosen : cols.scoreRejected;
    problems.push(`${at}: field '${absent}': missing (the other score is present)`);
  }
  if (prompt) {
    const placeholders = prompt.reduce((n, m) => n + m.content.split(IMAGE_PLACEHOLDER).length - 1, 0);
    if (placeholders !== rawImages.length) {
      problems.push(
        `${at}: the prompt has ${placeholders} image placeholder${placeholders === 1 ? "" : "s"} ` +
          `(${IMAGE_PLACEHOLDER} or {type: "image"}) but '${cols.images}' lists ${rawImages.length}`,
      );
    }
  }
  if (problems.length > before) return null;
  const scores = scoreChosen === undefined ? {} : { scoreChosen, scoreRejected };
  return {
    ...(system ? { system } : {}),
    prompt: prompt!,
    chosen: chosen!,
    rejected: rejected!,
    images,
    ...scores,
    source,
  };
}

/**
 * Reads and validates an image preference file (.jsonl, .json, .parquet), then decodes every
 * image once: all problems (bad fields, missing or undecodable images) come in one DataError.
 */
export async function readImagePreferenceFile(
  file: string,
  options: ImageReadOptions = {},
): Promise<ImagePreferenceRecord[]> {
  return (await readImagePreferenceData(file, options)).records;
}

/** readImagePreferenceFile, with each image file's size (from the one decoding pass). */
export async function readImagePreferenceData(
  file: string,
  options: ImageReadOptions = {},
): Promise<{ records: ImagePreferenceRecord[]; imageSizes: Map<string, { width: number; height: number }> }> {
  const rows = await readRows(file, options);
  const baseDir = resolve(options.mediaDir ?? dirname(file));
  if (options.mediaDir !== undefined && !isDirectory(baseDir)) {
    throw new DataError([`image folder ${options.mediaDir}: not a directory`]);
  }
  const problems = new ProblemList();
  const records: ImagePreferenceRecord[] = [];
  for (const { row, source } of rows) {
    const r = toImageRecord(row, source, baseDir, problems, options.columns);
    if (r) records.push(r);
  }
  if (problems.length) throw new DataError(problems);
  if (records.length === 0) throw new DataError([`${file}: no records`]);
  return { records, imageSizes: checkImages(records) };
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

/**
 * Decodes every image of every record (each file once); throws one DataError naming, for each
 * image that is missing or does not decode, the record (file:line) and the image file.
 * Returns each file's size, for counting image tokens without decoding again.
 */
export function checkImages(records: readonly ImagePreferenceRecord[]): Map<string, { width: number; height: number }> {
  const sizes = new Map<string, { width: number; height: number }>();
  const failures = new Map<string, string>();
  const problems = new ProblemList();
  for (const record of records) {
    for (const file of record.images) {
      if (!sizes.has(file) && !failures.has(file)) {
        try {
          const { width, height } = readImage(file);
          sizes.set(file, { width, height });
        } catch (e) {
          failures.set(file, (e as Error).message);
        }
      }
      const failure = failures.get(file);
      if (failure !== undefined) problems.push(`${where(record.source)}: image ${file}: ${stripName(failure, file)}`);
    }
  }
  if (problems.length) throw new DataError(problems);
  return sizes;
}

/** ImageError messages start with the file; the problem line names it already. */
function stripName(message: string, file: string): string {
  return message.startsWith(`${file}: `) ? message.slice(file.length + 2) : message;
}

/** Decodes a record's images, in placeholder order. */
export function loadRecordImages(record: ImagePreferenceRecord): RgbImage[] {
  return record.images.map((file) => readImage(file));
}

// ---------------------------------------------------------------------------------------------
// dataset_info.json, LLaMA-Factory's index of data sets.

export interface DatasetInfoEntry {
  /** The data file, resolved against the dataset_info.json's folder. */
  file: string;
  columns: Partial<RankingColumns>;
}

const COLUMN_KEYS: Record<string, keyof RankingColumns> = {
  prompt: "prompt",
  query: "query",
  system: "system",
  chosen: "chosen",
  rejected: "rejected",
  images: "images",
  score_chosen: "scoreChosen",
  score_rejected: "scoreRejected",
};

/**
 * An entry of a dataset_info.json for image preference data: {"file_name", "ranking": true,
 * "formatting": "alpaca" (the default), "columns": {...}}. Other layouts are refused by name.
 */
export function readDatasetInfoEntry(infoFile: string, name: string): DatasetInfoEntry {
  const info = readJsonObjectFile(infoFile, (message) => new DataError([message]));
  const entry = info[name] as Record<string, unknown> | undefined;
  if (entry === undefined || typeof entry !== "object" || entry === null) {
    const names = Object.keys(info).slice(0, 20).join(", ");
    throw new DataError([`${infoFile}: no data set named '${name}' (it has: ${names || "none"})`]);
  }
  const at = `${infoFile}: '${name}'`;
  if (typeof entry.file_name !== "string") {
    const remote = ["hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name"].find((k) => k in entry);
    throw new DataError([
      remote
        ? `${at}: field '${remote}': remote data sets are not fetched here; download it and give 'file_name'`
        : `${at}: field 'file_name': missing`,
    ]);
  }
  if (entry.ranking !== true) throw new DataError([`${at}: field 'ranking': must be true for preference pairs`]);
  if (entry.formatting !== undefined && entry.formatting !== "alpaca") {
    throw new DataError([
      `${at}: field 'formatting': only "alpaca" is supported for image pairs, got ${JSON.stringify(entry.formatting)}`,
    ]);
  }
  const columns: Partial<RankingColumns> = {};
  const raw = (entry.columns ?? {}) as Record<string, unknown>;
  for (const [key, value] of Object.entries(raw)) {
    const ours = COLUMN_KEYS[key];
    if (!ours) {
      throw new DataError([
        `${at}: columns.${key}: not supported for image pairs (known: ${Object.keys(COLUMN_KEYS).join(", ")})`,
      ]);
    }
    if (typeof value !== "string") throw new DataError([`${at}: columns.${key}: expected a column name`]);
    columns[ours] = value;
  }
  return { file: join(dirname(infoFile), entry.file_name), columns };
}
