#include "packed_linear.h"

#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>

#ifdef OMNI_DPO_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace omni::packed {

#ifdef OMNI_DPO_ONEDNN
namespace {

using dnnl::matmul;
using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::engine& cpu() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// CPU streams run primitives on the calling thread (and its OpenMP team): one serves every call.
dnnl::stream& stream() {
  static dnnl::stream s(cpu());
  return s;
}

// The row count a pack's layout is chosen for (a decoding step's batch); oneDNN's brgemm picks
// the same blocked layout for any row count, and forward() checks that it accepts it.
constexpr int64_t kLayoutRows = 16;
// Row counts with a primitive kept per pack (prefill, decoding steps as rows leave, ...).
constexpr size_t kMaxPrimitives = 64;

matmul::primitive_desc describe(int64_t rows, int64_t in, int64_t out, const memory::desc& weights, bool bias) {
  memory::desc src({rows, in}, dt::f32, tag::ab);
  memory::desc dst({rows, out}, dt::f32, tag::ab);
  if (!bias) return matmul::primitive_desc(matmul::desc(src, weights, dst), cpu());
  memory::desc b({1, out}, dt::f32, tag::ab);
  return matmul::primitive_desc(matmul::desc(src, weights, b, dst), cpu());
}

// oneDNN's reference kernels are far slower than OpenBLAS: a pack is only worth it with a JIT one.
bool fast(const matmul::primitive_desc& pd) {
  return std::string(pd.impl_info_str()).rfind("ref", 0) != 0;
}

struct Pack {
  at::Tensor weight, bias;  // [out, in], [out] or undefined: the tensors packed (storage shared)
  int64_t in = 0, out = 0;
  int64_t weightVersion = -1, biasVersion = -1;
  const void* weightData = nullptr;
  const void* biasData = nullptr;
  memory::desc layout;      // the blocked layout of the packed weight
  at::Tensor blocked;       // uint8 [layout.get_size()]: the packed weight (counted as tensor memory)
  std::unordered_map<int64_t, matmul> byRows;

  bool stale() const {
    return weight._version() != weightVersion || weight.data_ptr() != weightData ||
           (bias.defined() && (bias._version() != biasVersion || bias.data_ptr() != biasData));
  }

  // Reorders the weight into the blocked layout: W [out, in] row-major is the matmul's
  // weights [in, out] in column-major order (tag ba).
  void repack() {
    at::Tensor w = weight.contiguous();
    memory plain(memory::desc({in, out}, dt::f32, tag::ba), cpu(), w.data_ptr());
    memory target(layout, cpu(), blocked.data_ptr());
    dnnl::reorder(plain, target).execute(stream(), plain, target);
    stream().wait();
    weightVersion = weight._version();
    weightData = weight.data_ptr();
    if (bias.defined()) {
      biasVersion = bias._version();
      biasData = bias.data_ptr();
    }
  }

  matmul& primitive(int64_t rows) {
    auto it = byRows.find(rows);
    if (it != byRows.end()) return it->second;
    if (byRows.size() >= kMaxPrimitives) byRows.clear();
    return byRows.emplace(rows, matmul(describe(rows, in, out, layout, bias.defined()))).first->second;
  }
};

std::unordered_map<int64_t, std::unique_ptr<Pack>>& packs() {
  static std::unordered_map<int64_t, std::unique_ptr<Pack>> all;
  return all;
}
int64_t nextId = 1;

Pack& get(int64_t id) {
  auto it = packs().find(id);
  if (it == packs().end()) throw std::invalid_argument("packed linear " + std::to_string(id) + " was destroyed (or never existed)");
  return *it->second;
}

bool packable(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == at::kFloat && t.layout() == at::kStrided;
}

}  // namespace

bool available() {
  try {
    memory::desc any({64, 64}, dt::f32, tag::any);  // weights [in, out]
    return fast(describe(kLayoutRows, 64, 64, any, false));
  } catch (const dnnl::error&) {
    return false;
  }
}

int64_t create(const at::Tensor& weight, const at::Tensor& bias) {
  if (!packable(weight) || weight.dim() != 2 || weight.numel() == 0) return 0;
  if (bias.defined() && (!packable(bias) || bias.dim() != 1 || bias.size(0) != weight.size(0))) return 0;
  auto pack = std::make_unique<Pack>();
  pack->weight = weight;
  pack->bias = bias;
  pack->out = weight.size(0);
  pack->in = weight.size(1);
  try {
    memory::desc any({pack->in, pack->out}, dt::f32, tag::any);
    auto pd = describe(kLayoutRows, pack->in, pack->out, any, bias.defined());
    if (!fast(pd)) return 0;
    pack->layout = pd.weights_desc();
  } catch (const dnnl::error&) {
    return 0;
  }
  pack->blocked = at::empty({static_cast<int64_t>(pack->layout.get_size())}, at::TensorOptions().dtype(at::kByte));
  pack->repack();
  int64_t id = nextId++;
  packs().emplace(id, std::move(pack));
  return id;
}

at::Tensor forward(int64_t id, const at::Tensor& x) {
  Pack& p = get(id);
  bool recording = c10::GradMode::is_enabled() &&
                   (x.requires_grad() || p.weight.requires_grad() || (p.bias.defined() && p.bias.requires_grad()));
  if (recording || at::autocast::is_cpu_enabled() || !packable(x) || x.dim() < 1 || x.size(-1) != p.in ||
      !packable(p.weight) || p.weight.sizes() != at::IntArrayRef{p.out, p.in} ||
      (p.bias.defined() && !packable(p.bias)))
    return at::linear(x, p.weight, p.bias);
  if (p.stale()) p.repack();
  at::Tensor rows = x.reshape({-1, p.in}).contiguous();  // [M, in]
  int64_t m = rows.size(0);
  auto shape = x.sizes().vec();
  shape.back() = p.out;
  if (m == 0) return at::empty(shape, x.options());
  at::Tensor y = at::empty({m, p.out}, x.options());  // [M, out]
  memory::desc src({m, p.in}, dt::f32, tag::ab);
  memory::desc dst({m, p.out}, dt::f32, tag::ab);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, memory(src, cpu(), rows.data_ptr())},
      {DNNL_ARG_WEIGHTS, memory(p.layout, cpu(), p.blocked.data_ptr())},
      {DNNL_ARG_DST, memory(dst, cpu(), y.data_ptr())},
  };
  at::Tensor b;
  if (p.bias.defined()) {
    b = p.bias.contiguous();
    args.emplace(DNNL_ARG_BIAS, memory(memory::desc({1, p.out}, dt::f32, tag::ab), cpu(), b.data_ptr()));
  }
  matmul* primitive;
  try {
    primitive = &p.primitive(m);
  } catch (const dnnl::error&) {
    return at::linear(x, p.weight, p.bias);  // no kernel for this row count on the packed layout
  }
  primitive->execute(stream(), args);
  stream().wait();
  return y.view(shape);
}

int64_t bytes(int64_t id) { return static_cast<int64_t>(get(id).blocked.numel()); }

void destroy(int64_t id) { packs().erase(id); }

#else  // built without oneDNN: nothing packs, callers use at::linear.

bool available() { return false; }
int64_t create(const at::Tensor&, const at::Tensor&) { return 0; }
at::Tensor forward(int64_t id, const at::Tensor&) {
  throw std::invalid_argument("packed linear " + std::to_string(id) + " does not exist (built without oneDNN)");
}
int64_t bytes(int64_t) { return 0; }
void destroy(int64_t) {}

#endif

}  // namespace omni::packed
