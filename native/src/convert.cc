#include "convert.h"

#include <cmath>
#include <stdexcept>

#include "store.h"

namespace omni {

namespace {

// `where` is the argument's name; messages are built only when something is wrong, so the
// per-call path allocates no strings.
[[noreturn]] void mismatch(const std::string& where, const char* expected, const Napi::Value& v) {
  const char* got = v.IsNumber()  ? "number"
                    : v.IsString() ? "string"
                    : v.IsBoolean() ? "boolean"
                    : v.IsArray()   ? "array"
                    : v.IsNull() || v.IsUndefined() ? "nothing"
                                                     : "object";
  throw std::invalid_argument("argument '" + where + "' expects " + expected + ", got " + got);
}

int64_t toInt(const Napi::Value& v, const std::string& where) {
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? 1 : 0;
  if (!v.IsNumber()) mismatch(where, "an integer", v);
  double d = v.As<Napi::Number>().DoubleValue();
  // |d| < 2^63 as well: casting a double beyond int64 is undefined behaviour.
  if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) >= 9223372036854775808.0) {
    throw std::invalid_argument("argument '" + where + "' expects an integer, got " + std::to_string(d));
  }
  return static_cast<int64_t>(d);
}

double toDouble(const Napi::Value& v, const std::string& where) {
  if (!v.IsNumber()) mismatch(where, "a number", v);
  return v.As<Napi::Number>().DoubleValue();
}

bool toBool(const Napi::Value& v, const std::string& where) {
  if (!v.IsBoolean()) mismatch(where, "a boolean", v);
  return v.As<Napi::Boolean>().Value();
}

at::Tensor toTensor(const Napi::Value& v, const std::string& where) {
  if (!v.IsNumber()) mismatch(where, "a tensor", v);
  return store().get(tensorId(v));
}

// A Scalar keeps JavaScript's integers integral, as Python's literals are: `intTensor + 1`
// stays an integer tensor, `floatTensor + 1` stays float.
c10::IValue toScalar(const Napi::Value& v, const std::string& where) {
  if (v.IsBoolean()) return c10::IValue(v.As<Napi::Boolean>().Value());
  if (!v.IsNumber()) mismatch(where, "a number", v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9007199254740992.0) {
    return c10::IValue(static_cast<int64_t>(d));
  }
  return c10::IValue(d);
}

bool isIntLike(c10::TypeKind k) {
  return k == c10::TypeKind::IntType || k == c10::TypeKind::SymIntType ||
         k == c10::TypeKind::ScalarTypeType || k == c10::TypeKind::LayoutType ||
         k == c10::TypeKind::MemoryFormatType;
}

c10::IValue toList(Napi::Env env, const Napi::Value& v, const c10::TypePtr& elem,
                   const std::string& where) {
  auto k = elem->kind();
  // `int[1] dim` and friends accept a bare number, as in Python.
  if (!v.IsArray()) {
    if (isIntLike(k) && v.IsNumber()) return c10::IValue(c10::List<int64_t>({toInt(v, where)}));
    mismatch(where, "an array", v);
  }
  auto arr = v.As<Napi::Array>();
  uint32_t n = arr.Length();
  if (isIntLike(k)) {
    c10::List<int64_t> out;
    out.reserve(n);
    for (uint32_t i = 0; i < n; ++i) out.push_back(toInt(arr.Get(i), where));
    return c10::IValue(std::move(out));
  }
  if (k == c10::TypeKind::FloatType) {
    c10::List<double> out;
    for (uint32_t i = 0; i < n; ++i) out.push_back(toDouble(arr.Get(i), where));
    return c10::IValue(std::move(out));
  }
  if (k == c10::TypeKind::BoolType) {
    c10::List<bool> out;
    for (uint32_t i = 0; i < n; ++i) out.push_back(toBool(arr.Get(i), where));
    return c10::IValue(std::move(out));
  }
  if (k == c10::TypeKind::TensorType) {
    c10::List<at::Tensor> out;
    out.reserve(n);
    for (uint32_t i = 0; i < n; ++i) out.push_back(toTensor(arr.Get(i), where));
    return c10::IValue(std::move(out));
  }
  if (k == c10::TypeKind::OptionalType &&
      elem->castRaw<c10::OptionalType>()->getElementType()->kind() == c10::TypeKind::TensorType) {
    c10::List<c10::optional<at::Tensor>> out;
    for (uint32_t i = 0; i < n; ++i) {
      Napi::Value e = arr.Get(i);
      if (e.IsNull() || e.IsUndefined()) out.push_back(c10::nullopt);
      else out.push_back(toTensor(e, where));
    }
    return c10::IValue(std::move(out));
  }
  throw std::invalid_argument("argument '" + where + "': list of " + elem->str() + " is not supported by the binding");
}

}  // namespace

c10::IValue toIValue(Napi::Env env, const Napi::Value& v, const c10::TypePtr& type,
                     const std::string& where) {
  switch (type->kind()) {
    case c10::TypeKind::TensorType: return c10::IValue(toTensor(v, where));
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
    case c10::TypeKind::ScalarTypeType:
    case c10::TypeKind::LayoutType:
    case c10::TypeKind::MemoryFormatType: return c10::IValue(toInt(v, where));
    case c10::TypeKind::FloatType: return c10::IValue(toDouble(v, where));
    case c10::TypeKind::BoolType: return c10::IValue(toBool(v, where));
    case c10::TypeKind::NumberType: return toScalar(v, where);
    case c10::TypeKind::StringType:
      if (!v.IsString()) mismatch(where, "a string", v);
      return c10::IValue(v.As<Napi::String>().Utf8Value());
    case c10::TypeKind::DeviceObjType:
      if (!v.IsString()) mismatch(where, "a device name", v);
      return c10::IValue(c10::Device(v.As<Napi::String>().Utf8Value()));
    case c10::TypeKind::OptionalType:
      if (v.IsNull() || v.IsUndefined()) return c10::IValue();
      return toIValue(env, v, type->castRaw<c10::OptionalType>()->getElementType(), where);
    case c10::TypeKind::ListType:
      return toList(env, v, type->castRaw<c10::ListType>()->getElementType(), where);
    case c10::TypeKind::GeneratorType:
      if (v.IsNull() || v.IsUndefined()) return c10::IValue();
      mismatch(where, "no generator (the default generator is used)", v);
    default:
      throw std::invalid_argument("argument '" + where + "': type " + type->str() + " is not supported by the binding");
  }
}

Napi::Value fromIValue(Napi::Env env, c10::IValue&& v) {
  if (v.isTensor()) {
    at::Tensor t = std::move(v).toTensor();
    if (!t.defined()) return env.Null();
    return Napi::Number::New(env, static_cast<double>(store().put(env, std::move(t))));
  }
  if (v.isNone()) return env.Null();
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isTensorList()) {
    auto list = std::move(v).toTensorList();
    auto out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) {
      out.Set(static_cast<uint32_t>(i), fromIValue(env, c10::IValue(list.get(i))));
    }
    return out;
  }
  if (v.isIntList()) {
    auto list = v.toIntVector();
    auto out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); ++i) out.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(list[i])));
    return out;
  }
  if (v.isTuple()) {
    auto elements = std::move(v).toTupleRef().elements().vec();
    auto out = Napi::Array::New(env, elements.size());
    for (size_t i = 0; i < elements.size(); ++i) out.Set(static_cast<uint32_t>(i), fromIValue(env, std::move(elements[i])));
    return out;
  }
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  throw std::invalid_argument(std::string("results of kind ") + v.tagKind() + " are not supported by the binding");
}

}  // namespace omni
