// The reference model's log-probabilities: computed live by a frozen model, or computed once
// before training and cached on disk (keyed by the data's token ids and images, the reference
// weights, the length normalisation and LD-DPO's alpha), so only the policy sits in memory while training.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { CausalLM } from "../models/causal-lm.js";
import type { ImageTokenizedPair } from "../data/image-tokenize.js";
import type { TokenizedPair } from "../data/tokenize.js";
import { writeJsonAtomic } from "../util/files.js";
import { pairLogps, type PairLogps, type PairVision } from "../logprobs/pairs.js";
import { NonFiniteMetricError } from "./metrics.js";

/** Reference log-probs for the pairs at `indices` of a split. */
export interface ReferenceSource {
  logps(pairs: TokenizedPair[], indices: number[]): PairLogps;
}

/** A frozen model run on each batch as it comes (one forward per batch). */
export class LiveReference implements ReferenceSource {
  constructor(
    readonly model: CausalLM,
    readonly padTokenId: number,
    readonly lengthNorm: boolean,
    readonly ldAlpha: number | null = null,
    readonly vision: PairVision | null = null,
  ) {}
  logps(pairs: TokenizedPair[]): PairLogps {
    return pairLogps(this.model, pairs, this.padTokenId, this.lengthNorm, Math.max(1, pairs.length), undefined, {
      ldAlpha: this.ldAlpha,
      vision: this.vision,
    });
  }
}

export class CachedReference implements ReferenceSource {
  constructor(readonly values: PairLogps) {}
  logps(_pairs: TokenizedPair[], indices: number[]): PairLogps {
    return { chosen: indices.map((i) => this.values.chosen[i]), rejected: indices.map((i) => this.values.rejected[i]) };
  }
}

/** A hash of a model directory's config and weight files' contents. */
export function modelFingerprint(dir: string): string {
  const h = createHash("sha256");
  for (const name of readdirSync(dir).sort()) {
    if (name === "config.json" || name.endsWith(".safetensors") || name === "model.safetensors.index.json") {
      h.update(name);
      h.update(readFileSync(join(dir, name)));
    }
  }
  return h.digest("hex");
}

/**
 * The cache's key: the model, the settings, every pair's ids and labels, and for image pairs
 * the images' contents and patch grids (the same ids can come with other pixels).
 */
export function cacheKey(
  pairs: TokenizedPair[],
  modelHash: string,
  lengthNorm: boolean,
  ldAlpha: number | null = null,
): string {
  const h = createHash("sha256");
  h.update(`${modelHash}|norm=${lengthNorm}|${ldAlpha === null ? "" : `ld=${ldAlpha}|`}`);
  const imageHashes = new Map<string, string>();
  const imageHash = (file: string) => {
    let hash = imageHashes.get(file);
    if (hash === undefined) {
      hash = createHash("sha256").update(readFileSync(file)).digest("hex");
      imageHashes.set(file, hash);
    }
    return hash;
  };
  for (const p of pairs) {
    h.update(
      `${p.chosenInputIds.join(",")};${p.chosenLabels.join(",")}|${p.rejectedInputIds.join(",")};${p.rejectedLabels.join(",")}`,
    );
    const images = (p as Partial<ImageTokenizedPair>).images;
    if (images?.length) {
      const grids = (p as ImageTokenizedPair).imageGridThw;
      h.update(`|images=${images.map(imageHash).join(",")}|grids=${JSON.stringify(grids)}`);
    }
    h.update("\n");
  }
  return h.digest("hex").slice(0, 32);
}

/** Splits precomputing across processes (data parallelism): each computes its share, all get every value. */
export interface ReferenceSharding {
  /** Whether `mine` is true in every process (all of them hold the cache). */
  all(mine: boolean): boolean;
  /** The pairs (indices among `n`) this process computes. */
  indices(n: number): number[];
  /** Every process's values for its indices(n), merged into values for all n pairs in order. */
  gather(mine: PairLogps, n: number): PairLogps;
  /** Whether this process writes the cache file (one per machine). */
  writes: boolean;
}

/**
 * The cached values for `pairs` pairs, or why the file cannot be used: absent (null), or damaged
 * (a truncated write, a disk error, an edit), which is a reason to recompute, not to stop.
 */
function readCache(file: string, pairs: number): PairLogps | { damaged: string } | null {
  if (!existsSync(file)) return null;
  let values: Partial<PairLogps>;
  try {
    values = JSON.parse(readFileSync(file, "utf8")) as Partial<PairLogps>;
  } catch (e) {
    return { damaged: `not valid JSON (${(e as Error).message})` };
  }
  for (const side of ["chosen", "rejected"] as const) {
    const list = values?.[side];
    if (!Array.isArray(list) || list.length !== pairs) {
      return { damaged: `field '${side}' is not a list of ${pairs} log-probs` };
    }
    const bad = list.findIndex((x) => typeof x !== "number" || !Number.isFinite(x));
    if (bad >= 0) return { damaged: `field '${side}' holds ${JSON.stringify(list[bad])} at index ${bad}` };
  }
  return values as PairLogps;
}

/**
 * Reference log-probs for every pair, from the cache when present, else computed with `model`
 * in batches of `batchSize` and stored. `onProgress` reports pairs done. With `sharding`, each
 * process computes its share and the values are gathered.
 */
export function precomputeReference(options: {
  pairs: TokenizedPair[];
  modelDir: string;
  cacheDir: string;
  lengthNorm: boolean;
  ldAlpha?: number | null;
  batchSize: number;
  padTokenId: number;
  loadModel: () => CausalLM;
  onProgress?: (done: number, total: number) => void;
  sharding?: ReferenceSharding;
  /** Told when a damaged cache file is recomputed. */
  onNotice?: (message: string) => void;
  /** Image pairs' processor and size bounds. */
  vision?: PairVision | null;
}): { values: PairLogps; cached: boolean; file: string } {
  const { sharding } = options;
  const key = cacheKey(options.pairs, modelFingerprint(options.modelDir), options.lengthNorm, options.ldAlpha ?? null);
  const file = join(options.cacheDir, `${key}.json`);
  const read = readCache(file, options.pairs.length);
  if (read && "damaged" in read) {
    options.onNotice?.(`${file}: the reference log-prob cache is damaged (${read.damaged}); recomputing it`);
  }
  const cached = read && !("damaged" in read) ? read : null;
  // Every process must take the same path: one computing alone would wait for the others forever.
  if (cached && (!sharding || sharding.all(true))) return { values: cached, cached: true, file };
  if (!cached && sharding) sharding.all(false);
  const model = options.loadModel();
  try {
    const indices = sharding?.indices(options.pairs.length);
    const mine = indices ? indices.map((i) => options.pairs[i]) : options.pairs;
    const own = pairLogps(
      model,
      mine,
      options.padTokenId,
      options.lengthNorm,
      options.batchSize,
      (done) => options.onProgress?.(done, mine.length),
      { ldAlpha: options.ldAlpha, vision: options.vision },
    );
    const values = sharding ? sharding.gather(own, options.pairs.length) : own;
    // JSON would store NaN as null, and a later run would read it back as a number.
    for (const side of ["chosen", "rejected"] as const) {
      const i = values[side].findIndex((x) => !Number.isFinite(x));
      if (i >= 0)
        throw new NonFiniteMetricError(
          `${options.modelDir}: the reference's ${side} log-prob of pair ${i + 1} is ${values[side][i]}; nothing cached`,
        );
    }
    if (sharding && !sharding.writes) return { values, cached: false, file };
    mkdirSync(options.cacheDir, { recursive: true });
    writeJsonAtomic(file, values);
    return { values, cached: false, file };
  } finally {
    model.dispose();
  }
}
