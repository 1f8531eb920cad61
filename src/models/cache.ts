// The key/value cache for incremental decoding: per layer, the keys and values of every
// position seen so far, [B, Hkv, T, D]. Positions and masks for new tokens come from it.
import * as torch from "../torch/index.js";

export class KVCache {
  readonly #keys: (torch.Tensor | null)[];
  readonly #values: (torch.Tensor | null)[];

  constructor(readonly numLayers: number) {
    this.#keys = new Array(numLayers).fill(null);
    this.#values = new Array(numLayers).fill(null);
  }

  /** Tokens already cached. */
  get length(): number {
    const k = this.#keys[0];
    return k ? k.shape[2] : 0;
  }

  /** Appends this step's keys and values [B, Hkv, T, D] for `layer`; returns all so far, [B, Hkv, past + T, D]. */
  update(layer: number, k: torch.Tensor, v: torch.Tensor): [torch.Tensor, torch.Tensor] {
    const pk = this.#keys[layer];
    const pv = this.#values[layer];
    const keys = pk ? torch.cat([pk, k], 2) : k.clone();
    const values = pv ? torch.cat([pv, v], 2) : v.clone();
    pk?.dispose();
    pv?.dispose();
    this.#keys[layer] = keys.keep();
    this.#values[layer] = values.keep();
    return [keys, values];
  }

  /**
   * Keeps only batch rows `rows` (int64 [B']) and the positions from `firstColumn` on: rows that
   * finished generating leave the batch, and columns that are padding in every remaining row go.
   */
  compact(rows: torch.Tensor | null, firstColumn = 0): void {
    for (const store of [this.#keys, this.#values]) {
      store.forEach((t, layer) => {
        if (!t) return;
        const kept = torch.tidy(() => {
          let x = rows ? t.indexSelect(0, rows) : t;                         // [B', Hkv, T, D]
          if (firstColumn > 0) x = x.narrow(2, firstColumn, x.shape[2] - firstColumn);
          return x.contiguous();
        });
        t.dispose();
        store[layer] = kept.keep();
      });
    }
  }

  /**
   * Takes `other`'s rows (new requests prefilled on their own) below these: the shorter of the
   * two is left-padded with zeros so their lengths agree, as left-padded prompts are (the caller
   * masks those positions). `other` is emptied. This is how rows join a running batch.
   */
  append(other: KVCache): void {
    const total = Math.max(this.length, other.length);
    const padLeft = (t: torch.Tensor) => {                                   // [B, Hkv, T, D] -> [B, Hkv, total, D]
      const missing = total - t.shape[2];
      if (missing === 0) return t;
      const [b, h, , d] = t.shape;
      return torch.cat([torch.zeros([b, h, missing, d], { dtype: t.dtype, device: t.device }), t], 2);
    };
    for (const [mine, theirs] of [[this.#keys, other.#keys], [this.#values, other.#values]]) {
      mine.forEach((t, layer) => {
        const o = theirs[layer];
        if (!o) return;
        const joined = t ? torch.tidy(() => torch.cat([padLeft(t), padLeft(o)], 0)) : o.keep();
        t?.dispose();
        if (t) o.dispose();
        mine[layer] = joined.keep();
        theirs[layer] = null;
      });
    }
  }

  dispose(): void {
    for (const t of [...this.#keys, ...this.#values]) t?.dispose();
    this.#keys.fill(null);
    this.#values.fill(null);
  }
}
