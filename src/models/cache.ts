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

  dispose(): void {
    for (const t of [...this.#keys, ...this.#values]) t?.dispose();
    this.#keys.fill(null);
    this.#values.fill(null);
  }
}
