// Native memory that JavaScript cannot see: a counting CPU allocator for LibTorch, and the
// figure V8 is told so that its garbage collector paces itself by it.
//
// Tensors that only an autograd graph keeps alive (saved for backward) sit in no store slot,
// so counting slots misses them; counting at the allocator sees every byte LibTorch holds in
// CPU memory, whichever thread allocated or frees it.
#pragma once

#include <napi.h>

#include <cstdint>

namespace omni {

// Makes the counting allocator LibTorch's CPU allocator. Called once, when the addon loads.
void installCountingAllocator();

// Bytes LibTorch's CPU allocator holds now (live tensors, graph-saved tensors, optimizer state).
int64_t cpuAllocated();

// The most cpuAllocated() has been since the last resetCpuPeak() (or since the addon loaded).
int64_t cpuPeak();
void resetCpuPeak();

// Tells V8 about native memory: the CPU allocator's figure plus `deviceBytes` (storage on other
// devices, counted by the store). Only changes of a MiB or more are passed on, so the per-op
// cost is one atomic read. JavaScript thread only.
void syncExternalMemory(Napi::Env env, int64_t deviceBytes);

}  // namespace omni
