// Mixing preference files as the reference's `dataset_mixer` does: take the first
// `fraction` of each file's rows, concatenate, shuffle under the seed; then hold out a split.
import { readPreferenceFile } from "./readers.js";
import { DataError, type PreferenceRecord } from "./records.js";
import { mulberry32 } from "../util/random.js";

/** A seeded PRNG: the same seed gives the same shuffle on every machine. */
export function rng(seed: number): () => number {
  return mulberry32(seed);
}

export function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  const random = rng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * Reads and mixes files: {path: fraction in (0, 1]} (or a list of paths, each whole); `read`
 * reads one file (default: text preference records; image records use their own reader).
 */
export async function mixDatasets<R = PreferenceRecord>(
  mixer: Record<string, number> | string[],
  seed: number,
  read: (path: string) => Promise<R[]> = readPreferenceFile as unknown as (path: string) => Promise<R[]>,
): Promise<R[]> {
  const entries = Array.isArray(mixer) ? mixer.map((p) => [p, 1] as [string, number]) : Object.entries(mixer);
  if (entries.length === 0) throw new DataError(["dataset_mixer: no datasets given"]);
  const all: R[] = [];
  for (const [path, fraction] of entries) {
    if (typeof fraction !== "number" || !(fraction > 0 && fraction <= 1)) {
      throw new DataError([
        `dataset_mixer: fraction for ${path} must be a number in (0, 1], got ${JSON.stringify(fraction)}`,
      ]);
    }
    const records = await read(path);
    all.push(...records.slice(0, Math.max(1, Math.floor(fraction * records.length))));
  }
  return shuffled(all, seed);
}

/** Splits off a held-out set: `size` below 1 is a fraction, otherwise a count. */
export function holdOut<T>(records: T[], size: number): { train: T[]; test: T[] } {
  if (!(size >= 0)) throw new DataError([`test_split_size must be >= 0, got ${size}`]);
  const n = size < 1 ? Math.round(records.length * size) : Math.floor(size);
  if (n >= records.length)
    throw new DataError([`test_split_size ${size} leaves no training records (${records.length} in all)`]);
  return { train: records.slice(0, records.length - n), test: records.slice(records.length - n) };
}
