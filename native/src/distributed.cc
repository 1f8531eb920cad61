#include "distributed.h"

#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <stdexcept>
#include <unordered_map>

namespace omni::dist {
namespace {

template <typename T>
struct Registry {
  std::unordered_map<int64_t, T> items;
  int64_t next = 1;
  int64_t add(T item) { items.emplace(next, std::move(item)); return next++; }
  T& get(int64_t id, const char* what) {
    auto it = items.find(id);
    if (it == items.end()) throw std::invalid_argument(std::string("no ") + what + " " + std::to_string(id) + " (destroyed, or never created)");
    return it->second;
  }
};

// Leaked on purpose (see distributed.h).
auto& stores = *new Registry<c10::intrusive_ptr<c10d::Store>>();
auto& groups = *new Registry<c10::intrusive_ptr<c10d::ProcessGroup>>();
auto& works = *new Registry<c10::intrusive_ptr<c10d::Work>>();

c10d::ReduceOp reduceOp(const std::string& op) {
  if (op == "sum") return c10d::ReduceOp::SUM;
  if (op == "max") return c10d::ReduceOp::MAX;
  if (op == "min") return c10d::ReduceOp::MIN;
  if (op == "product") return c10d::ReduceOp::PRODUCT;
  throw std::invalid_argument("reduce op must be sum, max, min or product, not '" + op + "'");
}

[[maybe_unused]] bool isLoopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

bool hasBackend(const std::string& backend) {
#ifdef USE_C10D_GLOO
  if (backend == "gloo") return true;
#endif
#ifdef USE_C10D_NCCL
  if (backend == "nccl") return true;
#endif
  return false;
}

int64_t createStore(const std::string& host, int64_t port, int64_t worldSize, bool isServer, int64_t timeoutMs) {
  if (port < 1 || port > 65535) throw std::invalid_argument("master port must be from 1 to 65535, not " + std::to_string(port));
  if (worldSize < 1) throw std::invalid_argument("world size must be at least 1");
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<std::uint16_t>(port);
  opts.isServer = isServer;
  opts.numWorkers = static_cast<std::size_t>(worldSize);
  opts.waitWorkers = false;  // the first collective is the rendezvous; a server blocking here could not time out cleanly
  opts.timeout = std::chrono::milliseconds(timeoutMs);
  return stores.add(c10::make_intrusive<c10d::TCPStore>(host, opts));
}

void storeSet(int64_t store, const std::string& key, const std::string& value) {
  stores.get(store, "store")->set(key, std::vector<uint8_t>(value.begin(), value.end()));
}

std::string storeGet(int64_t store, const std::string& key) {
  auto v = stores.get(store, "store")->get(key);
  return std::string(v.begin(), v.end());
}

int64_t storeAdd(int64_t store, const std::string& key, int64_t delta) {
  return stores.get(store, "store")->add(key, delta);
}

int64_t createGroup(int64_t store, int64_t rank, int64_t worldSize, const std::string& backend, int64_t timeoutMs,
                    const std::string& host, const std::string& ifname) {
  if (rank < 0 || rank >= worldSize) throw std::invalid_argument("rank " + std::to_string(rank) + " is outside world size " + std::to_string(worldSize));
  auto& base = stores.get(store, "store");
  auto timeout = std::chrono::milliseconds(timeoutMs);
  // Each group gets its own key space in the shared store, as torch.distributed does.
  auto prefixed = c10::make_intrusive<c10d::PrefixStore>(backend + "/" + std::to_string(groups.next), base);
#ifdef USE_C10D_GLOO
  if (backend == "gloo") {
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    // Loopback rendezvous means one machine: use loopback too, whatever the hostname resolves to.
    if (!ifname.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (isLoopback(host)) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    return groups.add(c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, worldSize, opts));
  }
#endif
#ifdef USE_C10D_NCCL
  if (backend == "nccl") {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    return groups.add(c10::make_intrusive<c10d::ProcessGroupNCCL>(prefixed, rank, worldSize, opts));
  }
#endif
  std::string available = std::string(hasBackend("gloo") ? " gloo" : "") + (hasBackend("nccl") ? " nccl" : "");
  throw std::invalid_argument("backend '" + backend + "' is not in this build (available:" +
                              (available.empty() ? " none; install libgloo-dev and rebuild the addon" : available) + ")");
}

void destroyGroup(int64_t group) {
  groups.get(group, "process group");
  groups.items.erase(group);
}

c10::intrusive_ptr<c10d::ProcessGroup> processGroup(int64_t group) {
  return groups.get(group, "process group");
}

int64_t allreduce(int64_t group, std::vector<at::Tensor> tensors, const std::string& op) {
  c10d::AllreduceOptions opts;
  opts.reduceOp = reduceOp(op);
  return works.add(groups.get(group, "process group")->allreduce(tensors, opts));
}

int64_t broadcast(int64_t group, std::vector<at::Tensor> tensors, int64_t root) {
  c10d::BroadcastOptions opts;
  opts.rootRank = root;
  return works.add(groups.get(group, "process group")->broadcast(tensors, opts));
}

int64_t reduce(int64_t group, const at::Tensor& tensor, int64_t root, const std::string& op) {
  c10d::ReduceOptions opts;
  opts.reduceOp = reduceOp(op);
  opts.rootRank = root;
  std::vector<at::Tensor> tensors{tensor};
  return works.add(groups.get(group, "process group")->reduce(tensors, opts));
}

std::vector<at::Tensor> allgather(int64_t group, const at::Tensor& input) {
  auto& pg = groups.get(group, "process group");
  std::vector<at::Tensor> in{input.contiguous()};
  std::vector<std::vector<at::Tensor>> out(1);
  for (int i = 0; i < pg->getSize(); ++i) out[0].push_back(at::empty_like(in[0]));
  pg->allgather(out, in)->wait();
  return out[0];
}

void barrier(int64_t group) {
  groups.get(group, "process group")->barrier()->wait();
}

void wait(int64_t work) {
  auto w = works.get(work, "work");
  works.items.erase(work);
  w->wait();
}

}  // namespace omni::dist
