#include "grad_sync.h"

#include "distributed.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>

namespace omni::dist {
namespace {

using torch::autograd::Node;

struct Bucket {
  std::vector<size_t> params;   // indices into State::params, in order
  std::vector<int64_t> offsets; // where each starts in `flat`
  at::Tensor flat;              // [sum of the params' numels], the params' dtype and device
  size_t unfinished = 0;        // params whose gradient is not final yet (this step)
  c10::intrusive_ptr<c10d::Work> work;
  int64_t owner = -1;           // reduce mode: the rank its sum goes to (-1: all-reduce mode)
};

struct State {
  std::mutex mutex;
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  std::vector<at::Tensor> params;
  // Held so that the hooked accumulators stay the ones autograd uses (it keeps a weak pointer).
  std::vector<std::shared_ptr<Node>> accumulators;
  std::vector<uintptr_t> hookKeys;
  std::unordered_map<const Node*, size_t> indexOf;
  std::vector<size_t> bucketOf;
  std::vector<Bucket> buckets;
  // This step's (reset by arm):
  bool armed = false;
  std::vector<char> fired, done, finalOnFire;
  size_t nextBucket = 0;   // buckets start in order on every rank: collectives pair up by order
  int64_t startedEarly = 0;
  std::string late;        // the first parameter that accumulated after its bucket left
  // Reduce mode (ZeRO-2): each bucket's sum goes to its owner only, through a flat buffer that
  // lives while its reduce runs; the others' gradients are dropped as their bucket starts.
  bool reduceMode = false;
  int64_t rank = 0;
  size_t completed = 0;    // buckets whose reduce has been waited for (reduce mode)

  // Which of the params the graphs behind `roots` reach.
  std::vector<char> reach(const std::vector<at::Tensor>& roots) const {
    std::vector<char> out(params.size(), 0);
    std::unordered_set<const Node*> seen;
    std::vector<const Node*> stack;
    auto push = [&](const Node* n) { if (n && seen.insert(n).second) stack.push_back(n); };
    for (const auto& r : roots) {
      if (!r.defined() || !r.requires_grad()) continue;
      if (r.grad_fn()) push(r.grad_fn().get());
      else push(torch::autograd::impl::try_get_grad_accumulator(r).get());
    }
    while (!stack.empty()) {
      const Node* n = stack.back();
      stack.pop_back();
      auto it = indexOf.find(n);
      if (it != indexOf.end()) out[it->second] = 1;
      for (const auto& e : n->next_edges()) push(e.function.get());
    }
    return out;
  }

  void markDone(size_t i) {
    if (done[i]) return;
    done[i] = 1;
    buckets[bucketOf[i]].unfinished--;
  }

  void start(Bucket& b) {
    at::NoGradGuard noGrad;
    if (reduceMode) b.flat = at::empty({b.offsets.back() + params[b.params.back()].numel()}, params[b.params[0]].options().requires_grad(false));
    for (size_t k = 0; k < b.params.size(); ++k) {
      at::Tensor& p = params[b.params[k]];
      auto slot = b.flat.narrow(0, b.offsets[k], p.numel());
      const at::Tensor& g = p.grad();
      if (g.defined()) slot.copy_(g.reshape(-1));
      else slot.zero_();  // no gradient here; another rank may have one
      if (reduceMode && b.owner != rank) p.mutable_grad().reset();  // its owner gets the sum
    }
    std::vector<at::Tensor> tensors{b.flat};
    if (!reduceMode) {
      b.work = group->allreduce(tensors);
      return;
    }
    c10d::ReduceOptions opts;
    opts.rootRank = b.owner;
    b.work = group->reduce(tensors, opts);
    // Waited for at once, so no more than one bucket's buffer exists at a time (on CUDA wait()
    // only orders the streams; on the CPU, Gloo's transfer is the backward thread's time).
    complete(static_cast<size_t>(&b - buckets.data()));
  }

  // Reduce mode: waits for bucket k's reduce (and any before it); the owner takes the sum as its
  // gradients (not divided: a step's micro-batches add up), and the buffer is freed.
  void complete(size_t k) {
    at::NoGradGuard noGrad;
    for (; completed <= k; ++completed) {
      Bucket& b = buckets[completed];
      b.work->wait();
      b.work.reset();
      if (b.owner == rank) {
        for (size_t j = 0; j < b.params.size(); ++j) {
          at::Tensor& p = params[b.params[j]];
          auto sum = b.flat.narrow(0, b.offsets[j], p.numel()).view(p.sizes());
          if (p.grad().defined()) p.mutable_grad().copy_(sum);
          else p.mutable_grad() = sum.clone();
        }
      }
      b.flat = at::Tensor();
    }
  }

  void startReady(bool early) {
    while (nextBucket < buckets.size() && buckets[nextBucket].unfinished == 0) {
      start(buckets[nextBucket++]);
      if (early) startedEarly++;
    }
  }

  // The accumulator of param i has run.
  void accumulated(size_t i) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed) return;
    fired[i] = 1;
    if (bucketOf[i] < nextBucket) {
      if (late.empty()) late = "parameter " + std::to_string(i) + " of the gradient sync accumulated a gradient after its bucket's all-reduce had started "
                               "(a later backward call reached it that the caller did not name in `later`)";
      return;
    }
    if (finalOnFire[i]) markDone(i);
    startReady(true);
  }
};

template <typename T>
struct Registry {
  std::unordered_map<int64_t, T> items;
  int64_t next = 1;
  T& get(int64_t id) {
    auto it = items.find(id);
    if (it == items.end()) throw std::invalid_argument("no gradient sync " + std::to_string(id) + " (destroyed, or never created)");
    return it->second;
  }
};

// Leaked on purpose, as distributed.cc's registries: exit must not wait on a dead peer.
auto& syncs = *new Registry<std::shared_ptr<State>>();

}  // namespace

int64_t createGradSync(int64_t group, std::vector<at::Tensor> params, const std::vector<int64_t>& bucketSizes,
                       const std::vector<int64_t>& owners) {
  auto s = std::make_shared<State>();
  s->group = processGroup(group);
  s->reduceMode = !owners.empty();
  s->rank = s->group->getRank();
  if (s->reduceMode && owners.size() != bucketSizes.size()) {
    throw std::invalid_argument(std::to_string(owners.size()) + " bucket owners for " + std::to_string(bucketSizes.size()) + " buckets");
  }
  for (auto o : owners) {
    if (o < 0 || o >= s->group->getSize()) throw std::invalid_argument("bucket owner " + std::to_string(o) + " is not a rank of the group");
  }
  int64_t total = 0;
  for (auto n : bucketSizes) {
    if (n < 1) throw std::invalid_argument("every bucket needs at least one parameter");
    total += n;
  }
  if (total != static_cast<int64_t>(params.size())) {
    throw std::invalid_argument("bucket sizes add up to " + std::to_string(total) + ", not the " + std::to_string(params.size()) + " parameters");
  }
  size_t next = 0;
  for (auto n : bucketSizes) {
    Bucket b;
    int64_t offset = 0;
    for (int64_t k = 0; k < n; ++k, ++next) {
      const at::Tensor& p = params[next];
      if (!p.is_leaf() || !p.requires_grad()) throw std::invalid_argument("parameter " + std::to_string(next) + " is not a leaf that requires grad");
      if (k > 0 && (p.scalar_type() != params[b.params[0]].scalar_type() || p.device() != params[b.params[0]].device())) {
        throw std::invalid_argument("parameter " + std::to_string(next) + " differs in dtype or device from the first of its bucket");
      }
      b.params.push_back(next);
      b.offsets.push_back(offset);
      offset += p.numel();
    }
    if (s->reduceMode) b.owner = owners[s->buckets.size()];
    else b.flat = at::empty({offset}, params[b.params[0]].options().requires_grad(false));
    s->buckets.push_back(std::move(b));
  }
  s->params = std::move(params);
  s->bucketOf.assign(s->params.size(), 0);
  for (size_t k = 0; k < s->buckets.size(); ++k) for (auto i : s->buckets[k].params) s->bucketOf[i] = k;
  for (size_t i = 0; i < s->params.size(); ++i) {
    auto acc = torch::autograd::impl::grad_accumulator(s->params[i]);
    if (!acc) throw std::invalid_argument("parameter " + std::to_string(i) + " has no gradient accumulator");
    if (!s->indexOf.emplace(acc.get(), i).second) throw std::invalid_argument("parameter " + std::to_string(i) + " is listed twice");
    std::weak_ptr<State> weak = s;
    auto key = acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [weak, i](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
          if (auto state = weak.lock()) state->accumulated(i);
          return outputs;
        }));
    s->accumulators.push_back(std::move(acc));
    s->hookKeys.push_back(key);
  }
  int64_t id = syncs.next++;
  syncs.items.emplace(id, std::move(s));
  return id;
}

void gradSyncArm(int64_t sync) {
  auto& s = *syncs.get(sync);
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.armed) throw std::logic_error("the gradient sync is already armed: finish() the step before arming it again");
  size_t n = s.params.size();
  s.fired.assign(n, 0);
  s.done.assign(n, 0);
  s.finalOnFire.assign(n, 0);
  for (auto& b : s.buckets) { b.unfinished = b.params.size(); b.work.reset(); }
  s.nextBucket = 0;
  s.completed = 0;
  s.startedEarly = 0;
  s.late.clear();
  s.armed = true;
}

void gradSyncBackward(int64_t sync, const at::Tensor& root, const at::Tensor& grad, const std::vector<at::Tensor>& later) {
  auto state = syncs.get(sync);
  {
    auto& s = *state;
    std::lock_guard<std::mutex> lock(s.mutex);
    if (s.armed) {
      auto now = s.reach({root});
      auto after = s.reach(later);
      for (size_t i = 0; i < s.params.size(); ++i) {
        s.finalOnFire[i] = now[i] && !after[i];
        // Accumulated by an earlier call, and neither this one nor a later one reaches it.
        if (s.fired[i] && !now[i] && !after[i] && s.bucketOf[i] >= s.nextBucket) s.markDone(i);
      }
      s.startReady(true);
    }
  }
  struct Reset {  // a plain backward afterwards must not mark anything final
    State& s;
    ~Reset() { std::lock_guard<std::mutex> lock(s.mutex); std::fill(s.finalOnFire.begin(), s.finalOnFire.end(), 0); }
  } reset{*state};
  root.backward(grad, /*retain_graph=*/false, /*create_graph=*/false);
}

int64_t gradSyncFinish(int64_t sync) {
  auto& s = *syncs.get(sync);
  std::unique_lock<std::mutex> lock(s.mutex);
  if (!s.armed) throw std::logic_error("the gradient sync was not armed for this step");
  s.armed = false;  // whatever happens below, the next step starts afresh
  for (size_t i = 0; i < s.params.size(); ++i) if (s.bucketOf[i] >= s.nextBucket) s.markDone(i);
  s.startReady(false);
  int64_t early = s.startedEarly;
  std::string late = s.late;
  lock.unlock();
  const double worldSize = s.group->getSize();
  at::NoGradGuard noGrad;
  if (s.reduceMode) {
    if (!s.buckets.empty()) s.complete(s.buckets.size() - 1);
    if (!late.empty()) throw std::logic_error(late);
    return early;
  }
  for (auto& b : s.buckets) {
    auto work = std::move(b.work);
    work->wait();
    if (!late.empty()) continue;  // wait for every bucket (the peers send them all), then fail
    b.flat.div_(worldSize);
    for (size_t k = 0; k < b.params.size(); ++k) {
      at::Tensor& p = s.params[b.params[k]];
      auto mean = b.flat.narrow(0, b.offsets[k], p.numel()).view(p.sizes());
      if (p.grad().defined()) p.mutable_grad().copy_(mean);
      else p.mutable_grad() = mean.clone();
    }
  }
  if (!late.empty()) throw std::logic_error(late);
  return early;
}

int64_t gradSyncStarted(int64_t sync) {
  auto& s = *syncs.get(sync);
  std::lock_guard<std::mutex> lock(s.mutex);
  return static_cast<int64_t>(s.nextBucket);
}

void destroyGradSync(int64_t sync) {
  auto s = syncs.get(sync);
  std::lock_guard<std::mutex> lock(s->mutex);
  for (size_t i = 0; i < s->accumulators.size(); ++i) s->accumulators[i]->del_post_hook(s->hookKeys[i]);
  syncs.items.erase(sync);
}

}  // namespace omni::dist
