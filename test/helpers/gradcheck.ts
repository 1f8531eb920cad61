// Finite-difference gradient checks in float64: the independent reference for every
// differentiable op and loss.
import { torch, type Tensor } from "../../src/index.js";

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
}

/**
 * Compares autograd's gradients of sum(fn(inputs) * w) (w a fixed random weight, so every
 * output element matters) with central differences. `inputs` are float64 values; each becomes
 * a leaf tensor of the given shape. Throws with the worst element when they disagree.
 */
export function gradcheck(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: { values: number[]; shape: number[] }[],
  options: GradcheckOptions = {},
): void {
  const eps = options.eps ?? 1e-6;
  const atol = options.atol ?? 1e-5;
  const rtol = options.rtol ?? 1e-4;
  torch.tidy(() => {
    const leaves = inputs.map((x) =>
      torch.tensor(x.values, { dtype: "float64", shape: x.shape }).reshape(x.shape).detach().requiresGrad_(),
    );
    const out = fn(...leaves);
    const weight = torch
      .tensor(out.shape.length === 0 ? [0.7] : Array.from({ length: out.numel() }, (_, i) => Math.sin(i + 1) + 1.5), {
        dtype: "float64",
      })
      .reshape(out.shape);
    out.mul(weight).sum().backward();
    const scalar = (vals: number[][]) =>
      torch.tidy(() =>
        torch.noGrad(() => {
          const xs = vals.map((v, i) => torch.tensor(v, { dtype: "float64" }).reshape(inputs[i].shape));
          return fn(...xs)
            .mul(weight)
            .sum()
            .item();
        }),
      );
    inputs.forEach((input, i) => {
      const analytic = leaves[i].grad
        ? (leaves[i].grad!.data() as Float64Array)
        : new Float64Array(input.values.length);
      for (let j = 0; j < input.values.length; j++) {
        const plus = inputs.map((x) => [...x.values]);
        const minus = inputs.map((x) => [...x.values]);
        plus[i][j] += eps;
        minus[i][j] -= eps;
        const numeric = (scalar(plus) - scalar(minus)) / (2 * eps);
        const diff = Math.abs(numeric - analytic[j]);
        if (!(diff <= atol + rtol * Math.abs(numeric))) {
          throw new Error(
            `gradcheck: input ${i} element ${j}: autograd ${analytic[j]}, finite difference ${numeric} (|diff| ${diff})`,
          );
        }
      }
    });
  });
}

/** Deterministic pseudo-random values in [lo, hi), for reproducible test inputs. */
export function values(n: number, seed = 1, lo = -1, hi = 1): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return lo + (hi - lo) * (s / 2 ** 32);
  });
}
