// The error every LibTorch failure becomes. The addon constructs it (native.ts hands it the
// class when it loads), so the operator's name and LibTorch's own message arrive as fields and
// callers never parse the text.

export class TorchError extends Error {
  /**
   * @param op what failed: the operator's schema name ("aten::add.Tensor") or the engine call
   *   ("backward", "setGrad", "fromBuffer", ...).
   * @param torchMessage LibTorch's message (or the binding's, for arguments it rejects), without
   *   the C++ backtrace.
   */
  constructor(
    readonly op: string,
    readonly torchMessage: string,
  ) {
    super(`${op}: ${torchMessage}`);
    this.name = "TorchError";
  }
}
