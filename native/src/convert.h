// JavaScript values <-> LibTorch IValues, guided by an operator's schema.
// The schema says what each argument is, so JavaScript passes plain numbers, booleans,
// strings, arrays and tensor ids, and this file turns them into what the kernel expects.
#pragma once

#include <napi.h>
#include <ATen/core/ivalue.h>
#include <ATen/core/jit_type.h>

namespace omni {

// Converts `value` to the schema type `type`; `where` names the argument in errors.
c10::IValue toIValue(Napi::Env env, const Napi::Value& value, const c10::TypePtr& type,
                     const std::string& where);

// Converts an op's result to JavaScript: each tensor becomes a new store id.
Napi::Value fromIValue(Napi::Env env, c10::IValue&& value);

}  // namespace omni
