// omni_torch: a thin N-API binding over LibTorch.
//
// Ops are not wrapped one by one. JavaScript looks an operator up by its schema name once
// (`op("aten::add", "Tensor")`), then calls it by handle; the schema tells this binding how to
// convert each argument, and LibTorch's dispatcher runs it with autograd, exactly as PyTorch's
// own interpreter does. Everything else here is what the dispatcher cannot express: the tensor
// store, buffers in and out, autograd entry points, threads, seeds and memory figures.
// No policy lives here; it is all in src/torch/.

#include <napi.h>
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/GradMode.h>
#include <torch/version.h>

#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "convert.h"
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

int64_t tensorId(const Napi::Value& v) {
  return v.IsNumber() ? v.As<Napi::Number>().Int64Value() : -1;
}

// Every entry point runs inside this guard so that no LibTorch error ever aborts the process.
template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, const std::string& what, F&& body) {
  Napi::Env env = info.Env();
  try {
    return body(env);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, what + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, what + ": " + e.what());
  }
}

int64_t idArg(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || !info[i].IsNumber()) throw std::invalid_argument("expected a tensor id");
  return info[i].As<Napi::Number>().Int64Value();
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

// op(name, overload) -> handle. Throws when this LibTorch has no such operator.
Napi::Value Op(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string overload = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  return guarded(info, name, [&](Napi::Env env) -> Napi::Value {
    auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
    if (!handle) {
      throw std::invalid_argument("this LibTorch has no operator " + name + (overload.empty() ? "" : "." + overload));
    }
    ops.push_back({*handle, name + (overload.empty() ? "" : "." + overload), c10::nullopt, c10::nullopt, c10::nullopt});
    addFastPath(ops.back());
    return Napi::Number::New(env, static_cast<double>(ops.size() - 1));
  });
}

// hasOp(name, overload) -> boolean
Napi::Value HasOp(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string overload = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  return Napi::Boolean::New(info.Env(), c10::Dispatcher::singleton().findSchema({name, overload}).has_value());
}

Napi::Value Schema(const Napi::CallbackInfo& info) {
  uint32_t h = info[0].As<Napi::Number>().Uint32Value();
  std::ostringstream s;
  s << ops.at(h).handle.schema();
  return Napi::String::New(info.Env(), s.str());
}

// call(handle, ...args): runs the operator through the dispatcher (autograd included).
// Arguments are positional in schema order; missing trailing ones take the schema defaults.
// Every tensor result gets a fresh store slot, even when an op returns its input (in-place
// ops, a `to` that changes nothing): JavaScript frees what it does not need.
Napi::Value Call(const Napi::CallbackInfo& info) {
  uint32_t h = info[0].As<Napi::Number>().Uint32Value();
  if (h >= ops.size()) throw Napi::Error::New(info.Env(), "unknown operator handle");
  const OpEntry& op = ops[h];
  return guarded(info, op.name, [&](Napi::Env env) -> Napi::Value {
    // Trailing `undefined`s are arguments left out: they take the schema's defaults, and a call
    // like a.add(b, undefined) can still take the fast path.
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
    // One stack reused across calls saves an allocation per op (calls never nest: JavaScript
    // is single-threaded and no op calls back into it).
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
}

Napi::Value Free(const Napi::CallbackInfo& info) {
  store().release(info.Env(), idArg(info, 0));
  return info.Env().Undefined();
}

Napi::Value IsLive(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), store().live(idArg(info, 0)));
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

// fromBuffer(typedArrayOrArrayBuffer, dtype, shape, copy): a tensor over the bytes.
// Without copy the tensor borrows the buffer (zero-copy) and keeps it alive.
Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  return guarded(info, "fromBuffer", [&](Napi::Env env) -> Napi::Value {
    Napi::Value src = info[0];
    uint8_t* data;
    size_t length;
    if (src.IsTypedArray()) {
      auto ta = src.As<Napi::TypedArray>();
      data = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
      length = ta.ByteLength();
    } else if (src.IsArrayBuffer()) {
      auto ab = src.As<Napi::ArrayBuffer>();
      data = static_cast<uint8_t*>(ab.Data());
      length = ab.ByteLength();
    } else {
      throw std::invalid_argument("expected a TypedArray, Buffer or ArrayBuffer");
    }
    auto dtype = static_cast<at::ScalarType>(info[1].As<Napi::Number>().Int32Value());
    auto shape = shapeArg(info[2]);
    bool copy = info[3].As<Napi::Boolean>().Value();
    int64_t numel = 1;
    for (auto s : shape) numel *= s;
    size_t expected = static_cast<size_t>(numel) * c10::elementSize(dtype);
    if (expected != length) {
      throw std::invalid_argument("buffer holds " + std::to_string(length) + " bytes, shape and dtype need " +
                                  std::to_string(expected));
    }
    auto options = at::TensorOptions().dtype(dtype);
    if (copy || numel == 0) {
      at::Tensor t = at::empty(shape, options);
      if (length > 0) std::memcpy(t.data_ptr(), data, length);
      return put(env, std::move(t));
    }
    napi_ref ref;
    NAPI_THROW_IF_FAILED(env, napi_create_reference(env, src, 1, &ref), env.Undefined());
    at::Tensor t = at::from_blob(data, shape, [ref](void*) { store().queueRelease(ref); }, options);
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
// The ArrayBuffer keeps the storage alive until it is garbage-collected.
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

Napi::Value RequiresGrad(const Napi::CallbackInfo& info) {
  return guarded(info, "requiresGrad", [&](Napi::Env env) -> Napi::Value {
    const at::Tensor& t = store().get(idArg(info, 0));
    if (info.Length() > 1) {
      if (!info[1].IsBoolean()) throw std::invalid_argument("expects a boolean");
      bool value = info[1].As<Napi::Boolean>().Value();
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

// grad(id) -> id of the accumulated gradient, or null.
Napi::Value Grad(const Napi::CallbackInfo& info) {
  return guarded(info, "grad", [&](Napi::Env env) -> Napi::Value {
    const at::Tensor& g = store().get(idArg(info, 0)).grad();
    if (!g.defined()) return env.Null();
    return put(env, g);
  });
}

// setGrad(id, gradId | null): replaces (or clears) the accumulated gradient.
Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  return guarded(info, "setGrad", [&](Napi::Env env) -> Napi::Value {
    at::Tensor t = store().get(idArg(info, 0));
    if (info[1].IsNull() || info[1].IsUndefined()) {
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
    if (!info[1].IsNull() && !info[1].IsUndefined()) gradient = store().get(idArg(info, 1));
    bool retain = info[2].As<Napi::Boolean>().Value();
    bool create = info[3].As<Napi::Boolean>().Value();
    t.backward(gradient, retain, create);
    return env.Undefined();
  });
}

Napi::Value GradEnabled(const Napi::CallbackInfo& info) {
  bool before = c10::GradMode::is_enabled();
  if (info.Length() > 0 && info[0].IsBoolean()) c10::GradMode::set_enabled(info[0].As<Napi::Boolean>().Value());
  return Napi::Boolean::New(info.Env(), before);
}

Napi::Value NumThreads(const Napi::CallbackInfo& info) {
  return guarded(info, "setNumThreads", [&](Napi::Env env) -> Napi::Value {
    if (info.Length() > 0 && info[0].IsNumber()) {
      int n = info[0].As<Napi::Number>().Int32Value();
      if (n < 1) throw std::invalid_argument("thread count must be at least 1");
      at::set_num_threads(n);
    }
    return Napi::Number::New(env, at::get_num_threads());
  });
}

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  return guarded(info, "manualSeed", [&](Napi::Env env) -> Napi::Value {
    double seed = info[0].As<Napi::Number>().DoubleValue();
    if (seed < 0 || seed != static_cast<double>(static_cast<uint64_t>(seed))) {
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
    if (info.Length() > 0 && info[0].IsNumber()) {
      gen.set_state(store().get(idArg(info, 0)));
      return env.Undefined();
    }
    return put(env, at::Tensor(gen.get_state()));
  });
}

Napi::Value Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("tensors", Napi::Number::New(env, static_cast<double>(store().count())));
  out.Set("bytes", Napi::Number::New(env, static_cast<double>(store().bytes())));
  return out;
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto out = Napi::Object::New(env);
  out.Set("torchVersion", Napi::String::New(env, TORCH_VERSION));
  out.Set("cuda", Napi::Boolean::New(env, at::hasCUDA()));
  out.Set("cudaDevices", Napi::Number::New(env, at::hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0));
  out.Set("parallelInfo", Napi::String::New(env, at::get_parallel_info()));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("op", Napi::Function::New(env, Op));
  exports.Set("hasOp", Napi::Function::New(env, HasOp));
  exports.Set("schema", Napi::Function::New(env, Schema));
  exports.Set("call", Napi::Function::New(env, Call));
  exports.Set("free", Napi::Function::New(env, Free));
  exports.Set("isLive", Napi::Function::New(env, IsLive));
  exports.Set("meta", Napi::Function::New(env, Meta));
  exports.Set("numel", Napi::Function::New(env, Numel));
  exports.Set("fromBuffer", Napi::Function::New(env, FromBuffer));
  exports.Set("toBuffer", Napi::Function::New(env, ToBuffer));
  exports.Set("viewBuffer", Napi::Function::New(env, ViewBuffer));
  exports.Set("requiresGrad", Napi::Function::New(env, RequiresGrad));
  exports.Set("isLeaf", Napi::Function::New(env, IsLeaf));
  exports.Set("grad", Napi::Function::New(env, Grad));
  exports.Set("setGrad", Napi::Function::New(env, SetGrad));
  exports.Set("backward", Napi::Function::New(env, Backward));
  exports.Set("gradEnabled", Napi::Function::New(env, GradEnabled));
  exports.Set("numThreads", Napi::Function::New(env, NumThreads));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  exports.Set("rngState", Napi::Function::New(env, RngState));
  exports.Set("memory", Napi::Function::New(env, Memory));
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo));
  return exports;
}

}  // namespace
}  // namespace omni

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return omni::Init(env, exports); }
NODE_API_MODULE(omni_torch, InitModule)
