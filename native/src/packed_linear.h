// Linear layers with their weights prepacked for oneDNN's matmul, for inference on CPU.
//
// y = x W^T + b through at::linear hands OpenBLAS the weight as it is stored, and OpenBLAS
// repacks all of it into its kernel's blocked layout on every call. With the few rows of a
// decoding step (a batch of single tokens) that repacking is most of the work: the weight is
// read, written and read again for a handful of output rows. A pack does the reordering once,
// into the blocked layout oneDNN's matmul chose for this CPU (AVX-512 or AVX2 brgemm kernels),
// and each call then multiplies against it: about 2x faster for a decoding step's 16 rows and
// 1.1-1.3x for a prefill's thousand (omni-dpo bench generate; README "Performance").
//
// A pack keeps the weight and bias tensors it came from and their version counters: when either
// was written in place since (an optimizer step, a merged adapter, a loaded checkpoint), the
// next call packs again. Calls the pack cannot serve exactly as at::linear would (autograd
// recording, autocast, a dtype or device other than float32 on CPU) go to at::linear itself.
//
// Compiled only where oneDNN's headers are (Debian's libdnnl-dev, the library Debian's LibTorch
// itself uses); elsewhere create() returns 0 and callers use at::linear.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace omni::packed {

// Whether this build can pack at all (oneDNN compiled in and a JIT matmul for this CPU).
bool available();
// Packs weight [out, in] (float32, CPU) with an optional bias [out]; 0 when it cannot be packed
// (no oneDNN, another dtype or device, or only oneDNN's slow reference kernel on this CPU).
int64_t create(const at::Tensor& weight, const at::Tensor& bias);
// x [..., in] -> [..., out], equal to at::linear(x, weight, bias) up to float rounding.
at::Tensor forward(int64_t pack, const at::Tensor& x);
// Bytes held by the pack's blocked copy of the weight.
int64_t bytes(int64_t pack);
void destroy(int64_t pack);

}  // namespace omni::packed
