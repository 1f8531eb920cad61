// The key/value cache for incremental decoding: per layer, the keys and values of every
// position seen so far, [B, H_kv, T, d]. Positions and masks for new tokens come from it.
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

  /** Appends this step's keys and values for `layer`; returns all of them so far. */
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

  /** Keeps only the batch rows in `index` (beam or finished-row pruning). */
  selectRows(index: torch.Tensor): void {
    for (let i = 0; i < this.numLayers; i++) {
      for (const store of [this.#keys, this.#values]) {
        const old = store[i];
        if (old) { store[i] = old.indexSelect(0, index).keep(); old.dispose(); }
      }
    }
  }

  dispose(): void {
    for (const t of [...this.#keys, ...this.#values]) t?.dispose();
    this.#keys.fill(null);
    this.#values.fill(null);
  }
}
