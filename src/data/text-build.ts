// Building on-policy preference data for text, as the reference's on_policy_data_gen scripts do:
// sample K responses per prompt from the policy (one seed per sample, temperature 0.8), drop
// prompts whose responses are all identical, score every response (a reward model, or a user's
// scorer module), and keep the highest-scoring response as chosen and the lowest as rejected,
// with both scores and all K of them. The work is journaled prompt by prompt, so a build that is
// killed continues where it stopped, and the output is written whole at the end.
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import type { CausalLM } from "../models/causal-lm.js";
import { tokenizerDirectory } from "../models/peft.js";
import { checkTokenIds, modelVocab } from "../models/vocab.js";
import { asGenerator } from "../generation/local.js";
import type { Generator } from "../generation/types.js";
import type { Tokenizer } from "../text/index.js";
import { appendLinesDurable, readJournalLines, writeJsonAtomic, writeJsonLinesAtomic } from "../util/files.js";
import { histogram, type HistogramBucket } from "./inspect.js";
import type { PromptRow } from "./readers.js";
import { DataError, ProblemList, type Message } from "./records.js";
import { normaliseScore, type Scorer } from "./build.js";

/** The reference's five decoding seeds (on_policy_data_gen: 13, 21, 42, 79, 100). */
export const REFERENCE_SEEDS = [13, 21, 42, 79, 100];

/** One response to score: the prompt as given, the text the policy saw, and the response. */
export interface ResponseToScore {
  prompt: string | Message[];
  promptText: string;
  chat: boolean;
  response: string;
  at: string;
  /** Set by a scorer that had to cut the item to fit its context: the tokens it scored. */
  truncatedTo?: number;
}

/** Scores responses in batches; `name` identifies it in the journal (a directory, a module path). */
export interface BatchScorer {
  name: string;
  /**
   * Scores, one per item; a scorer that cut an item to fit its context sets the item's
   * `truncatedTo`. null: the scorer could not score it (an LLM judge's unparseable verdict); the
   * response is left out of the pairing and counted.
   */
  score(items: ResponseToScore[]): (number | null)[] | Promise<(number | null)[]>;
  /**
   * A scorer with a bounded input (a reward model's max_position_embeddings): its size, the file
   * that sets it, and the tokens an item takes with an empty response (the prompt, the template).
   * Responses are sampled short enough to fit it.
   */
  context?: { tokens: number; file: string; promptTokens(item: ResponseToScore): number };
  dispose?(): void;
}

/** A user's scorer module, score(prompt, response) -> number or {score}, as a BatchScorer. */
export function moduleScorer(fn: Scorer, name: string): BatchScorer {
  return {
    name,
    async score(items) {
      const out: number[] = [];
      for (const item of items) out.push(normaliseScore(await fn(item.prompt as string, item.response)).score);
      return out;
    },
  };
}

export type PromptFormat = "auto" | "chat" | "text";

export interface TextBuildOptions {
  /** Responses per prompt (default 5, the reference's seed count). */
  samples?: number;
  /** Seed of sample j (default the reference's; more samples than seeds continue 1000, 1001, ...). */
  seeds?: number[];
  temperature?: number; // default 0.8
  topP?: number; // default 0.95 (the reference's decode.py)
  topK?: number; // default 0 (no limit)
  /** New tokens per response, at most (default 4096, the reference's max_tokens); never past the policy's context. */
  maxNewTokens?: number;
  /** Prompts per generation batch (each brings K rows; default 8). */
  batchSize?: number;
  /** auto (default): chat when the prompt is a message list or the policy has a chat template. */
  promptFormat?: PromptFormat;
  /** Drop pairs whose score_chosen - score_rejected is below this (default: keep all). */
  minMargin?: number;
  /** Add score_margin and score_margin_normalized ((m - mean) / (std + 1e-6) over kept pairs). */
  normalizeMargin?: boolean;
  /** The journal file (one JSON line per finished prompt); resumed when it exists. */
  journal: string;
  /** More identity for the journal: the policy's directory, say. A journal of another build is refused. */
  identity?: Record<string, unknown>;
  onProgress?: (done: number, total: number, info: string) => void;
  /** Told once when responses are sampled shorter than maxNewTokens to fit the scorer's context. */
  onNotice?: (message: string) => void;
}

export interface TextPair {
  prompt: string | Message[];
  chosen: string | Message[];
  rejected: string | Message[];
  score_chosen: number;
  score_rejected: number;
  all_generated_responses: string[];
  all_rm_scores: (number | null)[];
  score_margin?: number;
  score_margin_normalized?: number;
}

export interface TextBuildSummary {
  prompts: number;
  /** Prompts finished by an earlier, interrupted run (read back from the journal). */
  resumed: number;
  pairs: number;
  /** unscored: prompts left with fewer than two scored responses (see BatchScorer.score). */
  dropped: { identical_responses: number; tied_scores: number; below_margin: number; unscored: number };
  /** Responses the scorer could not score (null), left out of the pairing. */
  unscored_responses: number;
  responses: number;
  /** Responses cut to fit the scorer's context before scoring (their samples kept). */
  truncated_for_scoring: number;
  generated_tokens: number;
  finish_reasons: Record<string, number>;
  /** Tokens generated per second by this run (not counting resumed prompts). */
  tokens_per_second: number;
  seconds: number;
  scores: { min: number; mean: number; max: number; histogram: HistogramBucket[] } | null;
  margins: { min: number; mean: number; max: number; histogram: HistogramBucket[] } | null;
}

/** One prompt's finished work as journaled: its responses, their scores (null: all identical, not scored). */
interface Finished {
  i: number;
  responses: string[];
  scores: (number | null)[] | null;
  tokens: number[];
  finish: string[];
  /** Responses cut to fit the reward model's context for scoring (absent: none). */
  truncated?: number;
}

interface Prepared {
  row: PromptRow;
  chat: boolean;
  messages: Message[] | null;
  text: string;
  ids: number[];
}

/** Renders every prompt for the policy (chat template with a generation prompt, or plain text) and checks its length. */
export function preparePrompts(
  rows: PromptRow[],
  policy: { maxPositions: number },
  tokenizer: Tokenizer,
  format: PromptFormat,
  policyDir: string,
): Prepared[] {
  const problems = new ProblemList();
  const hasTemplate = tokenizer.chatTemplate !== undefined;
  const prepared: Prepared[] = [];
  for (const row of rows) {
    const chat = Array.isArray(row.prompt) || format === "chat" || (format === "auto" && hasTemplate);
    if (chat && format === "text") {
      problems.push(`${row.at}: field 'prompt': a message list cannot be given as plain text (--prompt-format text)`);
      continue;
    }
    if (chat && !hasTemplate) {
      problems.push(
        `${row.at}: a chat prompt needs the policy's chat template, and ${policyDir} has none (chat_template in tokenizer_config.json or chat_template.jinja)`,
      );
      continue;
    }
    const messages = chat
      ? typeof row.prompt === "string"
        ? [{ role: "user", content: row.prompt }]
        : row.prompt
      : null;
    let text: string;
    let ids: number[];
    try {
      if (messages) {
        const enc = tokenizer.applyChatTemplate(
          messages.map((m) => ({ ...m })),
          { addGenerationPrompt: true, tokenize: true },
        ) as { text: string; ids: number[] };
        ({ text, ids } = enc);
      } else {
        text = row.prompt as string;
        ids = tokenizer.encode(text);
      }
    } catch (e) {
      problems.push(`${row.at}: cannot render the prompt for the policy: ${(e as Error).message}`);
      continue;
    }
    if (ids.length === 0) {
      problems.push(`${row.at}: field 'prompt': the prompt encodes to no tokens`);
      continue;
    }
    if (ids.length >= policy.maxPositions) {
      problems.push(
        `${row.at}: field 'prompt': ${ids.length} tokens, but the policy's context (${policyDir}/config.json) holds ${policy.maxPositions} positions: no room for a response`,
      );
      continue;
    }
    prepared.push({ row, chat, messages, text, ids });
  }
  if (problems.length) throw new DataError(problems);
  const promptIds = prepared.map((p) => ({ at: `${p.row.at}: the prompt`, ids: p.ids }));
  checkTokenIds(promptIds, modelVocab(policyDir), tokenizerDirectory(policyDir));
  return prepared;
}

/** A 32-bit seed for sample `seed` of a prompt: the sample's seed mixed with the prompt's text (FNV-1a). */
export function rowSeed(seed: number, text: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return Math.imul(h ^ (h >>> 16), 0x45d9f3b) >>> 0;
}

/** The seeds of K samples: the given ones, continued 1000, 1001, ... past their end. */
export function sampleSeeds(k: number, seeds: number[] = REFERENCE_SEEDS): number[] {
  return Array.from({ length: k }, (_, j) => (j < seeds.length ? seeds[j] : 1000 + j - seeds.length));
}

/**
 * Reads a journal back: its finished prompts by index, after checking it belongs to this build;
 * starts one (its header line) when there is none.
 */
function openJournal(file: string, identity: string, prompts: number, k: number): Map<number, Finished> {
  const lines = readJournalLines(file);
  const done = new Map<number, Finished>();
  if (lines.length === 0) {
    appendLinesDurable(file, [JSON.stringify({ journal: "omni-dpo data build", identity })]);
    return done;
  }
  let header: { journal?: unknown; identity?: unknown } | null = null;
  try {
    header = JSON.parse(lines[0]) as { journal?: unknown; identity?: unknown } | null;
  } catch {
    /* not a journal: refused below */
  }
  if (header?.journal !== "omni-dpo data build" || header.identity !== identity) {
    throw new Error(
      `${file}: this journal belongs to another build ` +
        "(other prompts, policy, scorer or sampling settings)" +
        `${header?.journal === "omni-dpo data build" ? "" : ", or is not a data build journal (line 1)"}; ` +
        "delete it or pass --restart to start over, or run with the settings it was made with",
    );
  }
  lines.slice(1).forEach((line, n) => {
    const f = journalEntry(line, prompts, k, `${file}:${n + 2}`);
    done.set(f.i, f);
  });
  return done;
}

/**
 * One journal line: a finished prompt of this build (its index, and K responses with their
 * counts), or an error naming the line.
 */
function journalEntry(line: string, prompts: number, k: number, at: string): Finished {
  const bad = (what: string) =>
    new Error(`${at}: ${what}; not a line this build wrote. Delete the journal or pass --restart`);
  let f: Finished;
  try {
    f = JSON.parse(line) as Finished;
  } catch (e) {
    throw bad(`not valid JSON (${(e as Error).message})`);
  }
  if (typeof f !== "object" || f === null || Array.isArray(f)) throw bad("expected a JSON object");
  if (!Number.isInteger(f.i) || f.i < 0 || f.i >= prompts) {
    throw bad(`field 'i' must be a prompt index below ${prompts}, got ${JSON.stringify(f.i)}`);
  }
  const list = (field: keyof Finished, ok: (x: unknown) => boolean, what: string) => {
    const v = f[field];
    if (!Array.isArray(v) || v.length !== k || !v.every(ok)) {
      throw bad(`field '${field}' must be a list of ${k} ${what}`);
    }
  };
  list("responses", (x) => typeof x === "string", "strings");
  list("tokens", (x) => Number.isInteger(x) && (x as number) >= 0, "token counts");
  list("finish", (x) => typeof x === "string", "finish reasons");
  if (f.scores !== null)
    list("scores", (x) => x === null || (typeof x === "number" && Number.isFinite(x)), "finite scores or nulls");
  if (f.truncated !== undefined && !(Number.isInteger(f.truncated) && f.truncated >= 0)) {
    throw bad("field 'truncated' must be a count");
  }
  return f;
}

/**
 * New tokens each prompt may sample: maxNew, within the policy's context, and within the
 * scorer's (a reward model's) so that prompt + response can be scored whole. Checked before
 * any sampling: a prompt that leaves the scorer no room is an error naming it; a cap below
 * maxNew is said once, with the numbers.
 */
function newTokenCaps(
  prepared: Prepared[],
  policy: { maxPositions?: number },
  scorer: BatchScorer,
  maxNew: number,
  onNotice?: (m: string) => void,
): number[] {
  const policyCaps = prepared.map((p) => Math.min(maxNew, (policy.maxPositions ?? Infinity) - p.ids.length));
  const context = scorer.context;
  if (!context) return policyCaps;
  const problems = new ProblemList();
  const caps = prepared.map((p, i) => {
    const empty = { prompt: p.row.prompt, promptText: p.text, chat: p.chat, response: "", at: p.row.at };
    const used = context.promptTokens(empty);
    if (used >= context.tokens) {
      problems.push(
        `${p.row.at}: field 'prompt': ${used} tokens for ${scorer.name}, whose context ` +
          `(${context.file}) holds ${context.tokens}: no room to score a response`,
      );
    }
    return Math.min(policyCaps[i], context.tokens - used);
  });
  if (problems.length) throw new DataError(problems);
  const capped = caps.filter((c, i) => c < policyCaps[i]);
  if (capped.length) {
    const [least, most] = [Math.min(...capped), Math.max(...capped)];
    onNotice?.(
      `responses are sampled to fit ${scorer.name}'s context of ${context.tokens} tokens ` +
        `(${context.file}) with their prompt: ${capped.length} of ${prepared.length} prompts sample at most ` +
        `${least}${most > least ? `-${most}` : ""} ` +
        `new tokens instead of ${maxNew} (the policy's context: ${policy.maxPositions ?? "unknown"})`,
    );
  }
  return caps;
}

/**
 * Samples, scores and pairs. Prompts are generated in batches sorted by token length; each
 * finished prompt is journaled (fsynced) before the next batch starts, and a journal left by an
 * interrupted run is read back so those prompts are not redone. Each response is sampled from
 * its own seed, so a prompt's responses do not depend on batching, order or resumption. The
 * policy is a Generator (the local model, or an OpenAI-compatible endpoint) or a model.
 */
export async function buildTextPairs(
  policy: CausalLM | Generator,
  tokenizer: Tokenizer,
  prepared: Prepared[],
  scorer: BatchScorer,
  options: TextBuildOptions,
): Promise<{ pairs: TextPair[]; summary: TextBuildSummary }> {
  const k = options.samples ?? 5;
  if (k < 2) throw new Error(`samples must be at least 2 to make a pair, got ${k}`);
  const seeds = sampleSeeds(k, options.seeds);
  const maxNew = options.maxNewTokens ?? 4096;
  const batchSize = options.batchSize ?? 8;
  const sampling = { temperature: options.temperature ?? 0.8, topP: options.topP ?? 0.95, topK: options.topK ?? 0 };
  const identity = createHash("sha256")
    .update(
      JSON.stringify({
        prompts: prepared.map((p) => p.text),
        seeds,
        maxNew,
        ...sampling,
        scorer: scorer.name,
        ...options.identity,
      }),
    )
    .digest("hex");
  const generator = asGenerator(policy, tokenizer);
  const caps = newTokenCaps(prepared, generator, scorer, maxNew, options.onNotice);
  const done = openJournal(options.journal, identity, prepared.length, k);
  const resumed = done.size;
  const order = prepared.map((_, i) => i).sort((a, b) => prepared[a].ids.length - prepared[b].ids.length || a - b);
  const start = Date.now();
  let tokensThisRun = 0;
  const report = () => {
    const seconds = (Date.now() - start) / 1000;
    options.onProgress?.(done.size, prepared.length, `${(tokensThisRun / Math.max(seconds, 1e-9)).toFixed(0)} tok/s`);
  };
  report();
  for (let b = 0; b < order.length; b += batchSize) {
    const todo = order.slice(b, b + batchSize).filter((i) => !done.has(i));
    if (todo.length === 0) continue;
    // All K samples of the batch's prompts decode together (locally: one batch, rows leaving it).
    const out = await generator.generate(
      todo.map((i) => ({
        prompt: prepared[i].messages ?? prepared[i].text,
        seeds: seeds.map((s) => rowSeed(s, prepared[i].text)),
        maxTokens: caps[i],
        ...sampling,
      })),
    );
    const finished: Finished[] = todo.map((i, n) => {
      const samples = out[n];
      tokensThisRun += samples.reduce((s, x) => s + x.tokens, 0);
      return {
        i,
        responses: samples.map((x) => x.text),
        scores: null,
        tokens: samples.map((x) => x.tokens),
        finish: samples.map((x) => x.finishReason),
      };
    });
    // As the reference: prompts whose responses are all the same are dropped before scoring.
    const toScore = finished.filter((f) => new Set(f.responses).size > 1);
    const items = toScore.flatMap((f) =>
      f.responses.map((response): ResponseToScore => ({
        prompt: prepared[f.i].row.prompt,
        promptText: prepared[f.i].text,
        chat: prepared[f.i].chat,
        response,
        at: prepared[f.i].row.at,
      })),
    );
    const scores = items.length ? await scorer.score(items) : [];
    if (scores.length !== items.length)
      throw new Error(`scorer ${scorer.name} returned ${scores.length} scores for ${items.length} responses`);
    toScore.forEach((f, n) => {
      f.scores = scores.slice(n * k, (n + 1) * k);
      const cut = items.slice(n * k, (n + 1) * k).filter((item) => item.truncatedTo !== undefined).length;
      if (cut) f.truncated = cut;
      const bad = f.scores.findIndex((s) => s !== null && (typeof s !== "number" || !Number.isFinite(s)));
      if (bad >= 0)
        throw new Error(
          `${prepared[f.i].row.at}: scorer ${scorer.name} gave response ${bad} a non-finite score (${f.scores[bad]})`,
        );
    });
    appendLinesDurable(
      options.journal,
      finished.map((f) => JSON.stringify(f)),
    );
    for (const f of finished) done.set(f.i, f);
    report();
  }
  const seconds = (Date.now() - start) / 1000;
  const result = binarizeAll(prepared, done, options);
  const all = [...done.values()];
  const allScores = all.flatMap((f) => (f.scores ?? []).filter((x): x is number => x !== null));
  const finishReasons: Record<string, number> = {};
  for (const f of all) for (const r of f.finish) finishReasons[r] = (finishReasons[r] ?? 0) + 1;
  const summary: TextBuildSummary = {
    prompts: prepared.length,
    resumed,
    pairs: result.pairs.length,
    dropped: result.dropped,
    unscored_responses: all.reduce((n, f) => n + (f.scores ?? []).filter((x) => x === null).length, 0),
    responses: all.length * k,
    truncated_for_scoring: all.reduce((s, f) => s + (f.truncated ?? 0), 0),
    generated_tokens: all.reduce((s, f) => s + f.tokens.reduce((a, b) => a + b, 0), 0),
    finish_reasons: finishReasons,
    tokens_per_second: tokensThisRun / Math.max(seconds, 1e-9),
    seconds,
    scores: describe(allScores),
    margins: describe(result.pairs.map((p) => p.score_chosen - p.score_rejected)),
  };
  return { pairs: result.pairs, summary };
}

function describe(values: number[]): TextBuildSummary["scores"] {
  if (values.length === 0) return null;
  const buckets = histogram(values, 10);
  // Reduced, not spread into Math.min: a build's scores can number hundreds of thousands.
  return {
    min: values.reduce((a, b) => Math.min(a, b)),
    mean: values.reduce((a, b) => a + b, 0) / values.length,
    max: values.reduce((a, b) => Math.max(a, b)),
    histogram: buckets,
  };
}

/**
 * The chosen and rejected indices of one prompt's scores: the first highest and the first lowest
 * (the reference's np.argmax / np.argmin, so ties go to the earlier sample); null when every
 * score is the same (no preference to learn; the reference would pair a response with itself).
 * Unscored responses (null) are passed over.
 */
export function bestAndWorst(scores: (number | null)[]): { chosen: number; rejected: number } | null {
  let chosen = -1;
  let rejected = -1;
  scores.forEach((s, i) => {
    if (s === null) return;
    if (chosen < 0 || s > scores[chosen]!) chosen = i;
    if (rejected < 0 || s < scores[rejected]!) rejected = i;
  });
  return chosen < 0 || scores[chosen] === scores[rejected] ? null : { chosen, rejected };
}

/** Adds score_margin and score_margin_normalized, as the reference's normalize_score_margin: (m - mean) / (population std + 1e-6). */
export function normalizeMargins(pairs: TextPair[]): void {
  if (pairs.length === 0) return;
  const margins = pairs.map((p) => p.score_chosen - p.score_rejected);
  const mean = margins.reduce((a, b) => a + b, 0) / margins.length;
  const std = Math.sqrt(margins.reduce((a, m) => a + (m - mean) ** 2, 0) / margins.length) + 1e-6;
  pairs.forEach((p, n) => {
    p.score_margin = margins[n];
    p.score_margin_normalized = (margins[n] - mean) / std;
  });
}

/**
 * Pairs every finished prompt, in input order. Dropped: all responses identical (never scored),
 * all scores tied, margin below minMargin, fewer than two responses scored.
 */
function binarizeAll(
  prepared: Prepared[],
  done: Map<number, Finished>,
  options: TextBuildOptions,
): { pairs: TextPair[]; dropped: TextBuildSummary["dropped"] } {
  const dropped = { identical_responses: 0, tied_scores: 0, below_margin: 0, unscored: 0 };
  const pairs: TextPair[] = [];
  prepared.forEach((p, i) => {
    const f = done.get(i)!;
    if (!f.scores) {
      dropped.identical_responses++;
      return;
    }
    if (f.scores.filter((x) => x !== null).length < 2) {
      dropped.unscored++;
      return;
    }
    const pick = bestAndWorst(f.scores);
    if (!pick) {
      dropped.tied_scores++;
      return;
    }
    const [best, worst] = [f.scores[pick.chosen]!, f.scores[pick.rejected]!];
    if (options.minMargin !== undefined && best - worst < options.minMargin) {
      dropped.below_margin++;
      return;
    }
    const answer = (text: string): string | Message[] =>
      p.messages ? [...p.messages, { role: "assistant", content: text }] : text;
    pairs.push({
      prompt: p.row.prompt,
      chosen: answer(f.responses[pick.chosen]),
      rejected: answer(f.responses[pick.rejected]),
      score_chosen: best,
      score_rejected: worst,
      all_generated_responses: f.responses,
      all_rm_scores: f.scores,
    });
  });
  if (options.normalizeMargin) normalizeMargins(pairs);
  return { pairs, dropped };
}

/** Writes the pairs (atomically), the summary beside them (`<out>.summary.json`), then removes the journal. */
export function writeTextBuild(out: string, journal: string, pairs: TextPair[], summary: TextBuildSummary): string {
  writeJsonLinesAtomic(out, pairs);
  const summaryFile = `${out}.summary.json`;
  writeJsonAtomic(summaryFile, summary);
  rmSync(journal, { force: true });
  return summaryFile;
}

/** The summary as text: counts, why prompts were dropped, and the score and margin histograms. */
export function formatTextSummary(s: TextBuildSummary): string {
  const lines = [
    `${s.pairs} pairs from ${s.prompts} prompts${s.resumed ? ` (${s.resumed} finished by an earlier run)` : ""}; dropped: ` +
      `${s.dropped.identical_responses} with identical responses, ${s.dropped.tied_scores} with all scores tied, ${s.dropped.below_margin} below the margin` +
      (s.dropped.unscored ? `, ${s.dropped.unscored} with fewer than two responses scored` : ""),
    `${s.responses} responses, ${s.generated_tokens} tokens (${Object.entries(s.finish_reasons)
      .map(([r, n]) => `${n} ${r}`)
      .join(", ")}); ` + `${s.tokens_per_second.toFixed(1)} tokens/s in ${s.seconds.toFixed(1)}s`,
  ];
  if (s.unscored_responses)
    lines.push(`${s.unscored_responses} responses the scorer could not score (left out of the pairing)`);
  if (s.truncated_for_scoring) {
    lines.push(`${s.truncated_for_scoring} responses cut to fit the reward model's context before scoring`);
  }
  for (const [name, d] of [
    ["scores", s.scores],
    ["margins (chosen - rejected)", s.margins],
  ] as const) {
    if (!d) continue;
    lines.push(`${name}: min ${d.min.toFixed(3)}, mean ${d.mean.toFixed(3)}, max ${d.max.toFixed(3)}`);
    const peak = Math.max(...d.histogram.map((b) => b.count));
    const labels = d.histogram.map((b) => `[${Number(b.from.toPrecision(4))}, ${Number(b.to.toPrecision(4))})`);
    const width = Math.max(...labels.map((l) => l.length));
    d.histogram.forEach((b, i) =>
      lines.push(`  ${labels[i].padEnd(width)} ${"#".repeat(Math.round((30 * b.count) / peak)).padEnd(30)} ${b.count}`),
    );
  }
  return lines.join("\n");
}
