// CUDA checks of the tensor engine (run where LibTorch has CUDA, e.g. after building with
// LIBTORCH=<a CUDA PyTorch install's torch/ directory>): values and gradients on the GPU against
// the CPU, an AdamW step, and matmul and per-op timings beside PyTorch on the same GPU.
import * as torch from "../dist/src/torch/index.js";
import { execFileSync } from "node:child_process";
const log = (...a) => console.log(...a);
log(
  "buildInfo",
  JSON.stringify(torch.buildInfo()),
  "cuda",
  torch.cuda.isAvailable(),
  "devices",
  torch.cuda.deviceCount(),
);
const maxDiff = (a, b) => torch.tidy(() => a.cpu().sub(b.cpu()).abs().max().item());
let failures = 0;
const check = (name, diff, tol) => {
  const ok = diff <= tol;
  if (!ok) failures++;
  log(`${ok ? "ok  " : "FAIL"} ${name}: max |diff| ${diff.toExponential(2)} (tol ${tol})`);
};
torch.manualSeed(0);
const a = torch.randn([64, 96], { dtype: "float64" }),
  b = torch.randn([96, 32], { dtype: "float64" });
const ag = a.to("cuda"),
  bg = b.to("cuda");
log("device of ag:", ag.device);
check("matmul fp64", maxDiff(a.matmul(b), ag.matmul(bg)), 1e-10);
check("softmax/logsumexp fp64", maxDiff(a.logSoftmax(-1), ag.logSoftmax(-1)), 1e-12);
const logits = torch.randn([2, 7, 50], { dtype: "float64" });
const labels = torch.randint(0, 50, [2, 7]);
const lbl = labels.maskedFill(
  torch.tensor(
    [
      [1, 1, 0, 0, 0, 0, 0],
      [1, 0, 0, 0, 0, 0, 0],
    ],
    { dtype: "bool" },
  ),
  -100,
);
check(
  "tokenLogProbs",
  maxDiff(torch.tokenLogProbs(logits, lbl), torch.tokenLogProbs(logits.to("cuda"), lbl.to("cuda"))),
  1e-12,
);
const q = torch.randn([2, 4, 9, 16]);
check(
  "sdpa causal fp32",
  maxDiff(
    torch.scaledDotProductAttention(q, q, q, { isCausal: true }),
    torch.scaledDotProductAttention(q.cuda(), q.cuda(), q.cuda(), { isCausal: true }),
  ),
  1e-5,
);
const pad = torch
  .tensor([
    [true, true, true, true, true, true, true, true, true],
    [false, false, true, true, true, true, true, true, true],
  ])
  .reshape(2, 1, 1, 9);
{
  const c = torch.scaledDotProductAttention(q, q, q, { isCausal: true, attnMask: pad });
  const g = torch.scaledDotProductAttention(q.cuda(), q.cuda(), q.cuda(), { isCausal: true, attnMask: pad.cuda() });
  check("sdpa causal+padding fp32, row without padding", maxDiff(c.narrow(0, 0, 1), g.narrow(0, 0, 1)), 1e-5);
  check(
    "sdpa causal+padding fp32, left-padded row, real positions",
    maxDiff(c.narrow(0, 1, 1).narrow(2, 2, 7), g.narrow(0, 1, 1).narrow(2, 2, 7)),
    1e-5,
  );
  log(
    "     (fully masked padding positions differ by",
    maxDiff(c.narrow(0, 1, 1).narrow(2, 0, 2), g.narrow(0, 1, 1).narrow(2, 0, 2)).toExponential(2),
    "- kernels differ there; those outputs are never used)",
  );
}
// autograd on the GPU against the CPU
const x1 = a.detach().requiresGrad_(),
  w1 = b.detach().requiresGrad_();
const x2 = a.to("cuda").detach().requiresGrad_(),
  w2 = b.to("cuda").detach().requiresGrad_();
const target = torch.randint(0, 32, [64]);
torch.crossEntropy(x1.matmul(w1).gelu("tanh"), target).backward();
torch.crossEntropy(x2.matmul(w2).gelu("tanh"), target.cuda()).backward();
check("backward: grad of x", maxDiff(x1.grad, x2.grad), 1e-10);
check("backward: grad of w", maxDiff(w1.grad, w2.grad), 1e-10);
const o1 = new torch.AdamW([w1], { lr: 1e-2, weightDecay: 0.1 });
o1.step();
const o2 = new torch.AdamW([w2], { lr: 1e-2, weightDecay: 0.1 });
o2.step();
check("AdamW step", maxDiff(w1, w2), 1e-12);
check("clipGradNorm", Math.abs(torch.clipGradNorm([x1], 0.5) - torch.clipGradNorm([x2], 0.5)), 1e-10);
// timings on the GPU, beside PyTorch on the same GPU
const time = (fn, n) => {
  fn();
  torch.tidy(() => fn().sum().item());
  const t = process.hrtime.bigint();
  let last;
  for (let i = 0; i < n; i++) {
    last?.dispose();
    last = fn();
  }
  torch.tidy(() => last.sum().item());
  last.dispose();
  return Number(process.hrtime.bigint() - t) / 1e9 / n;
};
const out = {};
for (const [dtype, n] of [
  ["float32", 4096],
  ["bfloat16", 8192],
]) {
  const m1 = torch.randn([n, n], { dtype: "float32" }).to({ dtype, device: "cuda" }),
    m2 = torch.randn([n, n], { dtype: "float32" }).to({ dtype, device: "cuda" });
  const s = time(() => m1.matmul(m2), 50);
  out[`matmul_${dtype}_${n}`] = (2 * n ** 3) / s / 1e12;
  m1.dispose();
  m2.dispose();
}
const t1 = torch.randn([4]).cuda(),
  t2 = torch.randn([4]).cuda();
out.tiny_add_us = time(() => t1.add(t2), 20000) * 1e6;
log("omni-dpo on GPU:", JSON.stringify(out));
const py = `
import torch, time, json
def tm(fn, n):
    fn(); torch.cuda.synchronize(); t=time.perf_counter()
    for _ in range(n): r = fn()
    torch.cuda.synchronize(); return (time.perf_counter()-t)/n
out = {}
for dt, n in [(torch.float32, 4096), (torch.bfloat16, 8192)]:
    a = torch.randn(n, n, device='cuda').to(dt); b = torch.randn(n, n, device='cuda').to(dt)
    out[f"matmul_{str(dt).split('.')[1]}_{n}"] = 2*n**3/tm(lambda: a@b, 50)/1e12
s = torch.randn(4, device='cuda'); t = torch.randn(4, device='cuda')
out['tiny_add_us'] = tm(lambda: s+t, 20000)*1e6
print(json.dumps(out))`;
log("PyTorch on GPU: ", execFileSync("python3", ["-c", py], { encoding: "utf8" }).trim());
log(failures ? `${failures} CHECKS FAILED` : "all GPU checks passed");
