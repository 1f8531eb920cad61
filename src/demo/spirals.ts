// The interim demo, until the preference-training demo exists: a small MLP learns to separate
// two interleaved spirals with AdamW, a cosine schedule with warmup and gradient clipping.
// It exercises the whole engine path a training run takes: tensors, autograd, tidy scopes,
// the optimizer and the schedule.
import * as torch from "../torch/index.js";

export interface SpiralsOptions { steps?: number; seed?: number; hidden?: number; onStep?: (step: number, loss: number, lr: number) => void }
export interface SpiralsResult { initialLoss: number; finalLoss: number; trainAccuracy: number; testAccuracy: number; steps: number; seconds: number }

function spirals(n: number, noise: number): { x: torch.Tensor; y: torch.Tensor } {
  return torch.tidy(() => {
    const t = torch.rand([n]).mul(3 * Math.PI).add(0.5);
    const label = torch.randint(0, 2, [n]);
    const sign = label.mul(2).sub(1).to("float32");  // ±1 flips one spiral onto the other
    const xs = t.mul(t.cos()).mul(sign).div(10).add(torch.randn([n]).mul(noise));
    const ys = t.mul(t.sin()).mul(sign).div(10).add(torch.randn([n]).mul(noise));
    return { x: torch.stack([xs, ys], 1), y: label };
  });
}

export function trainSpirals(options: SpiralsOptions = {}): SpiralsResult {
  const steps = options.steps ?? 1500;
  const hidden = options.hidden ?? 64;
  torch.manualSeed(options.seed ?? 0);
  const start = Date.now();
  const train = spirals(2048, 0.02);
  const test = spirals(1024, 0.02);
  const init = (fanIn: number, shape: number[]) => torch.randn(shape).mul(Math.sqrt(2 / fanIn)).requiresGrad_();
  const params = [init(2, [hidden, 2]), torch.zeros([hidden], { requiresGrad: true }),
    init(hidden, [hidden, hidden]), torch.zeros([hidden], { requiresGrad: true }),
    init(hidden, [2, hidden]), torch.zeros([2], { requiresGrad: true })];
  const [w1, b1, w2, b2, w3, b3] = params;
  const forward = (x: torch.Tensor) =>
    torch.linear(torch.linear(torch.linear(x, w1, b1).relu(), w2, b2).relu(), w3, b3);

  const optimizer = new torch.AdamW(params, { lr: 1e-2, weightDecay: 1e-4 });
  const scheduler = new torch.LRScheduler(optimizer, { type: "cosine", totalSteps: steps, warmupRatio: 0.05 });
  let initialLoss = NaN;
  let loss = NaN;
  for (let step = 0; step < steps; step++) {
    loss = torch.tidy(() => {
      const index = torch.randint(0, 2048, [128]);
      const l = torch.crossEntropy(forward(train.x.indexSelect(0, index)), train.y.indexSelect(0, index));
      l.backward();
      return l.item();
    });
    if (step === 0) initialLoss = loss;
    torch.clipGradNorm(params, 1.0);
    optimizer.step();
    optimizer.zeroGrad();
    scheduler.step();
    options.onStep?.(step + 1, loss, scheduler.getLastLr()[0]);
  }
  const accuracy = (d: { x: torch.Tensor; y: torch.Tensor }) =>
    torch.noGrad(() => torch.tidy(() => forward(d.x).argmax(1).eq(d.y).to("float32").mean().item()));
  const result = {
    initialLoss, finalLoss: loss, trainAccuracy: accuracy(train), testAccuracy: accuracy(test),
    steps, seconds: (Date.now() - start) / 1000,
  };
  optimizer.dispose();
  torch.dispose([params, train, test]);
  return result;
}
