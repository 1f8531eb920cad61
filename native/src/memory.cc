#include "memory.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <malloc.h>

#include <atomic>
#include <cstring>

namespace omni {
namespace {

std::atomic<int64_t> allocated{0};
std::atomic<int64_t> peak{0};  // the most `allocated` has been since resetCpuPeak()

// malloc_usable_size is what the block really occupies; counting it on both allocation and
// free keeps the figure exact without a size table.
int64_t blockSize(void* p) { return static_cast<int64_t>(malloc_usable_size(p)); }

void countingDelete(void* p) {
  if (!p) return;
  allocated.fetch_sub(blockSize(p), std::memory_order_relaxed);
  c10::free_cpu(p);
}

at::DataPtr countedAllocation(size_t nbytes) {
  void* p = c10::alloc_cpu(nbytes);  // 64-byte aligned, throws on out-of-memory
  if (p) {
    int64_t now = allocated.fetch_add(blockSize(p), std::memory_order_relaxed) + blockSize(p);
    for (int64_t seen = peak.load(std::memory_order_relaxed); now > seen && !peak.compare_exchange_weak(seen, now);) {}
  }
  // Context == data, so raw_allocate() (which asserts it) works as with the default allocator.
  return {p, p, &countingDelete, at::Device(at::DeviceType::CPU)};
}

// LibTorch 1.13 declares `allocate` const, later versions do not, and later versions add
// `copy_data`; declaring both forms without `override` builds against either.
struct CountingAllocator final : at::Allocator {
  at::DataPtr allocate(size_t nbytes) const { return countedAllocation(nbytes); }
  at::DataPtr allocate(size_t nbytes) { return countedAllocation(nbytes); }
  at::DeleterFnPtr raw_deleter() const override { return &countingDelete; }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
};

int64_t reported = 0;  // what V8 was last told; JavaScript thread only
constexpr int64_t kStep = 1 << 20;

}  // namespace

void installCountingAllocator() {
  // SetCPUAllocator takes ownership; the allocator lives as long as the process. Priority 1
  // outranks the default allocator's registration. Tensors allocated earlier keep their own
  // deleter and are simply not counted.
  static CountingAllocator* instance = new CountingAllocator();
  c10::SetCPUAllocator(instance, 1);
}

int64_t cpuAllocated() { return allocated.load(std::memory_order_relaxed); }

int64_t cpuPeak() { return peak.load(std::memory_order_relaxed); }

void resetCpuPeak() { peak.store(allocated.load(std::memory_order_relaxed), std::memory_order_relaxed); }

void syncExternalMemory(Napi::Env env, int64_t deviceBytes) {
  int64_t now = cpuAllocated() + deviceBytes;
  int64_t delta = now - reported;
  if (delta < kStep && delta > -kStep) return;
  int64_t ignored;
  if (napi_adjust_external_memory(env, delta, &ignored) == napi_ok) reported = now;
}

}  // namespace omni
