// Where a tokenizer meets a model: every token id must have a row in the model's embedding. A
// tokenizer of another vocabulary (a reference or reward model of another family, a token added
// to the tokenizer past vocab_size) would otherwise fail deep in the engine with "index out of
// range in self", naming neither. Checked before any forward pass, naming the tokenizer, the
// model, the id, the size and where the id came from.
import { join } from "node:path";
import { parseModelConfig, readConfig } from "./config.js";
import { isAdapterDirectory, readAdapterConfig } from "./peft.js";
import { resolveArchitecture } from "./registry.js";

/** A model's embedding size (config.json's vocab_size, with its architecture's default), and the file it comes from. */
export interface ModelVocab {
  size: number;
  file: string;
}

/** The vocabulary a model directory's embedding holds (an adapter's: its base model's). */
export function modelVocab(dir: string): ModelVocab {
  const modelDir = isAdapterDirectory(dir) ? readAdapterConfig(dir).baseDir : dir;
  const file = join(modelDir, "config.json");
  const raw = readConfig(modelDir);
  const parse = (r: typeof raw) => resolveArchitecture(r, file).parseConfig(r) as { vocabSize?: unknown };
  const parsed = parseModelConfig(parse, raw, file);
  if (typeof parsed.vocabSize !== "number") throw new Error(`${file}: no vocab_size`);
  return { size: parsed.vocabSize, file };
}

/** The positions a model directory's config.json gives it (its context), without loading weights. */
export function modelMaxPositions(dir: string): number {
  const modelDir = isAdapterDirectory(dir) ? readAdapterConfig(dir).baseDir : dir;
  const file = join(modelDir, "config.json");
  const raw = readConfig(modelDir);
  const parse = (r: typeof raw) =>
    resolveArchitecture(r, file).parseConfig(r) as { maxPositions?: unknown; nPositions?: unknown };
  const parsed = parseModelConfig(parse, raw, file);
  const positions = parsed.maxPositions ?? parsed.nPositions; // GPT-2 names it n_positions
  if (typeof positions !== "number") throw new Error(`${file}: no context length (max_position_embeddings)`);
  return positions;
}

/** Token ids and where they came from ("data.jsonl:3 field 'chosen'", "prompt 2"). */
export interface TokenRow {
  at: string;
  ids: readonly number[];
}

/**
 * The rows of tokenized pairs (chosen and rejected, each with its prompt), pair i named by `at(i)`.
 * (Typed by the two fields it reads: data/'s TokenizedPair is one, and models/ sits below data/.)
 */
export function* pairTokenRows(
  pairs: readonly { chosenInputIds: number[]; rejectedInputIds: number[] }[],
  at: (i: number) => string,
): Generator<TokenRow> {
  for (const [i, p] of pairs.entries()) {
    yield { at: `${at(i)}, chosen`, ids: p.chosenInputIds };
    yield { at: `${at(i)}, rejected`, ids: p.rejectedInputIds };
  }
}

export class VocabularyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "VocabularyError";
  }
}

/**
 * Checks every id of `rows` against the model's embedding. The error names the tokenizer, the
 * model's config.json, the first offending ids with where they are, the size, and how many rows
 * are affected.
 */
export function checkTokenIds(rows: Iterable<TokenRow>, vocab: ModelVocab, tokenizer: string): void {
  const bad: string[] = [];
  let count = 0;
  for (const row of rows) {
    const id = row.ids.find((x) => !(x >= 0 && x < vocab.size));
    if (id === undefined) continue;
    count++;
    if (bad.length < 3) bad.push(`${row.at}: token id ${id}`);
  }
  if (count === 0) return;
  throw new VocabularyError(
    `${bad.join("; ")}${count > bad.length ? ` (and ${count - bad.length} more rows)` : ""}: ` +
      `the tokenizer of ${tokenizer} gives ids the model's embedding does not have ` +
      `(${vocab.file}: vocab_size ${vocab.size}, ids 0..${vocab.size - 1}). ` +
      "The tokenizer and the model do not match: another vocabulary, or tokens added past vocab_size",
  );
}
