#include "store.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <unordered_set>

#include "memory.h"

namespace omni {

TensorStore& store() {
  static TensorStore instance;
  return instance;
}

int64_t tensorId(const Napi::Value& v) {
  if (!v.IsNumber()) return -1;
  double d = v.As<Napi::Number>().DoubleValue();
  return d >= 0 && d < 9007199254740992.0 && d == std::floor(d) ? static_cast<int64_t>(d) : -1;
}

// Views share their base's storage; only storage a result owns counts. CPU storage is left
// to the counting allocator, which sees it anyway.
static int64_t ownedDeviceBytes(const at::Tensor& t) {
  if (!t.defined() || t.is_view() || !t.has_storage() || t.device().is_cpu()) return 0;
  return static_cast<int64_t>(t.storage().nbytes());
}

void TensorStore::account(Napi::Env env, int64_t id) {
  int64_t bytes = ownedDeviceBytes(slots_[id]);
  deviceTotal_ += bytes - deviceBytes_[id];
  deviceBytes_[id] = bytes;
  syncExternalMemory(env, deviceTotal_);
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
    deviceBytes_.push_back(0);
  }
  ++live_;
  account(env, id);
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
  free_.push_back(id);
  --live_;
  account(env, id);
}

void TensorStore::refresh(Napi::Env env, int64_t id) {
  if (live(id)) account(env, id);
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

}  // namespace omni
