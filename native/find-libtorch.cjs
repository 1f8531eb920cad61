// Locates LibTorch for binding.gyp. Prints one value, chosen by the first argument:
//   include | lib | libs | abi | c10d-defines | c10d-libs | onednn-defines | onednn-libs
// Order: $LIBTORCH (an official LibTorch download or a PyTorch install's torch/ directory),
// then the system's (Debian's libtorch-dev). Fails with instructions when neither exists.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

function candidates() {
  const list = [];
  if (process.env.LIBTORCH) {
    const root = path.resolve(process.env.LIBTORCH);
    list.push({ include: path.join(root, "include"), lib: path.join(root, "lib"), root, fromEnv: true });
  }
  for (const lib of [
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
  ]) {
    list.push({
      include: lib.startsWith("/usr/local") ? "/usr/local/include" : "/usr/include",
      lib,
      root: null,
      fromEnv: false,
    });
  }
  return list;
}

function valid(c) {
  return (
    fs.existsSync(path.join(c.include, "ATen", "ATen.h")) &&
    (fs.existsSync(path.join(c.lib, "libtorch_cpu.so")) || fs.existsSync(path.join(c.lib, "libtorch.so")))
  );
}

function fail(message) {
  process.stderr.write(
    `\nomni-dpo: ${message}\n` +
      "  Install Debian's LibTorch:   sudo apt-get install -y libtorch-dev libopenblas0-pthread\n" +
      "  or point LIBTORCH at a directory with include/ and lib/: an official LibTorch download,\n" +
      "  or a PyTorch install's torch/ directory (python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))').\n\n",
  );
  process.exit(1);
}

const all = candidates();
if (process.env.LIBTORCH && !valid(all[0])) {
  fail(`LIBTORCH=${process.env.LIBTORCH} has no include/ATen/ATen.h and lib/libtorch_cpu.so.`);
}
const found = all.find(valid);
if (!found) fail("LibTorch was not found.");

// The C++ ABI must match the one LibTorch was built with; its CMake config records it.
function abi() {
  const configs = [
    found.root && path.join(found.root, "share", "cmake", "Torch", "TorchConfig.cmake"),
    path.join(found.lib, "cmake", "Torch", "TorchConfig.cmake"),
  ].filter(Boolean);
  for (const file of configs) {
    if (!fs.existsSync(file)) continue;
    const m = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(fs.readFileSync(file, "utf8"));
    if (m) return m[1];
  }
  return "1";
}

const libs = ["torch", "torch_cpu", "c10"];
for (const optional of ["torch_cuda", "c10_cuda"]) {
  if (fs.existsSync(path.join(found.lib, `lib${optional}.so`))) libs.push(optional);
}

// c10d backends, each compiled only when its headers and library are there. Gloo: Debian's
// libtorch-dev needs libgloo-dev (headers and libgloo.so); an official LibTorch links Gloo into
// libtorch_cpu and ships its headers. NCCL: CUDA builds (libtorch_cuda with ProcessGroupNCCL).
function c10d() {
  const includes = [found.include, "/usr/include"];
  const has = (rel) => includes.some((dir) => fs.existsSync(path.join(dir, rel)));
  const defines = [];
  const extra = [];
  if (has("gloo/config.h") && has("torch/csrc/distributed/c10d/ProcessGroupGloo.hpp")) {
    defines.push("USE_C10D_GLOO");
    const systemGloo = [
      "/usr/lib/x86_64-linux-gnu",
      "/usr/lib/aarch64-linux-gnu",
      "/usr/lib64",
      "/usr/lib",
      found.lib,
    ].some((dir) => fs.existsSync(path.join(dir, "libgloo.so")));
    if (systemGloo && !found.fromEnv) extra.push("-lgloo");
  }
  if (libs.includes("torch_cuda") && has("torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp") && has("nccl.h"))
    defines.push("USE_C10D_NCCL");
  return { defines, extra };
}

// oneDNN for prepacked linear weights in inference (native/src/packed_linear.h): with Debian's
// LibTorch, which links the system's libdnnl itself, when libdnnl-dev's headers and library are
// there. An official LibTorch carries its own oneDNN inside libtorch_cpu, without headers; a
// second copy beside it is not worth the risk, so such builds use at::linear throughout.
function onednn() {
  if (found.fromEnv || !fs.existsSync("/usr/include/oneapi/dnnl/dnnl.hpp")) return false;
  return ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib"].some((dir) =>
    fs.existsSync(path.join(dir, "libdnnl.so")),
  );
}

const what = process.argv[2];
const includeApi = path.join(found.include, "torch", "csrc", "api", "include");
switch (what) {
  case "include":
    console.log([found.include, includeApi].join(" "));
    break;
  case "lib":
    console.log(found.lib);
    break;
  case "libs":
    console.log(libs.map((l) => `-l${l}`).join(" "));
    break;
  case "abi":
    console.log(abi());
    break;
  case "c10d-defines":
    console.log(c10d().defines.join(" "));
    break;
  case "c10d-libs":
    console.log(c10d().extra.join(" "));
    break;
  case "onednn-defines":
    console.log(onednn() ? "OMNI_DPO_ONEDNN" : "");
    break;
  case "onednn-libs":
    console.log(onednn() ? "-ldnnl" : "");
    break;
  default:
    fail(`find-libtorch.cjs: unknown query '${what}'`);
}
