// Gradient averaging across ranks, as DistributedDataParallel does it: the gradients in buckets
// of about 25 MB (bucket_cap_mb), the parameters in reverse registration order (backward reaches
// the last layers first), each bucket all-reduced (summed), then divided by the world size. It
// is done once per optimizer step, for the last micro-batch (gradient accumulation needs no
// communication before that, as DDP's no_sync), and before clipping, so the norm and the step
// are the same on every rank.
//
// Two ways, the same numbers: by default each bucket's all-reduce starts during the last
// micro-batch's backward, as soon as its gradients are final (native/src/grad_sync.h, driven by
// the distributed trainer's backward); with OMNI_DPO_DDP_OVERLAP=0 (for measuring what the
// overlap gains) averageGradients below does it all after backward.
import * as torch from "../../torch/index.js";
import type { ProcessGroup } from "../../torch/distributed.js";

export const BUCKET_BYTES = 25 * 1024 * 1024;

const BYTES: Partial<Record<torch.DType, number>> = { float64: 8, float32: 4, bfloat16: 2, float16: 2 };

/** Groups tensors (in order) into buckets of one dtype and device, each up to `bucketBytes` (a larger tensor is a bucket alone). */
export function buckets(tensors: torch.Tensor[], bucketBytes = BUCKET_BYTES): torch.Tensor[][] {
  const out: torch.Tensor[][] = [];
  let current: torch.Tensor[] = [];
  let bytes = 0;
  for (const t of tensors) {
    const size = t.numel() * (BYTES[t.dtype] ?? 8);
    const head = current[0];
    if (head && (head.dtype !== t.dtype || head.device !== t.device || bytes + size > bucketBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(t);
    bytes += size;
  }
  if (current.length) out.push(current);
  return out;
}

/** How many of `tensors` (in order) go in each bucket: buckets() as counts, for the native gradient sync. */
export function bucketSizes(tensors: torch.Tensor[], bucketBytes = BUCKET_BYTES): number[] {
  return buckets(tensors, bucketBytes).map((b) => b.length);
}

/** Whether the all-reduce overlaps with backward: yes unless OMNI_DPO_DDP_OVERLAP is 0 (or false, off, no). */
export function overlapEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = (env.OMNI_DPO_DDP_OVERLAP ?? "").trim().toLowerCase();
  if (v === "" || v === "1" || v === "true" || v === "on" || v === "yes") return true;
  if (v === "0" || v === "false" || v === "off" || v === "no") return false;
  throw new Error(`environment: OMNI_DPO_DDP_OVERLAP=${env.OMNI_DPO_DDP_OVERLAP} must be 1 or 0`);
}

/**
 * Replaces each parameter's gradient by its mean over the ranks. A parameter without a gradient
 * here counts as a zero gradient (another rank may have one), so every rank steps the same way.
 */
export function averageGradients(group: ProcessGroup, params: torch.Tensor[], bucketBytes = BUCKET_BYTES): void {
  if (group.worldSize === 1) return;
  torch.noGrad(() =>
    torch.tidy(() => {
      const grads = params.map((p) => {
        const g = p.grad;
        if (g) return g;
        p.grad = torch.zerosLike(p);
        return p.grad!;
      });
      // Pack every bucket and start its all-reduce before waiting for any: packing the next one
      // overlaps with the transfer of the last.
      const flights = buckets(grads, bucketBytes).map((bucket) => {
        const flat = torch.cat(bucket.map((g) => g.reshape(-1))); // [sum of numels]
        return { bucket, flat, work: group.allReduceAsync(flat, "sum") };
      });
      for (const { bucket, flat, work } of flights) {
        work.wait();
        flat.div_(group.worldSize);
        let offset = 0;
        for (const g of bucket) {
          const n = g.numel();
          g.copy_(flat.narrow(0, offset, n).view(g.shape));
          offset += n;
        }
      }
    }),
  );
}
