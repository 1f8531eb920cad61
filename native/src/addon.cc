// omni_torch: a thin N-API binding over LibTorch.
//
// Ops are not wrapped one by one. JavaScript looks an operator up by its schema name once
// (`op("aten::add", "Tensor")`), then calls it by handle; the schema tells this binding how to
// convert each argument, and LibTorch's dispatcher runs it with autograd, exactly as PyTorch's
// own interpreter does. Everything else here is what the dispatcher cannot express: the tensor
// store, buffers in and out, autograd entry points, threads, seeds and memory figures.
// No policy lives here; it is all in src/torch/.
//
// No input from JavaScript may end the process: every entry point runs under `guarded`, which
// turns any C++ exception into a JavaScript error (src/torch's TorchError, once configured).

#include <napi.h>
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/GradMode.h>
#include <torch/version.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "autocast.h"
#include "convert.h"
#include "distributed.h"
#include "grad_sync.h"
#include "memory.h"
#include "packed_linear.h"
#include "store.h"

namespace omni {
namespace {

// The commonest shapes of operator, called unboxed: no IValue stack for `a.add(b)`,
// `a.mul(b)`, `a.exp()`... Everything else (and these, when given other arguments) goes through
// the boxed call below. The typed handles are checked against the schema when made.
using Unary = at::Tensor(const at::Tensor&);
using Binary = at::Tensor(const at::Tensor&, const at::Tensor&);
using BinaryAlpha = at::Tensor(const at::Tensor&, const at::Tensor&, const at::Scalar&);

struct OpEntry {
  c10::OperatorHandle handle;
  std::string name;
  c10::optional<c10::TypedOperatorHandle<Unary>> unary;
  c10::optional<c10::TypedOperatorHandle<Binary>> binary;
  c10::optional<c10::TypedOperatorHandle<BinaryAlpha>> binaryAlpha;
};
std::vector<OpEntry> ops;

// Fills the fast path when the schema is a pure (non-mutating) Tensor -> Tensor function of
// one or two tensors (optionally with a trailing Scalar, as add/sub's alpha).
void addFastPath(OpEntry& e) {
  const auto& schema = e.handle.schema();
  if (schema.is_mutable() || schema.returns().size() != 1 || schema.returns()[0].type()->kind() != c10::TypeKind::TensorType) return;
  const auto& args = schema.arguments();
  auto isTensor = [&](size_t i) { return args[i].type()->kind() == c10::TypeKind::TensorType; };
  try {
    if (args.size() == 1 && isTensor(0)) e.unary = e.handle.typed<Unary>();
    else if (args.size() == 2 && isTensor(0) && isTensor(1)) e.binary = e.handle.typed<Binary>();
    else if (args.size() == 3 && isTensor(0) && isTensor(1) && args[2].type()->kind() == c10::TypeKind::NumberType &&
             args[2].default_value()) e.binaryAlpha = e.handle.typed<BinaryAlpha>();
  } catch (const c10::Error&) {
    // The C++ signature differs from what the schema suggests: keep the boxed call.
  }
}

// ---- errors ------------------------------------------------------------------------------

// src/torch's TorchError, handed over by configure(); errors carry the operator's name and
// LibTorch's message as fields, so callers never parse the text. Heap-held and released by the
// environment's cleanup hook, so no static destructor touches N-API after the environment is gone.
Napi::FunctionReference* errorClass = nullptr;

bool haveErrorClass() { return errorClass != nullptr && !errorClass->IsEmpty(); }

[[noreturn]] void fail(Napi::Env env, const std::string& what, const std::string& detail) {
  if (haveErrorClass()) {
    Napi::Value err = errorClass->New({Napi::String::New(env, what), Napi::String::New(env, detail)});
    throw Napi::Error(env, err);
  }
  throw Napi::Error::New(env, what + ": " + detail);
}

// Every entry point runs inside this guard so that no input ever aborts the process: C++
// exceptions (LibTorch's, the binding's own checks, N-API's type errors) become TorchErrors.
template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, const std::string& what, F&& body) {
  Napi::Env env = info.Env();
  try {
    return body(env);
  } catch (const Napi::Error& e) {
    // Already a TorchError (a nested guard made it): pass it on. Otherwise it is N-API's
    // own complaint ("A number was expected"), which still needs the entry point's name.
    if (haveErrorClass() && e.Value().IsObject() && e.Value().InstanceOf(errorClass->Value())) throw;
    fail(env, what, e.Message());
  } catch (const c10::Error& e) {
    fail(env, what, e.what_without_backtrace());
  } catch (const std::exception& e) {
    fail(env, what, e.what());
  } catch (...) {
    fail(env, what, "unknown native error");
  }
}

// ---- arguments ---------------------------------------------------------------------------

int64_t idArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) throw std::invalid_argument("expected a tensor id");
  return tensorId(info[i]);
}

std::string stringArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) throw std::invalid_argument(std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

bool boolArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsBoolean()) throw std::invalid_argument(std::string(what) + " must be a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

// An integer argument in [lo, hi]; doubles outside int64 are rejected before any cast.
int64_t intArg(const Napi::CallbackInfo& info, size_t i, const char* what, int64_t lo, int64_t hi) {
  double d = info.Length() > i && info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : std::nan("");
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != std::floor(d)) {
    throw std::invalid_argument(std::string(what) + " must be an integer from " + std::to_string(lo) + " to " +
                                std::to_string(hi));
  }
  return static_cast<int64_t>(d);
}

bool isNothing(const Napi::CallbackInfo& info, size_t i) {
  return info.Length() <= i || info[i].IsNull() || info[i].IsUndefined();
}

std::vector<int64_t> shapeArg(const Napi::Value& v) {
  if (!v.IsArray()) throw std::invalid_argument("shape must be an array of integers");
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> shape(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr.Get(i);
    double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1;
    // Range first: casting a double beyond int64 is undefined behaviour.
    if (!(d >= 0 && d < 9223372036854775808.0) || d != std::floor(d)) {
      throw std::invalid_argument("shape entries must be non-negative integers");
    }
    shape[i] = static_cast<int64_t>(d);
  }
  return shape;
}

Napi::Value put(Napi::Env env, at::Tensor t) {
  return Napi::Number::New(env, static_cast<double>(store().put(env, std::move(t))));
}

const OpEntry& opArg(const Napi::CallbackInfo& info) {
  double h = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (!(h >= 0 && h < static_cast<double>(ops.size())) || h != std::floor(h)) throw std::invalid_argument("unknown operator handle");
  return ops[static_cast<size_t>(h)];
}

// ---- operators ---------------------------------------------------------------------------

// op(name, overload) -> handle. Throws when this LibTorch has no such operator.
Napi::Value Op(const Napi::CallbackInfo& info) {
  return guarded(info, "op", [&](Napi::Env env) -> Napi::Value {
    std::string name = stringArg(info, 0, "operator name");
    std::string overload = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
    if (!handle) {
      fail(env, name, "this LibTorch has no operator " + name + (overload.empty() ? "" : "." + overload));
    }
    ops.push_back({*handle, name + (overload.empty() ? "" : "." + overload), c10::nullopt, c10::nullopt, c10::nullopt});
    addFastPath(ops.back());
    return Napi::Number::New(env, static_cast<double>(ops.size() - 1));
  });
}

// hasOp(name, overload) -> boolean
Napi::Value HasOp(const Napi::CallbackInfo& info) {
  return guarded(info, "hasOp", [&](Napi::Env env) -> Napi::Value {
    std::string name = stringArg(info, 0, "operator name");
    std::string overload = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    return Napi::Boolean::New(env, c10::Dispatcher::singleton().findSchema({name, overload}).has_value());
  });
}

Napi::Value Schema(const Napi::CallbackInfo& info) {
  return guarded(info, "schema", [&](Napi::Env env) -> Napi::Value {
    std::ostringstream s;
    s << opArg(info).handle.schema();
    return Napi::String::New(env, s.str());
  });
}

// call(handle, ...args): runs the operator through the dispatcher (autograd included).
// Arguments are positional in schema order; missing trailing ones take the schema defaults.
// Every tensor result gets a fresh store slot, even when an op returns its input (in-place
// ops, a `to` that changes nothing): JavaScript frees what it does not need.
Napi::Value Call(const Napi::CallbackInfo& info) {
  return guarded(info, "call", [&](Napi::Env) -> Napi::Value {
    const OpEntry& op = opArg(info);
    return guarded(info, op.name, [&](Napi::Env env) -> Napi::Value {
      // Trailing `undefined`s are arguments left out: they take the schema's defaults, and a
      // call like a.add(b, undefined) can still take the fast path.
      size_t given = info.Length() - 1;
      while (given > 0 && info[given].IsUndefined()) --given;
      // Fast path: every argument a tensor id (alpha left at its default).
      if (op.unary && given == 1 && info[1].IsNumber()) {
        return put(env, op.unary->call(store().get(tensorId(info[1]))));
      }
      if ((op.binary || op.binaryAlpha) && given == 2 && info[1].IsNumber() && info[2].IsNumber()) {
        const at::Tensor& a = store().get(tensorId(info[1]));
        const at::Tensor& b = store().get(tensorId(info[2]));
        if (op.binary) return put(env, op.binary->call(a, b));
        return put(env, op.binaryAlpha->call(a, b, op.handle.schema().arguments()[2].default_value()->toScalar()));
      }
      const auto& schema = op.handle.schema();
      const auto& args = schema.arguments();
      if (given > args.size()) {
        throw std::invalid_argument("takes " + std::to_string(args.size()) + " arguments, got " + std::to_string(given));
      }
      // One stack reused across calls saves an allocation per op (calls never nest:
      // JavaScript is single-threaded and no op calls back into it).
      static std::vector<c10::IValue> stack;
      stack.clear();
      struct Clear { ~Clear() { stack.clear(); } } clearOnExit;  // release inputs even on errors
      for (size_t i = 0; i < args.size(); ++i) {
        Napi::Value v = i < given ? info[i + 1] : env.Undefined();
        if (v.IsUndefined()) {
          if (args[i].default_value()) { stack.push_back(*args[i].default_value()); continue; }
          if (args[i].type()->kind() == c10::TypeKind::OptionalType) { stack.emplace_back(); continue; }
          throw std::invalid_argument("missing argument '" + args[i].name() + "'");
        }
        stack.push_back(toIValue(env, v, args[i].type(), args[i].name()));
      }
      op.handle.callBoxed(&stack);
      if (stack.empty()) return env.Undefined();
      if (stack.size() == 1) return fromIValue(env, std::move(stack[0]));
      auto out = Napi::Array::New(env, stack.size());
      for (size_t i = 0; i < stack.size(); ++i) out.Set(static_cast<uint32_t>(i), fromIValue(env, std::move(stack[i])));
      return out;
    });
  });
}

// ---- the store ---------------------------------------------------------------------------

Napi::Value Free(const Napi::CallbackInfo& info) {
  return guarded(info, "free", [&](Napi::Env env) -> Napi::Value {
    store().release(env, idArg(info, 0));
    return env.Undefined();
  });
}

// Metadata in one call: [dtype, device, requiresGrad, ...shape].
Napi::Value Meta(const Napi::CallbackInfo& info) {
  return guarded(info, "meta", [&](Napi::Env env) -> Napi::Value {
    const at::Tensor& t = store().get(idArg(info, 0));
    auto sizes = t.sizes();
    auto out = Napi::Array::New(env, sizes.size() + 3);
    out.Set(0u, Napi::Number::New(env, static_cast<int>(t.scalar_type())));
    out.Set(1u, Napi::String::New(env, t.device().str()));
    out.Set(2u, Napi::Boolean::New(env, t.requires_grad()));
    for (size_t i = 0; i < sizes.size(); ++i) out.Set(static_cast<uint32_t>(i + 3), Napi::Number::New(env, static_cast<double>(sizes[i])));
    return out;
  });
}

Napi::Value Numel(const Napi::CallbackInfo& info) {
  return guarded(info, "numel", [&](Napi::Env env) -> Napi::Value {
    return Napi::Number::New(env, static_cast<double>(store().get(idArg(info, 0)).numel()));
  });
}

// setData(id, srcId): PyTorch's `t.data = src`. The tensor in `id` keeps its autograd identity
// (leaf, requires_grad, grad) and now holds src's data, dtype and device; src still shares it.
// Module.to() moves parameters this way, so references to them (an optimizer's) stay valid.
Napi::Value SetData(const Napi::CallbackInfo& info) {
  return guarded(info, "setData", [&](Napi::Env env) -> Napi::Value {
    int64_t id = idArg(info, 0);
    at::Tensor t = store().get(id);
    const at::Tensor& src = store().get(idArg(info, 1));
    if (src.is_same(t)) return env.Undefined();
    t.set_data(src);
    store().refresh(env, id);
    return env.Undefined();
  });
}

// ---- buffers -----------------------------------------------------------------------------

// fromBuffer(typedArrayOrArrayBuffer, dtype, shape): a tensor with a copy of the bytes.
// Always a copy: a JavaScript buffer's memory can be freed under a tensor that borrows it (a
// transfer to a worker or structuredClone detaches it, a resizable buffer can shrink), and
// N-API offers no way to pin it. Zero-copy input goes the other way: write into the memory
// of a tensor LibTorch owns (viewBuffer).
Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  return guarded(info, "fromBuffer", [&](Napi::Env env) -> Napi::Value {
    Napi::Value src = info.Length() > 0 ? info[0] : env.Undefined();
    const uint8_t* data = nullptr;
    size_t length = 0;
    napi_value arraybuffer = nullptr;
    if (src.IsTypedArray()) {
      napi_typedarray_type type;
      size_t elements, offset;
      void* p;
      NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, src, &type, &elements, &p, &arraybuffer, &offset), env.Undefined());
      data = static_cast<const uint8_t*>(p);
      length = src.As<Napi::TypedArray>().ByteLength();
    } else if (src.IsArrayBuffer()) {
      arraybuffer = src;
      void* p;
      NAPI_THROW_IF_FAILED(env, napi_get_arraybuffer_info(env, src, &p, &length), env.Undefined());
      data = static_cast<const uint8_t*>(p);
    } else {
      throw std::invalid_argument("expected a TypedArray, Buffer or ArrayBuffer");
    }
    bool detached = false;
    if (arraybuffer) NAPI_THROW_IF_FAILED(env, napi_is_detached_arraybuffer(env, arraybuffer, &detached), env.Undefined());
    if (detached) throw std::invalid_argument("the buffer is detached (it was transferred to a worker or by structuredClone)");
    auto dtype = static_cast<at::ScalarType>(intArg(info, 1, "dtype", 0, static_cast<int64_t>(at::ScalarType::NumOptions) - 1));
    auto shape = shapeArg(info.Length() > 2 ? info[2] : env.Undefined());
    // Overflow-checked: a shape whose element count wraps around could otherwise pass the
    // length check below and describe memory far beyond the buffer.
    int64_t numel = 1, expected = 0;
    for (auto s : shape) {
      if (__builtin_mul_overflow(numel, s, &numel)) throw std::invalid_argument("shape has more elements than fit in memory");
    }
    if (__builtin_mul_overflow(numel, static_cast<int64_t>(c10::elementSize(dtype)), &expected)) {
      throw std::invalid_argument("shape has more elements than fit in memory");
    }
    if (static_cast<uint64_t>(expected) != length) {
      throw std::invalid_argument("buffer holds " + std::to_string(length) + " bytes, shape and dtype need " +
                                  std::to_string(expected));
    }
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
    if (length > 0) std::memcpy(t.data_ptr(), data, length);
    return put(env, std::move(t));
  });
}

// toBuffer(id): a copy of the tensor's elements (row-major) in a new ArrayBuffer.
Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  return guarded(info, "toBuffer", [&](Napi::Env env) -> Napi::Value {
    at::Tensor t = store().get(idArg(info, 0)).detach();
    if (!t.device().is_cpu()) t = t.cpu();
    t = t.contiguous();
    size_t bytes = t.numel() * t.element_size();
    auto ab = Napi::ArrayBuffer::New(env, bytes);
    if (bytes > 0) std::memcpy(ab.Data(), t.data_ptr(), bytes);
    return ab;
  });
}

// viewBuffer(id): an ArrayBuffer over the tensor's own memory (CPU, contiguous), no copy.
// The ArrayBuffer holds its own reference to the storage until it is garbage-collected, so
// the memory stays valid after the tensor is disposed (Node does not detach such buffers;
// if one were detached, the memory would still be LibTorch's until that reference drops).
Napi::Value ViewBuffer(const Napi::CallbackInfo& info) {
  return guarded(info, "viewBuffer", [&](Napi::Env env) -> Napi::Value {
    const at::Tensor& t = store().get(idArg(info, 0));
    if (!t.device().is_cpu() || !t.is_contiguous()) {
      throw std::invalid_argument("a zero-copy view needs a contiguous CPU tensor; call contiguous() or to('cpu') first");
    }
    size_t bytes = t.numel() * t.element_size();
    if (bytes == 0) return Napi::ArrayBuffer::New(env, 0);
    auto* keep = new at::Tensor(t.detach());
    return Napi::ArrayBuffer::New(env, keep->data_ptr(), bytes, [](Napi::Env, void*, at::Tensor* k) { delete k; }, keep);
  });
}

// readInto(id, fd, position) -> bytes read: fills a contiguous CPU tensor's memory from an open
// file, as fs.readSync would fill a buffer (fewer bytes only at the end of the file). Loading
// weights this way copies nothing and leaves no JavaScript buffer for the collector.
Napi::Value ReadInto(const Napi::CallbackInfo& info) {
  return guarded(info, "readInto", [&](Napi::Env env) -> Napi::Value {
    const at::Tensor& t = store().get(idArg(info, 0));
    int fd = static_cast<int>(intArg(info, 1, "fd", 0, std::numeric_limits<int>::max()));
    int64_t position = intArg(info, 2, "position", 0, 9007199254740991LL);
    if (!t.device().is_cpu() || !t.is_contiguous()) throw std::invalid_argument("needs a contiguous CPU tensor");
    auto* data = static_cast<char*>(t.data_ptr());
    size_t want = t.numel() * t.element_size(), done = 0;
    while (done < want) {
      ssize_t n = pread(fd, data + done, want - done, static_cast<off_t>(position + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw std::runtime_error(std::string("reading fd ") + std::to_string(fd) + ": " + std::strerror(errno));
      if (n == 0) break;  // end of file
      done += static_cast<size_t>(n);
    }
    return Napi::Number::New(env, static_cast<double>(done));
  });
}

// ---- autograd ----------------------------------------------------------------------------

Napi::Value RequiresGrad(const Napi::CallbackInfo& info) {
  return guarded(info, "requiresGrad", [&](Napi::Env env) -> Napi::Value {
    const at::Tensor& t = store().get(idArg(info, 0));
    if (info.Length() > 1) {
      bool value = boolArg(info, 1, "requiresGrad");
      // LibTorch ignores the flag on a non-leaf (it keeps requiring grad through its grad_fn);
      // PyTorch raises instead of failing silently, and so does this binding.
      if (!value && !t.is_leaf()) {
        throw std::invalid_argument("you can only change requires_grad flags of leaf variables; "
                                    "use detach() for a tensor that does not require grad");
      }
      const_cast<at::Tensor&>(t).set_requires_grad(value);
    }
    return Napi::Boolean::New(env, t.requires_grad());
  });
}

Napi::Value IsLeaf(const Napi::CallbackInfo& info) {
  return guarded(info, "isLeaf", [&](Napi::Env env) -> Napi::Value {
    return Napi::Boolean::New(env, store().get(idArg(info, 0)).is_leaf());
  });
}

// grad(id, knownId) -> id of the accumulated gradient, or null. `knownId` (-1 for none) is the
// slot JavaScript already holds for this gradient: when it is still the same tensor (backward
// accumulates in place) it comes back as is, and no new slot is made.
Napi::Value Grad(const Napi::CallbackInfo& info) {
  return guarded(info, "grad", [&](Napi::Env env) -> Napi::Value {
    const at::Tensor& g = store().get(idArg(info, 0)).grad();
    if (!g.defined()) return env.Null();
    int64_t known = info.Length() > 1 ? tensorId(info[1]) : -1;
    if (store().live(known) && store().get(known).is_same(g)) return info[1];
    return put(env, g);
  });
}

// setGrad(id, gradId | null): replaces (or clears) the accumulated gradient.
Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  return guarded(info, "setGrad", [&](Napi::Env env) -> Napi::Value {
    at::Tensor t = store().get(idArg(info, 0));
    if (isNothing(info, 1)) {
      t.mutable_grad().reset();
      return env.Undefined();
    }
    // The checks PyTorch's `x.grad = g` makes: a gradient of another shape, dtype or device
    // would be accepted here and fail (or silently promote) only at the next backward or step.
    const at::Tensor& g = store().get(idArg(info, 1));
    if (g.is_same(t)) throw std::invalid_argument("can't assign a tensor as its own grad");
    if (g.scalar_type() != t.scalar_type()) {
      throw std::invalid_argument(std::string("assigned grad has data of a different type (") +
                                  c10::toString(g.scalar_type()) + ", the tensor is " + c10::toString(t.scalar_type()) + ")");
    }
    if (g.device() != t.device()) throw std::invalid_argument("assigned grad has data located on a different device");
    if (!g.sizes().equals(t.sizes())) {
      std::ostringstream msg;
      msg << "assigned grad has data of a different size (" << g.sizes() << ", the tensor is " << t.sizes() << ")";
      throw std::invalid_argument(msg.str());
    }
    t.mutable_grad() = g;
    return env.Undefined();
  });
}

// backward(id, gradId | null, retainGraph, createGraph)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  return guarded(info, "backward", [&](Napi::Env env) -> Napi::Value {
    const at::Tensor& t = store().get(idArg(info, 0));
    at::Tensor gradient;
    if (!isNothing(info, 1)) gradient = store().get(idArg(info, 1));
    bool retain = boolArg(info, 2, "retainGraph");
    bool create = boolArg(info, 3, "createGraph");
    t.backward(gradient, retain, create);
    return env.Undefined();
  });
}

Napi::Value GradEnabled(const Napi::CallbackInfo& info) {
  return guarded(info, "gradEnabled", [&](Napi::Env env) -> Napi::Value {
    bool before = c10::GradMode::is_enabled();
    if (!isNothing(info, 0)) c10::GradMode::set_enabled(boolArg(info, 0, "gradEnabled"));
    return Napi::Boolean::New(env, before);
  });
}

// ---- autocast ------------------------------------------------------------------------------

c10::DeviceType autocastDeviceArg(const Napi::CallbackInfo& info) {
  std::string device = stringArg(info, 0, "autocast device");
  if (device == "cpu") return c10::DeviceType::CPU;
  if (device == "cuda") return c10::DeviceType::CUDA;
  throw std::invalid_argument("autocast device must be 'cpu' or 'cuda', got '" + device + "'");
}

at::ScalarType autocastDtypeArg(const Napi::CallbackInfo& info, size_t i) {
  return static_cast<at::ScalarType>(intArg(info, i, "autocast dtype", 0, static_cast<int64_t>(at::ScalarType::NumOptions) - 1));
}

Napi::Value stateValue(Napi::Env env, AutocastState state) {
  auto out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Boolean::New(env, state.enabled));
  out.Set(1u, Napi::Number::New(env, static_cast<int>(state.dtype)));
  return out;
}

// autocastState(device) -> [enabled, dtypeCode]
Napi::Value AutocastStateOf(const Napi::CallbackInfo& info) {
  return guarded(info, "autocast", [&](Napi::Env env) -> Napi::Value {
    return stateValue(env, autocastState(autocastDeviceArg(info)));
  });
}

// autocastEnter(device, enabled, dtypeCode) -> the previous [enabled, dtypeCode]
Napi::Value AutocastEnter(const Napi::CallbackInfo& info) {
  return guarded(info, "autocast", [&](Napi::Env env) -> Napi::Value {
    c10::DeviceType device = autocastDeviceArg(info);
    AutocastState state{boolArg(info, 1, "autocast enabled"), autocastDtypeArg(info, 2)};
    return stateValue(env, enterAutocast(device, state));
  });
}

// autocastExit(device, enabled, dtypeCode): restores what autocastEnter returned.
Napi::Value AutocastExit(const Napi::CallbackInfo& info) {
  return guarded(info, "autocast", [&](Napi::Env env) -> Napi::Value {
    c10::DeviceType device = autocastDeviceArg(info);
    exitAutocast(device, AutocastState{boolArg(info, 1, "autocast enabled"), autocastDtypeArg(info, 2)});
    return env.Undefined();
  });
}

// ---- process-wide settings ---------------------------------------------------------------

// The most threads setNumThreads accepts, handed over by configure(). OpenMP allocates per
// thread up front, so an absurd count (1e9) would end the process at the next parallel op.
int64_t maxThreads = 1024;

Napi::Value NumThreads(const Napi::CallbackInfo& info) {
  return guarded(info, "setNumThreads", [&](Napi::Env env) -> Napi::Value {
    if (!isNothing(info, 0)) at::set_num_threads(static_cast<int>(intArg(info, 0, "thread count", 1, maxThreads)));
    return Napi::Number::New(env, at::get_num_threads());
  });
}

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  return guarded(info, "manualSeed", [&](Napi::Env env) -> Napi::Value {
    double seed = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    // Range first: casting a double beyond uint64 is undefined behaviour.
    if (!(seed >= 0 && seed < 18446744073709551616.0) || seed != std::floor(seed)) {
      throw std::invalid_argument("seed must be a non-negative integer");
    }
    at::manual_seed(static_cast<uint64_t>(seed));
    return env.Undefined();
  });
}

// rngState() -> id of a uint8 tensor; rngState(id) restores it. Checkpoints need both.
Napi::Value RngState(const Napi::CallbackInfo& info) {
  return guarded(info, "rngState", [&](Napi::Env env) -> Napi::Value {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    if (!isNothing(info, 0)) {
      gen.set_state(store().get(idArg(info, 0)));
      return env.Undefined();
    }
    return put(env, at::Tensor(gen.get_state()));
  });
}

Napi::Value Memory(const Napi::CallbackInfo& info) {
  return guarded(info, "memory", [&](Napi::Env env) -> Napi::Value {
    auto out = Napi::Object::New(env);
    out.Set("tensors", Napi::Number::New(env, static_cast<double>(store().count())));
    out.Set("bytes", Napi::Number::New(env, static_cast<double>(store().bytes())));
    out.Set("cpuAllocated", Napi::Number::New(env, static_cast<double>(cpuAllocated())));
    out.Set("cpuPeak", Napi::Number::New(env, static_cast<double>(cpuPeak())));
    // memory(true): the peak starts again from now (after it is read).
    if (info.Length() > 0 && info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value()) resetCpuPeak();
    return out;
  });
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  return guarded(info, "buildInfo", [&](Napi::Env env) -> Napi::Value {
    auto out = Napi::Object::New(env);
    out.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
    out.Set("cuda", Napi::Boolean::New(env, at::hasCUDA()));
    out.Set("cudaDevices", Napi::Number::New(env, at::hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0));
    out.Set("parallelInfo", Napi::String::New(env, at::get_parallel_info()));
    out.Set("packedLinear", Napi::Boolean::New(env, packed::available()));
    return out;
  });
}

// ---- distributed (c10d) ------------------------------------------------------------------
// Thin wrappers over distributed.h; src/torch/distributed.ts gives them types and names.

std::vector<at::Tensor> tensorListArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsArray()) throw std::invalid_argument("expected an array of tensor ids");
  auto arr = info[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t k = 0; k < arr.Length(); ++k) {
    const at::Tensor& t = store().get(tensorId(arr.Get(k)));
    // Collectives write in place into the tensor's memory, which must be one dense block.
    if (!t.is_contiguous()) throw std::invalid_argument("tensor " + std::to_string(k) + " is not contiguous");
    out.push_back(t);
  }
  return out;
}

constexpr int64_t kMaxHandle = int64_t(1) << 52;
constexpr int64_t kMaxTimeoutMs = int64_t(1) << 40;

Napi::Value DistHasBackend(const Napi::CallbackInfo& info) {
  return guarded(info, "distributed.hasBackend", [&](Napi::Env env) -> Napi::Value {
    return Napi::Boolean::New(env, dist::hasBackend(stringArg(info, 0, "backend")));
  });
}

Napi::Value DistStore(const Napi::CallbackInfo& info) {
  return guarded(info, "distributed.store", [&](Napi::Env env) -> Napi::Value {
    return Napi::Number::New(env, static_cast<double>(dist::createStore(stringArg(info, 0, "host"), intArg(info, 1, "port", 1, 65535),
        intArg(info, 2, "worldSize", 1, 1 << 20), boolArg(info, 3, "isServer"), intArg(info, 4, "timeoutMs", 1, kMaxTimeoutMs))));
  });
}

Napi::Value DistStoreSet(const Napi::CallbackInfo& info) {
  return guarded(info, "distributed.storeSet", [&](Napi::Env env) -> Napi::Value {
    dist::storeSet(intArg(info, 0, "store", 0, kMaxHandle), stringArg(info, 1, "key"), stringArg(info, 2, "value"));
    return env.Undefined();
  });
}

Napi::Value DistStoreGet(const Napi::CallbackInfo& info) {
  return guarded(info, "distributed.storeGet", [&](Napi::Env env) -> Napi::Value {
    return Napi::String::New(env, dist::storeGet(intArg(info, 0, "store", 0, kMaxHandle), stringArg(info, 1, "key")));
  });
}

Napi::Value DistStoreAdd(const Napi::CallbackInfo& info) {
  return guarded(info, "distributed.storeAdd", [&](Napi::Env env) -> Napi::Value {
    return Napi::Number::New(env, static_cast<double>(dist::storeAdd(intArg(info, 0, "store", 0, kMaxHandle), stringArg(info, 1, "key"),
        intArg(info, 2, "delta", -kMaxHandle, kMaxHandle))));
  });
}

Napi::Value DistGroup(const Napi::CallbackInfo& info) {
  return guarded(info, "distributed.processGroup", [&](Napi::Env env) -> Napi::Value {
    return Napi::Number::New(env, static_cast<double>(dist::createGroup(intArg(info, 0, "store", 0, kMaxHandle),
        intArg(info, 1, "rank", 0, 1 << 20), intArg(info, 2, "worldSize", 1, 1 << 20), stringArg(info, 3, "backend"),
        intArg(info, 4, "timeoutMs", 1, kMaxTimeoutMs), stringArg(info, 5, "host"), stringArg(info, 6, "ifname"))));
  });
}

Napi::Value DistDestroy(const Napi::CallbackInfo& info) {
  return guarded(info, "distributed.destroy", [&](Napi::Env env) -> Napi::Value {
    dist::destroyGroup(intArg(info, 0, "group", 0, kMaxHandle));
    return env.Undefined();
  });
}

Napi::Value DistAllreduce(const Napi::CallbackInfo& info) {
  return guarded(info, "distributed.allReduce", [&](Napi::Env env) -> Napi::Value {
    return Napi::Number::New(env, static_cast<double>(dist::allreduce(intArg(info, 0, "group", 0, kMaxHandle), tensorListArg(info, 1),
        stringArg(info, 2, "op"))));
  });
}

Napi::Value DistBroadcast(const Napi::CallbackInfo& info) {
  return guarded(info, "distributed.broadcast", [&](Napi::Env env) -> Napi::Value {
    return Napi::Number::New(env, static_cast<double>(dist::broadcast(intArg(info, 0, "group", 0, kMaxHandle), tensorListArg(info, 1),
        intArg(info, 2, "root", 0, 1 << 20))));
  });
}

Napi::Value DistReduce(const Napi::CallbackInfo& info) {
  return guarded(info, "distributed.reduce", [&](Napi::Env env) -> Napi::Value {
    return Napi::Number::New(env, static_cast<double>(dist::reduce(intArg(info, 0, "group", 0, kMaxHandle), store().get(idArg(info, 1)),
        intArg(info, 2, "root", 0, 1 << 20), stringArg(info, 3, "op"))));
  });
}

Napi::Value DistAllgather(const Napi::CallbackInfo& info) {
  return guarded(info, "distributed.allGather", [&](Napi::Env env) -> Napi::Value {
    auto parts = dist::allgather(intArg(info, 0, "group", 0, kMaxHandle), store().get(idArg(info, 1)));
    auto out = Napi::Array::New(env, parts.size());
    for (size_t i = 0; i < parts.size(); ++i) out.Set(static_cast<uint32_t>(i), put(env, std::move(parts[i])));
    return out;
  });
}

Napi::Value DistBarrier(const Napi::CallbackInfo& info) {
  return guarded(info, "distributed.barrier", [&](Napi::Env env) -> Napi::Value {
    dist::barrier(intArg(info, 0, "group", 0, kMaxHandle));
    return env.Undefined();
  });
}

Napi::Value DistWait(const Napi::CallbackInfo& info) {
  return guarded(info, "distributed.wait", [&](Napi::Env env) -> Napi::Value {
    dist::wait(intArg(info, 0, "work", 0, kMaxHandle));
    return env.Undefined();
  });
}

// ---- gradient sync (grad_sync.h): the all-reduce overlapped with backward ----------------

std::vector<at::Tensor> tensorsArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsArray()) throw std::invalid_argument(std::string(what) + " must be an array of tensor ids");
  auto arr = info[i].As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t k = 0; k < arr.Length(); ++k) out.push_back(store().get(tensorId(arr.Get(k))));
  return out;
}

Napi::Value GradSyncCreate(const Napi::CallbackInfo& info) {
  return guarded(info, "gradSync.create", [&](Napi::Env env) -> Napi::Value {
    if (info.Length() <= 2 || !info[2].IsArray()) throw std::invalid_argument("bucketSizes must be an array of integers");
    auto arr = info[2].As<Napi::Array>();
    std::vector<int64_t> sizes;
    for (uint32_t k = 0; k < arr.Length(); ++k) {
      Napi::Value v = arr.Get(k);
      if (!v.IsNumber()) throw std::invalid_argument("bucketSizes must be an array of integers");
      double d = v.As<Napi::Number>().DoubleValue();
      if (!(d >= 1 && d <= double(kMaxHandle)) || d != std::floor(d)) throw std::invalid_argument("every bucket size must be a positive integer");
      sizes.push_back(static_cast<int64_t>(d));
    }
    // Optional: each bucket's owner rank (ZeRO-2's reduce mode).
    std::vector<int64_t> owners;
    if (info.Length() > 3 && !info[3].IsUndefined()) {
      if (!info[3].IsArray()) throw std::invalid_argument("owners must be an array of ranks");
      auto list = info[3].As<Napi::Array>();
      for (uint32_t k = 0; k < list.Length(); ++k) {
        Napi::Value v = list.Get(k);
        double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
        if (!(d >= 0 && d <= double(1 << 20)) || d != std::floor(d)) throw std::invalid_argument("every owner must be a rank (an integer >= 0)");
        owners.push_back(static_cast<int64_t>(d));
      }
    }
    return Napi::Number::New(env, static_cast<double>(dist::createGradSync(intArg(info, 0, "group", 0, kMaxHandle),
        tensorsArg(info, 1, "params"), sizes, owners)));
  });
}

Napi::Value GradSyncArm(const Napi::CallbackInfo& info) {
  return guarded(info, "gradSync.arm", [&](Napi::Env env) -> Napi::Value {
    dist::gradSyncArm(intArg(info, 0, "sync", 0, kMaxHandle));
    return env.Undefined();
  });
}

// gradSyncBackward(sync, rootId, gradId | null, laterIds)
Napi::Value GradSyncBackward(const Napi::CallbackInfo& info) {
  return guarded(info, "backward", [&](Napi::Env env) -> Napi::Value {
    const at::Tensor& root = store().get(idArg(info, 1));
    at::Tensor gradient;
    if (!isNothing(info, 2)) gradient = store().get(idArg(info, 2));
    dist::gradSyncBackward(intArg(info, 0, "sync", 0, kMaxHandle), root, gradient, tensorsArg(info, 3, "later"));
    return env.Undefined();
  });
}

Napi::Value GradSyncFinish(const Napi::CallbackInfo& info) {
  return guarded(info, "gradSync.finish", [&](Napi::Env env) -> Napi::Value {
    return Napi::Number::New(env, static_cast<double>(dist::gradSyncFinish(intArg(info, 0, "sync", 0, kMaxHandle))));
  });
}

Napi::Value GradSyncStarted(const Napi::CallbackInfo& info) {
  return guarded(info, "gradSync.started", [&](Napi::Env env) -> Napi::Value {
    return Napi::Number::New(env, static_cast<double>(dist::gradSyncStarted(intArg(info, 0, "sync", 0, kMaxHandle))));
  });
}

Napi::Value GradSyncDestroy(const Napi::CallbackInfo& info) {
  return guarded(info, "gradSync.destroy", [&](Napi::Env env) -> Napi::Value {
    dist::destroyGradSync(intArg(info, 0, "sync", 0, kMaxHandle));
    return env.Undefined();
  });
}

// ---- packed linear weights (packed_linear.h) -----------------------------------------------

// packedLinearCreate(weight, bias | null): a pack's handle, or 0 when the weight cannot be packed.
Napi::Value PackedLinearCreate(const Napi::CallbackInfo& info) {
  return guarded(info, "packedLinear.create", [&](Napi::Env env) -> Napi::Value {
    at::Tensor bias;
    if (info.Length() > 1 && !info[1].IsNull() && !info[1].IsUndefined()) bias = store().get(idArg(info, 1));
    return Napi::Number::New(env, static_cast<double>(packed::create(store().get(idArg(info, 0)), bias)));
  });
}

Napi::Value PackedLinearForward(const Napi::CallbackInfo& info) {
  return guarded(info, "packedLinear.forward", [&](Napi::Env env) -> Napi::Value {
    at::Tensor y = packed::forward(intArg(info, 0, "pack", 1, kMaxHandle), store().get(idArg(info, 1)));
    return Napi::Number::New(env, static_cast<double>(store().put(env, std::move(y))));
  });
}

Napi::Value PackedLinearBytes(const Napi::CallbackInfo& info) {
  return guarded(info, "packedLinear.bytes", [&](Napi::Env env) -> Napi::Value {
    return Napi::Number::New(env, static_cast<double>(packed::bytes(intArg(info, 0, "pack", 1, kMaxHandle))));
  });
}

Napi::Value PackedLinearDestroy(const Napi::CallbackInfo& info) {
  return guarded(info, "packedLinear.destroy", [&](Napi::Env env) -> Napi::Value {
    packed::destroy(intArg(info, 0, "pack", 1, kMaxHandle));
    return env.Undefined();
  });
}

// configure(errorClass, maxThreads): what src/torch/native.ts hands over when it loads the
// addon. `errorClass` is constructed as new errorClass(op, message) for every error.
Napi::Value Configure(const Napi::CallbackInfo& info) {
  return guarded(info, "configure", [&](Napi::Env env) -> Napi::Value {
    if (info.Length() < 1 || !info[0].IsFunction()) throw std::invalid_argument("errorClass must be a constructor");
    int64_t limit = intArg(info, 1, "maxThreads", 1, std::numeric_limits<int>::max());
    if (!errorClass) errorClass = new Napi::FunctionReference();
    *errorClass = Napi::Persistent(info[0].As<Napi::Function>());
    maxThreads = limit;
    return env.Undefined();
  });
}

// The store and the op table are process-wide and unsynchronised, so one JavaScript thread
// may use the addon; a worker that loads it as well gets an error instead of a data race.
napi_env owner = nullptr;

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  if (owner != nullptr && owner != static_cast<napi_env>(env)) {
    throw Napi::Error::New(env, "the omni-dpo engine is already in use by another thread of this process "
                                "(tensors can be used from one thread only, usually the main one)");
  }
  owner = env;
  // When this environment ends (a worker that loaded the addon exits), another may take over.
  napi_add_env_cleanup_hook(env, [](void*) {
    if (errorClass) errorClass->Reset();
    owner = nullptr;
  }, nullptr);
  installCountingAllocator();
  exports.Set("op", Napi::Function::New(env, Op));
  exports.Set("hasOp", Napi::Function::New(env, HasOp));
  exports.Set("schema", Napi::Function::New(env, Schema));
  exports.Set("call", Napi::Function::New(env, Call));
  exports.Set("free", Napi::Function::New(env, Free));
  exports.Set("meta", Napi::Function::New(env, Meta));
  exports.Set("numel", Napi::Function::New(env, Numel));
  exports.Set("setData", Napi::Function::New(env, SetData));
  exports.Set("fromBuffer", Napi::Function::New(env, FromBuffer));
  exports.Set("toBuffer", Napi::Function::New(env, ToBuffer));
  exports.Set("viewBuffer", Napi::Function::New(env, ViewBuffer));
  exports.Set("readInto", Napi::Function::New(env, ReadInto));
  exports.Set("requiresGrad", Napi::Function::New(env, RequiresGrad));
  exports.Set("isLeaf", Napi::Function::New(env, IsLeaf));
  exports.Set("grad", Napi::Function::New(env, Grad));
  exports.Set("setGrad", Napi::Function::New(env, SetGrad));
  exports.Set("backward", Napi::Function::New(env, Backward));
  exports.Set("gradEnabled", Napi::Function::New(env, GradEnabled));
  exports.Set("autocastState", Napi::Function::New(env, AutocastStateOf));
  exports.Set("autocastEnter", Napi::Function::New(env, AutocastEnter));
  exports.Set("autocastExit", Napi::Function::New(env, AutocastExit));
  exports.Set("numThreads", Napi::Function::New(env, NumThreads));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  exports.Set("rngState", Napi::Function::New(env, RngState));
  exports.Set("memory", Napi::Function::New(env, Memory));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo));
  exports.Set("configure", Napi::Function::New(env, Configure));
  exports.Set("distHasBackend", Napi::Function::New(env, DistHasBackend));
  exports.Set("distStore", Napi::Function::New(env, DistStore));
  exports.Set("distStoreSet", Napi::Function::New(env, DistStoreSet));
  exports.Set("distStoreGet", Napi::Function::New(env, DistStoreGet));
  exports.Set("distStoreAdd", Napi::Function::New(env, DistStoreAdd));
  exports.Set("distGroup", Napi::Function::New(env, DistGroup));
  exports.Set("distDestroy", Napi::Function::New(env, DistDestroy));
  exports.Set("distAllreduce", Napi::Function::New(env, DistAllreduce));
  exports.Set("distBroadcast", Napi::Function::New(env, DistBroadcast));
  exports.Set("distReduce", Napi::Function::New(env, DistReduce));
  exports.Set("distAllgather", Napi::Function::New(env, DistAllgather));
  exports.Set("distBarrier", Napi::Function::New(env, DistBarrier));
  exports.Set("distWait", Napi::Function::New(env, DistWait));
  exports.Set("gradSyncCreate", Napi::Function::New(env, GradSyncCreate));
  exports.Set("gradSyncArm", Napi::Function::New(env, GradSyncArm));
  exports.Set("gradSyncBackward", Napi::Function::New(env, GradSyncBackward));
  exports.Set("gradSyncFinish", Napi::Function::New(env, GradSyncFinish));
  exports.Set("gradSyncStarted", Napi::Function::New(env, GradSyncStarted));
  exports.Set("gradSyncDestroy", Napi::Function::New(env, GradSyncDestroy));
  exports.Set("packedLinearCreate", Napi::Function::New(env, PackedLinearCreate));
  exports.Set("packedLinearForward", Napi::Function::New(env, PackedLinearForward));
  exports.Set("packedLinearBytes", Napi::Function::New(env, PackedLinearBytes));
  exports.Set("packedLinearDestroy", Napi::Function::New(env, PackedLinearDestroy));
  return exports;
}

}  // namespace
}  // namespace omni

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return omni::Init(env, exports); }
NODE_API_MODULE(omni_torch, InitModule)
