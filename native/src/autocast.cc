// LibTorch's autocast API changed names in 2.4: per-device functions (set_cpu_enabled,
// set_autocast_cpu_dtype, and set_enabled for CUDA) became set_autocast_enabled(device, bool)
// and set_autocast_dtype(device, dtype). Both spellings are mapped here so the addon builds
// against Debian's LibTorch 1.13 and current CUDA builds alike.
#include "autocast.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <stdexcept>

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define OMNI_AUTOCAST_BY_DEVICE 1
#endif

namespace omni {
namespace {

void checkDevice(c10::DeviceType device) {
  if (device != c10::DeviceType::CPU && device != c10::DeviceType::CUDA) {
    throw std::invalid_argument("autocast is supported on cpu and cuda only");
  }
}

void setState(c10::DeviceType device, AutocastState state) {
#ifdef OMNI_AUTOCAST_BY_DEVICE
  at::autocast::set_autocast_enabled(device, state.enabled);
  at::autocast::set_autocast_dtype(device, state.dtype);
#else
  if (device == c10::DeviceType::CPU) {
    at::autocast::set_cpu_enabled(state.enabled);
    at::autocast::set_autocast_cpu_dtype(state.dtype);
  } else {
    at::autocast::set_enabled(state.enabled);
    at::autocast::set_autocast_gpu_dtype(state.dtype);
  }
#endif
}

}  // namespace

AutocastState autocastState(c10::DeviceType device) {
  checkDevice(device);
#ifdef OMNI_AUTOCAST_BY_DEVICE
  return {at::autocast::is_autocast_enabled(device), at::autocast::get_autocast_dtype(device)};
#else
  if (device == c10::DeviceType::CPU) return {at::autocast::is_cpu_enabled(), at::autocast::get_autocast_cpu_dtype()};
  return {at::autocast::is_enabled(), at::autocast::get_autocast_gpu_dtype()};
#endif
}

AutocastState enterAutocast(c10::DeviceType device, AutocastState state) {
  AutocastState previous = autocastState(device);
  setState(device, state);
  at::autocast::increment_nesting();
  return previous;
}

void exitAutocast(c10::DeviceType device, AutocastState previous) {
  checkDevice(device);
  // As torch.autocast's __exit__: the cache lives as long as the outermost scope.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  setState(device, previous);
}

}  // namespace omni
