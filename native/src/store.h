// The tensor store: every tensor JavaScript can see lives in one slot here, named by its index.
// JavaScript holds plain numbers, so an op call passes integers across N-API instead of
// wrapped objects; freeing a slot drops LibTorch's reference, and LibTorch frees the memory
// when no view, graph node or other slot still needs it.
#pragma once

#include <napi.h>
#include <ATen/ATen.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

namespace omni {

class TensorStore {
 public:
  // Stores `t` and returns its id. Tells V8 about the native bytes so the GC paces itself.
  int64_t put(Napi::Env env, at::Tensor t);
  // The tensor behind `id`; throws a clear error for an id that was freed or never existed.
  const at::Tensor& get(int64_t id) const;
  bool live(int64_t id) const;
  void release(Napi::Env env, int64_t id);

  size_t count() const { return live_; }
  // Bytes held by the storages of live tensors, each storage counted once.
  int64_t bytes() const;

  // Zero-copy tensors borrow a JavaScript buffer; LibTorch may drop its last reference on any
  // thread, so the buffer's reference is queued and released later on the JavaScript thread.
  void queueRelease(napi_ref ref);
  void drainReleases(Napi::Env env);

 private:
  std::vector<at::Tensor> slots_;
  std::vector<int64_t> accounted_;  // bytes reported to V8 per slot
  std::vector<int64_t> free_;
  size_t live_ = 0;
  std::mutex pendingMutex_;
  std::vector<napi_ref> pending_;
  std::atomic<bool> hasPending_{false};  // lets release() skip the lock in the common case
};

TensorStore& store();

}  // namespace omni
