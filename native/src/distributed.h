// c10d for omni_torch: TCPStore rendezvous and process groups (Gloo; NCCL when this LibTorch
// was built with it), as thin as LibTorch's own API. No N-API here: addon.cc converts arguments
// and maps every exception (a peer that vanished, a timeout) to a JavaScript error.
//
// Objects are named by integer handles. Their registries are heap-held and never destroyed at
// exit: a process group whose peer died may block in its destructor, and a process that is
// leaving because of that must not hang on the way out.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/intrusive_ptr.h>

#include <cstdint>
#include <string>
#include <vector>

namespace c10d { class ProcessGroup; }

namespace omni::dist {

// Whether a backend ("gloo", "nccl") was compiled in.
bool hasBackend(const std::string& backend);

// A TCPStore on host:port: the server (rank 0, waiting for worldSize - 1 clients) or a client.
// Connecting retries until timeoutMs, then throws.
int64_t createStore(const std::string& host, int64_t port, int64_t worldSize, bool isServer, int64_t timeoutMs);
void storeSet(int64_t store, const std::string& key, const std::string& value);
// Waits up to the store's timeout for the key.
std::string storeGet(int64_t store, const std::string& key);
int64_t storeAdd(int64_t store, const std::string& key, int64_t delta);

// A process group over `store`; every collective fails after timeoutMs.
// `ifname` (Gloo): the network interface to use, or "" for the address of `host`.
int64_t createGroup(int64_t store, int64_t rank, int64_t worldSize, const std::string& backend, int64_t timeoutMs,
                    const std::string& host, const std::string& ifname);
void destroyGroup(int64_t group);
// The group behind a handle (for grad_sync.cc); throws for an unknown one.
c10::intrusive_ptr<c10d::ProcessGroup> processGroup(int64_t group);

// Collectives, in place, asynchronous: each returns a work handle for wait().
// op: "sum" | "max" | "min" | "product".
int64_t allreduce(int64_t group, std::vector<at::Tensor> tensors, const std::string& op);
int64_t broadcast(int64_t group, std::vector<at::Tensor> tensors, int64_t root);
// Reduces `tensor` across ranks into root's (the others' are left unspecified), as c10d's reduce; returns a work handle.
int64_t reduce(int64_t group, const at::Tensor& tensor, int64_t root, const std::string& op);
// Blocks; returns worldSize tensors shaped like `input`, rank r's at index r.
std::vector<at::Tensor> allgather(int64_t group, const at::Tensor& input);
void barrier(int64_t group);
// Waits for a work handle and releases it; rethrows the collective's error.
void wait(int64_t work);

}  // namespace omni::dist
