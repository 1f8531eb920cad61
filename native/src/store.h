// The tensor store: every tensor JavaScript can see lives in one slot here, named by its index.
// JavaScript holds plain numbers, so an op call passes integers across N-API instead of
// wrapped objects; freeing a slot drops LibTorch's reference, and LibTorch frees the memory
// when no view, graph node or other slot still needs it.
#pragma once

#include <napi.h>
#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace omni {

class TensorStore {
 public:
  // Stores `t` and returns its id.
  int64_t put(Napi::Env env, at::Tensor t);
  // The tensor behind `id`; throws a clear error for an id that was freed or never existed.
  const at::Tensor& get(int64_t id) const;
  bool live(int64_t id) const;
  void release(Napi::Env env, int64_t id);
  // Re-reads the storage of the tensor in `id` after its data was replaced in place.
  void refresh(Napi::Env env, int64_t id);

  size_t count() const { return live_; }
  // Bytes held by the storages of live tensors, each storage counted once.
  int64_t bytes() const;

 private:
  void account(Napi::Env env, int64_t id);

  std::vector<at::Tensor> slots_;
  // CPU memory reaches V8 through the counting allocator (memory.h); storage on other devices
  // (CUDA) is counted here, per slot that owns it, and added to that figure.
  std::vector<int64_t> deviceBytes_;
  int64_t deviceTotal_ = 0;
  std::vector<int64_t> free_;
  size_t live_ = 0;
};

TensorStore& store();

// The tensor id a JavaScript value names: a non-negative integer. Anything else maps to -1,
// which the store rejects as "disposed (or never existed)".
int64_t tensorId(const Napi::Value& v);

}  // namespace omni
