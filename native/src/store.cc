#include "store.h"

#include <stdexcept>
#include <string>
#include <unordered_set>

namespace omni {

TensorStore& store() {
  static TensorStore instance;
  return instance;
}

// V8 is told about native memory in batches: a call per tiny tensor would cost more than the
// op itself, and the collector only needs the rough size.
static int64_t unreported = 0;
static void report(Napi::Env env, int64_t delta) {
  unreported += delta;
  if (unreported > (1 << 20) || unreported < -(1 << 20)) {
    Napi::MemoryManagement::AdjustExternalMemory(env, unreported);
    unreported = 0;
  }
}

static int64_t ownedBytes(const at::Tensor& t) {
  // Views share their base's storage; only count storage a result owns.
  if (!t.defined() || t.is_view() || !t.has_storage()) return 0;
  return static_cast<int64_t>(t.storage().nbytes());
}

int64_t TensorStore::put(Napi::Env env, at::Tensor t) {
  int64_t id;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
    slots_[id] = std::move(t);
  } else {
    id = static_cast<int64_t>(slots_.size());
    slots_.push_back(std::move(t));
    accounted_.push_back(0);
  }
  ++live_;
  int64_t bytes = ownedBytes(slots_[id]);
  accounted_[id] = bytes;
  if (bytes > 0) report(env, bytes);
  return id;
}

bool TensorStore::live(int64_t id) const {
  return id >= 0 && id < static_cast<int64_t>(slots_.size()) && slots_[id].defined();
}

const at::Tensor& TensorStore::get(int64_t id) const {
  if (!live(id)) {
    throw std::invalid_argument("tensor " + std::to_string(id) +
                                " has been disposed (or never existed)");
  }
  return slots_[id];
}

void TensorStore::release(Napi::Env env, int64_t id) {
  if (!live(id)) return;
  slots_[id] = at::Tensor();
  if (accounted_[id] > 0) report(env, -accounted_[id]);
  accounted_[id] = 0;
  free_.push_back(id);
  --live_;
  drainReleases(env);
}

int64_t TensorStore::bytes() const {
  std::unordered_set<const void*> seen;
  int64_t total = 0;
  for (const auto& t : slots_) {
    if (!t.defined() || !t.has_storage()) continue;
    const void* key = t.storage().unsafeGetStorageImpl();
    if (seen.insert(key).second) total += static_cast<int64_t>(t.storage().nbytes());
  }
  return total;
}

void TensorStore::queueRelease(napi_ref ref) {
  std::lock_guard<std::mutex> lock(pendingMutex_);
  pending_.push_back(ref);
  hasPending_.store(true, std::memory_order_release);
}

void TensorStore::drainReleases(Napi::Env env) {
  if (!hasPending_.load(std::memory_order_acquire)) return;
  std::vector<napi_ref> refs;
  {
    std::lock_guard<std::mutex> lock(pendingMutex_);
    refs.swap(pending_);
    hasPending_.store(false, std::memory_order_release);
  }
  for (napi_ref ref : refs) napi_delete_reference(env, ref);
}

}  // namespace omni
