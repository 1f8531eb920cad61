// Seeded randomness for the arithmetic task: a small fast generator (mulberry32), a string hash
// to derive independent streams from (seed, text) pairs, and standard normal draws. Nothing here
// touches Math.random, so every generator, corruption and judge score is reproducible by seed.

import { mulberry32 } from "../../../src/util/random.js";

/** A source of uniform numbers in [0, 1). */
export type Random = () => number;

/** A seeded generator (mulberry32); the same seed gives the same stream. */
export function seededRandom(seed: number): Random {
  return mulberry32((Math.trunc(seed) ^ 0x9e3779b9) >>> 0);
}

/** A 32-bit hash (FNV-1a with a final avalanche) of a seed and some strings, for deriving streams. */
export function hashSeed(seed: number, ...parts: string[]): number {
  let h = (0x811c9dc5 ^ Math.trunc(seed)) >>> 0;
  h = Math.imul(h ^ (Math.trunc(seed / 4294967296) >>> 0), 0x01000193) >>> 0;
  for (const part of parts) {
    for (let i = 0; i < part.length; i++) h = Math.imul(h ^ part.charCodeAt(i), 0x01000193) >>> 0;
    h = Math.imul(h ^ 0xff, 0x01000193) >>> 0; // separator, so ("ab","c") differs from ("a","bc")
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** An integer uniform in [lo, hi] (both included). */
export function randomInt(random: Random, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

/** One standard normal draw (Box-Muller). */
export function gaussian(random: Random): number {
  let u = random();
  while (u <= Number.EPSILON) u = random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** One element of a non-empty list, chosen by weight (all weights 1 when omitted). */
export function pickWeighted<T>(random: Random, items: readonly T[], weight: (item: T) => number = () => 1): T {
  if (items.length === 0) throw new RangeError("pickWeighted: no items to choose from");
  const total = items.reduce((sum, item) => sum + Math.max(0, weight(item)), 0);
  if (!(total > 0)) return items[Math.floor(random() * items.length)]!;
  let r = random() * total;
  for (const item of items) {
    r -= Math.max(0, weight(item));
    if (r < 0) return item;
  }
  return items[items.length - 1]!;
}
