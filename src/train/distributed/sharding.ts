// How data is split across ranks, as PyTorch's DistributedSampler splits it: the epoch's order
// padded (from its start) to a multiple of the world size, then every worldSize-th item from
// the rank's offset. Consecutive micro-batches of b per rank then cover what one process with
// batch b x worldSize sees, so the averaged gradients are the same.

/** Rank `rank`'s share of `order`: items rank, rank + W, ... of the order padded to ceil(n / W) x W. */
export function shardOf<T>(order: readonly T[], rank: number, worldSize: number): T[] {
  if (order.length === 0) return [];
  const total = Math.ceil(order.length / worldSize) * worldSize;
  const out: T[] = [];
  for (let i = rank; i < total; i += worldSize) out.push(order[i % order.length]);
  return out;
}

/** Rank `rank`'s share without padding (evaluation: each pair counted once): items rank, rank + W, ... */
export function strideOf<T>(items: readonly T[], rank: number, worldSize: number): T[] {
  return items.filter((_, i) => i % worldSize === rank);
}

/** Undoes strideOf: parts[r] is rank r's strideOf(items); returns the n items in order. */
export function interleave<T>(parts: readonly (readonly T[])[], n: number): T[] {
  return Array.from({ length: n }, (_, i) => parts[i % parts.length][Math.floor(i / parts.length)]);
}
