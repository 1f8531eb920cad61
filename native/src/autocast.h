// Autocast (automatic mixed precision) scopes over LibTorch's thread-local autocast state.
#pragma once

#include <ATen/ATen.h>

namespace omni {

struct AutocastState {
  bool enabled;
  at::ScalarType dtype;
};

// The calling thread's autocast state for `device` (kCPU or kCUDA).
AutocastState autocastState(c10::DeviceType device);

// Opens a scope: sets `device`'s state and counts the nesting; returns the state it replaced,
// which exitAutocast must be given back.
AutocastState enterAutocast(c10::DeviceType device, AutocastState state);

// Closes a scope: restores `previous`; the outermost scope's end also drops the cached
// low-precision copies of the weights (an optimizer step changes the weights they copy).
void exitAutocast(c10::DeviceType device, AutocastState previous);

}  // namespace omni
