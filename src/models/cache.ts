// The key/value cache for incremental decoding: per layer, the keys and values of every
// position seen so far, [B, Hkv, T, D]. Positions and masks for new tokens come from it.
import * as torch from "../torch/index.js";

export class KVCache {
  // Per layer, a buffer [B, Hkv, capacity, D] whose first `#lengths[layer]` positions are filled:
  // a step writes its keys and values in place, and the buffer grows (doubling) only when full,
  // instead of concatenating (copying everything cached) at every step.
  readonly #keys: (torch.Tensor | null)[];
  readonly #values: (torch.Tensor | null)[];
  readonly #lengths: number[];

  /**
   * Numbers a model keeps per batch row beside the keys and values, by name (Qwen2-VL's M-RoPE
   * offsets): compact() and append() keep them in step with the rows; a row without one reads 0.
   */
  readonly rowValues = new Map<string, number[]>();

  constructor(readonly numLayers: number) {
    this.#keys = new Array(numLayers).fill(null);
    this.#values = new Array(numLayers).fill(null);
    this.#lengths = new Array(numLayers).fill(0);
  }

  /** Tokens already cached. */
  get length(): number {
    return this.#lengths[0] ?? 0;
  }

  /**
   * Appends this step's keys and values [B, Hkv, T, D] for `layer`; returns all so far,
   * [B, Hkv, past + T, D] (views of the buffers).
   */
  update(layer: number, k: torch.Tensor, v: torch.Tensor): [torch.Tensor, torch.Tensor] {
    const used = this.#lengths[layer];
    const need = used + k.shape[2];
    const out = [this.#keys, this.#values].map((store, s) => {
      const x = s === 0 ? k : v;
      let buffer = store[layer];
      if (!buffer || buffer.shape[2] < need) {
        const [b, h, , d] = x.shape;
        const capacity = Math.max(need, 2 * (buffer?.shape[2] ?? 0));
        const grown = torch.zeros([b, h, capacity, d], { dtype: x.dtype, device: x.device }).keep();
        if (buffer && used > 0)
          torch.tidy(() => {
            grown.narrow(2, 0, used).copy_(buffer!.narrow(2, 0, used));
          });
        buffer?.dispose();
        store[layer] = buffer = grown;
      }
      torch.tidy(() => {
        buffer!.narrow(2, used, need - used).copy_(x);
      });
      return buffer.narrow(2, 0, need);
    });
    this.#lengths[layer] = need;
    return [out[0], out[1]];
  }

  /**
   * Keeps only batch rows `rows` (int64 [B']) and the positions from `firstColumn` on: rows that
   * finished generating leave the batch, and columns that are padding in every remaining row go.
   * The room left for further positions is kept.
   */
  compact(rows: torch.Tensor | null, firstColumn = 0): void {
    for (const store of [this.#keys, this.#values]) {
      store.forEach((t, layer) => {
        if (!t) return;
        const used = this.#lengths[layer];
        const kept = torch.tidy(() => {
          let x = t.narrow(2, firstColumn, used - firstColumn); // [B, Hkv, T', D]
          if (rows) x = x.indexSelect(0, rows); // [B', Hkv, T', D]
          const [b, h, , d] = x.shape;
          const buffer = torch.zeros([b, h, t.shape[2] - firstColumn, d], { dtype: t.dtype, device: t.device });
          buffer.narrow(2, 0, used - firstColumn).copy_(x);
          return buffer;
        });
        t.dispose();
        store[layer] = kept.keep();
      });
    }
    this.#lengths.forEach((n, layer) => {
      this.#lengths[layer] = Math.max(0, n - firstColumn);
    });
    if (rows && this.rowValues.size) {
      const kept = rows.toArray() as number[];
      for (const [name, values] of this.rowValues)
        this.rowValues.set(
          name,
          kept.map((r) => values[r] ?? 0),
        );
    }
  }

  /** Batch rows held (0 when empty). */
  get rows(): number {
    return this.#keys.find((t) => t !== null)?.shape[0] ?? 0;
  }

  /**
   * Takes `other`'s rows (new requests prefilled on their own) below these: the shorter of the
   * two is left-padded with zeros so their lengths agree, as left-padded prompts are (the caller
   * masks those positions). `other` is emptied. This is how rows join a running batch.
   */
  append(other: KVCache): void {
    const total = Math.max(this.length, other.length);
    const [mineRows, theirRows] = [this.rows, other.rows];
    for (const name of new Set([...this.rowValues.keys(), ...other.rowValues.keys()])) {
      const part = (values: number[] | undefined, n: number) => Array.from({ length: n }, (_, r) => values?.[r] ?? 0);
      this.rowValues.set(name, [
        ...part(this.rowValues.get(name), mineRows),
        ...part(other.rowValues.get(name), theirRows),
      ]);
    }
    other.rowValues.clear();
    const filled = (t: torch.Tensor, used: number) => {
      // [B, Hkv, used, D] -> [B, Hkv, total, D]
      const x = t.narrow(2, 0, used);
      if (used === total) return x;
      const [b, h, , d] = t.shape;
      return torch.cat([torch.zeros([b, h, total - used, d], { dtype: t.dtype, device: t.device }), x], 2);
    };
    for (const [mine, theirs] of [
      [this.#keys, other.#keys],
      [this.#values, other.#values],
    ]) {
      mine.forEach((t, layer) => {
        const o = theirs[layer];
        if (!o) return;
        const joined = torch.tidy(() =>
          t
            ? torch.cat([filled(t, this.#lengths[layer]), filled(o, other.#lengths[layer])], 0)
            : filled(o, other.#lengths[layer]).contiguous(),
        );
        t?.dispose();
        o.dispose();
        mine[layer] = joined.keep();
        theirs[layer] = null;
      });
    }
    this.#lengths.fill(total);
    other.#lengths.fill(0);
  }

  dispose(): void {
    this.rowValues.clear();
    for (const t of [...this.#keys, ...this.#values]) t?.dispose();
    this.#keys.fill(null);
    this.#values.fill(null);
    this.#lengths.fill(0);
  }
}
