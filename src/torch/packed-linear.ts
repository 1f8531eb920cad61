// Linear weights prepacked for oneDNN's matmul, for inference on CPU (native/src/packed_linear.h):
// the weight is reordered once into the blocked layout the matmul kernel reads, instead of by
// OpenBLAS on every call, which is most of a decoding step's cost with a few rows.
import { native } from "./native.js";
import { Tensor } from "./tensor.js";

export class PackedLinear {
  #handle: number;

  private constructor(handle: number) {
    this.#handle = handle;
  }

  /**
   * Packs weight [out, in] and bias [out] (float32 on CPU); null where that is not possible
   * (another dtype or device, or an addon built without oneDNN), and linear() is the way.
   * The pack holds its own copy of the weight: as much memory again as the weight.
   */
  static create(weight: Tensor, bias: Tensor | null): PackedLinear | null {
    const handle = native.packedLinearCreate(weight.id, bias ? bias.id : null);
    return handle === 0 ? null : new PackedLinear(handle);
  }

  /**
   * linear(x, weight, bias) for x [..., in] -> [..., out], equal up to float rounding. Calls
   * autograd must record (grad enabled and a tensor requiring it), under autocast, or with x
   * not float32 on CPU run linear() itself; a weight or bias written in place since the last
   * call is packed again first.
   */
  forward(x: Tensor): Tensor {
    return new Tensor(native.packedLinearForward(this.handle, x.id));
  }

  /** Bytes of the packed copy. */
  get bytes(): number {
    return native.packedLinearBytes(this.handle);
  }

  get isDisposed(): boolean {
    return this.#handle === 0;
  }

  /** Frees the packed copy; safe to call twice. */
  dispose(): void {
    if (this.#handle === 0) return;
    native.packedLinearDestroy(this.#handle);
    this.#handle = 0;
  }

  private get handle(): number {
    if (this.#handle === 0) throw new Error("this packed linear has been disposed");
    return this.#handle;
  }
}
