// Gradient averaging overlapped with backward, as DistributedDataParallel's Reducer does it: a
// post hook on each trainable parameter's gradient accumulator marks the parameter's gradient
// final, and as soon as a bucket (consecutive parameters, in the order given: reverse
// registration order, up to bucket_cap_mb) is all final, its gradients are copied into the
// bucket's flat buffer and its all-reduce starts while backward goes on with the layers below.
//
// Why not c10d::Reducer itself (Debian's libtorch_cpu has it): omni-dpo's backward is several
// autograd calls (loss.backward(), then each recompute-tape segment: the LM head's chunks,
// checkpointed layers), and the head's weights (the embedding too when tied) accumulate once
// per chunk, a number that varies with each batch's answer tokens. The Reducer requires one
// accumulation per parameter per iteration (or, with static_graph, the count of the first).
//
// When is a gradient final? Before each backward call the caller names the roots that later
// calls will still backpropagate from (segments' non-leaf inputs; the current root itself while
// more segments of its group follow, as the LM head's chunks). A parameter the current graph
// reaches and no later root does is final when its accumulator runs; one accumulated earlier
// that neither reaches is final at once; the rest at finish(). A parameter accumulating after
// its bucket left is an error at finish(), never a silently wrong average.
//
// The hooks are C++ only: they run on the thread that runs the accumulation (the caller's on
// CPU, an autograd device thread on CUDA) and never call into JavaScript.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace omni::dist {

// Hooks `params` (distinct leaves that require grad) for the process group; bucketSizes[k]
// parameters go in bucket k, in order (their sum is params.size()). Returns a handle.
// With `owners` (one rank per bucket), reduce mode (ZeRO-2): each bucket's gradients are summed
// into its owner's only (c10d reduce), the other ranks drop theirs as the bucket starts, and
// finish() leaves the owner the sum (not divided: arm every micro-batch and the sums add up).
int64_t createGradSync(int64_t group, std::vector<at::Tensor> params, const std::vector<int64_t>& bucketSizes,
                       const std::vector<int64_t>& owners = {});
// The next backward calls are the step's last micro-batch's: reduce as they go. (Not armed, the
// hooks do nothing: earlier micro-batches accumulate locally, as under DDP's no_sync.)
void gradSyncArm(int64_t sync);
// root.backward(grad) (grad undefined: a scalar root), with `later`: what later calls of this
// step will backpropagate from.
void gradSyncBackward(int64_t sync, const at::Tensor& root, const at::Tensor& grad, const std::vector<at::Tensor>& later);
// Starts what is left, waits for every bucket and writes each gradient's mean over the ranks
// back (a parameter without a gradient gets one: zeros on this rank). Returns how many buckets
// had started during backward.
int64_t gradSyncFinish(int64_t sync);
// How many buckets have started their all-reduce in this step so far.
int64_t gradSyncStarted(int64_t sync);
// Removes the hooks and frees the buffers.
void destroyGradSync(int64_t sync);

}  // namespace omni::dist
