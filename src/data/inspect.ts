// `omni-dpo data inspect`: what a preference file holds before any training. Counts, token
// lengths and how many rows truncation will cut (with a tokenizer), the score-margin
// histogram and the share of near-ambiguous pairs, duplicate prompts. The file is read and
// validated exactly as training reads it, so a bad file fails with the same file:line:field
// errors.
import type { Qwen2VLImageProcessor, Tokenizer } from "../text/index.js";
import { IMAGE_PLACEHOLDER, isImageRow, readImagePreferenceData, type ImagePreferenceRecord } from "./image-records.js";
import { imageTokenCount } from "./image-tokenize.js";
import { readPreferenceFile, readRows } from "./readers.js";
import { mapRecords, where, type PreferenceRecord, type Text } from "./records.js";
import {
  boundPair,
  CHARS_PER_TOKEN_BOUND,
  formatRecord,
  LABEL_PAD,
  tokenizePair,
  TOKENIZE_DEFAULTS,
  type ChatRendering,
} from "./tokenize.js";

export interface InspectOptions {
  /** Token lengths and truncation counts need a tokenizer (a model or tokenizer directory's). */
  tokenizer?: Tokenizer | null;
  /** Truncation limits, as in training (defaults 512 / 128). */
  maxLength?: number;
  maxPromptLength?: number;
  /** A Jinja chat template that replaces the tokenizer's own for conversational records. */
  chatTemplate?: string;
  /** How conversational records become text (default "trl", as training's chat_rendering). */
  chatRendering?: ChatRendering;
  /** |score_chosen - score_rejected| below this is a near-ambiguous pair (default 0.5). */
  ambiguousMargin?: number;
  /** Target number of histogram buckets (default 10; the bucket width is rounded to 1, 2, 2.5 or 5 x 10^k). */
  bins?: number;
  /** How many duplicate-prompt examples to keep (default 5). */
  maxExamples?: number;
  /** For image records: counts each image's <|image_pad|> tokens (a Qwen2-VL model directory's processor). */
  imageProcessor?: Qwen2VLImageProcessor | null;
  /** For image records: the folder relative image paths are taken from (default: the data file's). */
  mediaDir?: string;
}

/** p50 / p90 / p99 (linear interpolation between ranks, as numpy's default) and the max. */
export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export interface HistogramBucket {
  /** The bucket holds margins m with from <= m < to (the last one also m == to). */
  from: number;
  to: number;
  count: number;
}

export interface DuplicatePrompt {
  /** The prompt (first 120 characters; conversations as role: content lines). */
  prompt: string;
  count: number;
  /** Where the rows are ("data.jsonl:3"), the first ten. */
  at: string[];
}

export interface DataInspection {
  file: string;
  counts: {
    records: number;
    withScores: number;
    conversational: number;
    plain: number;
    /** Rows whose chosen and rejected answers are the same text. */
    identicalAnswers: number;
  };
  /** Null without a tokenizer. Lengths before truncation, BOS and EOS included as training adds them. */
  tokens: null | {
    prompt: Percentiles;
    chosen: Percentiles;
    rejected: Percentiles;
    /** Prompt plus the longer of the two answers: what max_length limits. */
    promptPlusLonger: Percentiles;
  };
  /** Null without a tokenizer. */
  truncation: null | {
    maxLength: number;
    maxPromptLength: number;
    /** Rows that training will cut (prompt + longer answer > max_length). */
    truncated: number;
    /** Of those, rows whose prompt is cut to max_prompt_length... */
    promptCut: number;
    /** ...and rows whose answers are cut too (still too long after the prompt cut). */
    answersCut: number;
    /**
     * Rows with a field too long to tokenise whole (above max_length x CHARS_PER_TOKEN_BOUND
     * characters): tokenised up to that cut as training does, so their lengths above are lower
     * bounds. Every one of them is truncated.
     */
    cutBeforeTokenising: number;
  };
  /** Null when no row has scores. Margin = score_chosen - score_rejected. */
  margins: null | {
    count: number;
    mean: number;
    min: number;
    max: number;
    percentiles: Percentiles;
    histogram: HistogramBucket[];
    ambiguousThreshold: number;
    /** Pairs with |margin| < the threshold, and their share of the scored pairs. */
    ambiguous: number;
    ambiguousShare: number;
    /** Pairs whose rejected answer scored higher than the chosen one (margin < 0), and ties (margin == 0). */
    negative: number;
    zero: number;
  };
  /** Null for text records. Every image is decoded (a bad one fails the inspection, naming it). */
  images: null | {
    /** Image references in all records, and distinct files among them. */
    images: number;
    distinctFiles: number;
    /** Images a record. */
    perRecord: Percentiles;
    /** Null without an image processor: <|image_pad|> tokens, as training will expand them. */
    tokens: null | { total: number; perImage: Percentiles; perRecord: Percentiles };
  };
  duplicates: {
    /** Distinct prompts that occur in more than one row. */
    prompts: number;
    /** Rows whose prompt occurs in another row too. */
    rows: number;
    /** The most repeated prompts. */
    examples: DuplicatePrompt[];
  };
}

/** Reads, validates and inspects a preference file. Throws DataError (file:line:field) on a bad file. */
export async function inspectFile(file: string, options: InspectOptions = {}): Promise<DataInspection> {
  if ((await readRows(file)).some(({ row }) => isImageRow(row))) return inspectImageFile(file, options);
  return inspectRecords(await readPreferenceFile(file), { ...options, file });
}

/**
 * Image records: the text statistics over their prompts (an image shown as <image:FILE>, so the
 * same question about different images is no duplicate) and answers, plus image counts and, with
 * an image processor, image token counts. Text token lengths are not computed for them.
 */
async function inspectImageFile(file: string, options: InspectOptions): Promise<DataInspection> {
  const { records, imageSizes } = await readImagePreferenceData(
    file,
    options.mediaDir ? { mediaDir: options.mediaDir } : {},
  );
  const asText = records.map(textView);
  const inspection = inspectRecords(asText, { ...options, tokenizer: null, file });
  const perRecord = records.map((r) => r.images.length);
  let tokens: NonNullable<DataInspection["images"]>["tokens"] = null;
  if (options.imageProcessor) {
    const processor = options.imageProcessor;
    const count = (f: string) => imageTokenCount(processor, imageSizes.get(f)!.width, imageSizes.get(f)!.height);
    const perImage = records.flatMap((r) => r.images.map(count));
    tokens = {
      total: perImage.reduce((a, b) => a + b, 0),
      perImage: percentiles(perImage),
      perRecord: percentiles(records.map((r) => r.images.reduce((n, f) => n + count(f), 0))),
    };
  }
  return {
    ...inspection,
    images: {
      images: perRecord.reduce((a, b) => a + b, 0),
      distinctFiles: imageSizes.size,
      perRecord: percentiles(perRecord),
      tokens,
    },
  };
}

/** An image record as a text record: system and prompt turns, each image as <image:FILE>. */
function textView(r: ImagePreferenceRecord): PreferenceRecord {
  let next = 0;
  const show = (content: string) =>
    content
      .split(IMAGE_PLACEHOLDER)
      .reduce((acc, piece, i) => (i === 0 ? piece : `${acc}<image:${r.images[next++]}>${piece}`), "");
  const prompt = [...(r.system ? [{ role: "system", content: r.system }] : []), ...r.prompt].map((m) => ({
    role: m.role,
    content: show(m.content),
  }));
  const scores = r.scoreChosen === undefined ? {} : { scoreChosen: r.scoreChosen, scoreRejected: r.scoreRejected };
  return { prompt, chosen: r.chosen, rejected: r.rejected, ...scores, source: r.source };
}

/** Inspects validated records (as readPreferenceFile returns them). */
export function inspectRecords(
  records: PreferenceRecord[],
  options: InspectOptions & { file?: string } = {},
): DataInspection {
  const maxLength = options.maxLength ?? TOKENIZE_DEFAULTS.maxLength;
  const maxPromptLength = options.maxPromptLength ?? TOKENIZE_DEFAULTS.maxPromptLength;
  if (!(maxPromptLength < maxLength))
    throw new RangeError(`max_prompt_length (${maxPromptLength}) must be below max_length (${maxLength})`);
  const threshold = options.ambiguousMargin ?? 0.5;
  if (!(threshold >= 0)) throw new RangeError(`the ambiguous margin must be >= 0, got ${threshold}`);

  const conversational = records.filter((r) => Array.isArray(r.chosen)).length;
  const scored = records.filter((r) => r.scoreChosen !== undefined && r.scoreRejected !== undefined);
  const identicalAnswers = records.filter(
    (r) => JSON.stringify(answerOf(r.chosen)) === JSON.stringify(answerOf(r.rejected)),
  ).length;

  let tokens: DataInspection["tokens"] = null;
  let truncation: DataInspection["truncation"] = null;
  if (options.tokenizer) {
    const lengths = tokenLengths(records, options.tokenizer, maxLength, options.chatTemplate, options.chatRendering);
    tokens = {
      prompt: percentiles(lengths.map((l) => l.prompt)),
      chosen: percentiles(lengths.map((l) => l.chosen)),
      rejected: percentiles(lengths.map((l) => l.rejected)),
      promptPlusLonger: percentiles(lengths.map((l) => l.prompt + Math.max(l.chosen, l.rejected))),
    };
    // The same rule as tokenizePair: each side's prompt + the longer answer against max_length.
    let truncated = 0;
    let promptCut = 0;
    let answersCut = 0;
    for (const l of lengths) {
      const longer = Math.max(l.chosen, l.rejected);
      const prompts = [l.promptChosen, l.promptRejected];
      if (!prompts.some((p) => p + longer > maxLength)) continue;
      truncated++;
      if (prompts.some((p) => p + longer > maxLength && p > maxPromptLength)) promptCut++;
      if (prompts.some((p) => p + longer > maxLength && Math.min(p, maxPromptLength) + longer > maxLength))
        answersCut++;
    }
    truncation = {
      maxLength,
      maxPromptLength,
      truncated,
      promptCut,
      answersCut,
      cutBeforeTokenising: lengths.filter((l) => l.cut).length,
    };
  }

  let margins: DataInspection["margins"] = null;
  if (scored.length) {
    const m = scored.map((r) => r.scoreChosen! - r.scoreRejected!);
    const min = m.reduce((a, b) => Math.min(a, b));
    const max = m.reduce((a, b) => Math.max(a, b));
    const ambiguous = m.filter((x) => Math.abs(x) < threshold).length;
    margins = {
      count: m.length,
      mean: m.reduce((a, b) => a + b, 0) / m.length,
      min,
      max,
      percentiles: percentiles(m),
      histogram: histogram(m, options.bins ?? 10),
      ambiguousThreshold: threshold,
      ambiguous,
      ambiguousShare: ambiguous / m.length,
      negative: m.filter((x) => x < 0).length,
      zero: m.filter((x) => x === 0).length,
    };
  }

  return {
    file: options.file ?? records[0]?.source.file ?? "",
    counts: {
      records: records.length,
      withScores: scored.length,
      conversational,
      plain: records.length - conversational,
      identicalAnswers,
    },
    tokens,
    truncation,
    margins,
    images: null,
    duplicates: duplicatePrompts(records, options.maxExamples ?? 5),
  };
}

interface Lengths {
  prompt: number;
  promptChosen: number;
  promptRejected: number;
  chosen: number;
  rejected: number;
  cut: boolean;
}

/**
 * Untruncated token lengths of every record, through the training tokenisation (BOS, EOS,
 * boundary rule); a field too long for max_length is cut first as training cuts it.
 */
function tokenLengths(
  records: PreferenceRecord[],
  tokenizer: Tokenizer,
  maxLength: number,
  chatTemplate?: string,
  chatRendering?: ChatRendering,
): Lengths[] {
  const options = { maxLength: Infinity, maxPromptLength: Infinity, truncationMode: "keep_end" as const, chatTemplate };
  return mapRecords(records, (record) => {
    const { pair, cut } = boundPair(formatRecord(record, tokenizer, chatTemplate, chatRendering), tokenizer, maxLength);
    const p = tokenizePair(pair, tokenizer, options, where(record.source));
    const promptChosen = p.chosenLabels.filter((x) => x === LABEL_PAD).length;
    const promptRejected = p.rejectedLabels.filter((x) => x === LABEL_PAD).length;
    return {
      prompt: promptChosen,
      promptChosen,
      promptRejected,
      chosen: p.chosenInputIds.length - promptChosen,
      rejected: p.rejectedInputIds.length - promptRejected,
      cut,
    };
  });
}

/** Linear-interpolation percentiles (numpy's default), the max and the mean; zeros when empty. */
export function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => {
    const pos = q * (s.length - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, s.length - 1);
    return s[lo] + (s[hi] - s[lo]) * (pos - lo);
  };
  return {
    p50: at(0.5),
    p90: at(0.9),
    p99: at(0.99),
    max: s[s.length - 1],
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

/** A width of 1, 2, 2.5 or 5 x 10^k at least `raw`. */
function niceWidth(raw: number): number {
  const k = Math.floor(Math.log10(raw));
  for (const f of [1, 2, 2.5, 5, 10]) if (f * 10 ** k >= raw * (1 - 1e-12)) return f * 10 ** k;
  return 10 ** (k + 1);
}

/**
 * Equal-width buckets over [min, max] with a round width (about `bins` of them), edges at
 * multiples of the width. One bucket [v, v] when every value is v.
 */
export function histogram(values: number[], bins = 10): HistogramBucket[] {
  if (values.length === 0) return [];
  // A loop, not Math.min(...values): spreading a few hundred thousand arguments overflows the stack.
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min === max) return [{ from: min, to: max, count: values.length }];
  const width = niceWidth((max - min) / Math.max(1, bins));
  const round = (x: number) => Number(x.toPrecision(12));
  const start = round(Math.floor(min / width) * width);
  const n = Math.max(1, Math.ceil(round((max - start) / width)));
  const buckets = Array.from({ length: n }, (_, i) => ({
    from: round(start + i * width),
    to: round(start + (i + 1) * width),
    count: 0,
  }));
  for (const v of values) {
    let i = Math.floor(round((v - start) / width));
    if (i >= n) i = n - 1;
    if (i < 0) i = 0;
    buckets[i].count++;
  }
  return buckets;
}

/** The answer itself: the text, or a conversation's last message. */
function answerOf(t: Text): unknown {
  return Array.isArray(t) ? t[t.length - 1] : t;
}

/** The prompt a record trains on, as one string key (conversations: every message before the answer). */
function promptKey(r: PreferenceRecord): string {
  const p = r.prompt ?? (r.chosen as Exclude<Text, string>).slice(0, -1);
  return typeof p === "string" ? p : p.map((m) => `${m.role}: ${m.content}`).join("\n");
}

function duplicatePrompts(records: PreferenceRecord[], maxExamples: number): DataInspection["duplicates"] {
  const groups = new Map<string, PreferenceRecord[]>();
  for (const r of records) {
    const key = promptKey(r);
    const g = groups.get(key);
    if (g) g.push(r);
    else groups.set(key, [r]);
  }
  const repeated = [...groups.entries()].filter(([, g]) => g.length > 1);
  repeated.sort((a, b) => b[1].length - a[1].length || a[1][0].source.index - b[1][0].source.index);
  return {
    prompts: repeated.length,
    rows: repeated.reduce((n, [, g]) => n + g.length, 0),
    examples: repeated.slice(0, maxExamples).map(([key, g]) => ({
      prompt: key.length > 120 ? `${key.slice(0, 117)}...` : key,
      count: g.length,
      at: g.slice(0, 10).map((r) => where(r.source)),
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// Text report.

const fmt = (x: number, digits = 2) => (Number.isInteger(x) ? String(x) : x.toFixed(digits));
const pct = (n: number, of: number) => (of === 0 ? "0%" : `${((100 * n) / of).toFixed(1)}%`);

export function formatInspection(r: DataInspection): string {
  const out: string[] = [];
  const c = r.counts;
  out.push(
    `${r.file}: ${c.records} records (${c.plain} plain, ${c.conversational} conversational), ${c.withScores} with scores`,
  );
  if (c.identicalAnswers) out.push(`  ${c.identicalAnswers} rows have identical chosen and rejected answers`);

  out.push("", "Token lengths (before truncation):");
  if (r.tokens && r.truncation) {
    const rows: [string, Percentiles][] = [
      ["prompt", r.tokens.prompt],
      ["chosen", r.tokens.chosen],
      ["rejected", r.tokens.rejected],
      ["prompt+longer", r.tokens.promptPlusLonger],
    ];
    const header = ["", "p50", "p90", "p99", "max", "mean"];
    const body = rows.map(([name, p]) => [
      name,
      fmt(p.p50, 1),
      fmt(p.p90, 1),
      fmt(p.p99, 1),
      fmt(p.max),
      fmt(p.mean, 1),
    ]);
    out.push(...table(header, body).map((l) => `  ${l}`));
    const t = r.truncation;
    out.push(
      "",
      `Truncation at max_length ${t.maxLength}, max_prompt_length ${t.maxPromptLength}: ${t.truncated} of ${c.records} rows (${pct(t.truncated, c.records)})`,
    );
    out.push(`  prompt cut: ${t.promptCut}; answers cut too: ${t.answersCut}`);
    if (t.cutBeforeTokenising) {
      out.push(
        `  ${t.cutBeforeTokenising} rows have a field above ${t.maxLength * CHARS_PER_TOKEN_BOUND} characters (max_length x ${CHARS_PER_TOKEN_BOUND}): ` +
          "tokenised up to that cut, as training does, so the lengths above are lower bounds for them",
      );
    }
  } else if (r.images) {
    out.push("  (not computed for image records; image tokens are counted below)");
  } else {
    out.push("  (give --tokenizer DIR for token lengths and truncation counts)");
  }

  out.push("", "Score margins (score_chosen - score_rejected):");
  if (r.margins) {
    const m = r.margins;
    out.push(
      `  ${m.count} scored pairs; mean ${fmt(m.mean, 3)}, min ${fmt(m.min, 3)}, p50 ${fmt(m.percentiles.p50, 3)}, max ${fmt(m.max, 3)}`,
    );
    const peak = Math.max(...m.histogram.map((b) => b.count));
    const edge = (x: number) => String(Number(x.toPrecision(6)));
    const labels = m.histogram.map(
      (b, i) => `[${edge(b.from)}, ${edge(b.to)}${i === m.histogram.length - 1 ? "]" : ")"}`,
    );
    const width = Math.max(...labels.map((l) => l.length));
    // A value on the last edge belongs to the last bucket, so it is closed on the right.
    m.histogram.forEach((b, i) => {
      const bar = "█".repeat(Math.round((40 * b.count) / Math.max(peak, 1))) || (b.count ? "▏" : "");
      out.push(`  ${labels[i].padStart(width)} ${String(b.count).padStart(String(peak).length)} ${bar}`);
    });
    out.push(`  near-ambiguous (|margin| < ${m.ambiguousThreshold}): ${m.ambiguous} (${pct(m.ambiguous, m.count)})`);
    if (m.negative || m.zero) out.push(`  rejected scored higher: ${m.negative}; ties: ${m.zero}`);
  } else {
    out.push("  no scores (Omni-DPO's quality weight needs score_chosen and score_rejected)");
  }

  if (r.images) {
    const i = r.images;
    out.push(
      "",
      `Images: ${i.images} in ${c.records} records (${i.distinctFiles} distinct files), ` +
        `per record p50 ${fmt(i.perRecord.p50, 1)}, max ${fmt(i.perRecord.max)}`,
    );
    if (i.tokens) {
      const t = i.tokens;
      out.push(
        `  image tokens: ${t.total} in all; per image p50 ${fmt(t.perImage.p50, 1)}, max ${fmt(t.perImage.max)}; ` +
          `per record p50 ${fmt(t.perRecord.p50, 1)}, max ${fmt(t.perRecord.max)}`,
      );
    } else {
      out.push(
        "  (give --tokenizer DIR of a Qwen2-VL model, with its preprocessor_config.json, for image token counts)",
      );
    }
  }

  const d = r.duplicates;
  out.push("", `Duplicate prompts: ${d.prompts} prompts repeated, in ${d.rows} rows`);
  for (const e of d.examples) {
    out.push(`  ${e.count}x ${JSON.stringify(e.prompt)} (${e.at.join(", ")}${e.count > e.at.length ? ", ..." : ""})`);
  }
  return out.join("\n");
}

function table(header: string[], body: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join("  ");
  return [line(header), ...body.map(line)];
}
