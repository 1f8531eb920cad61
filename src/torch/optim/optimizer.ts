// Optimizers with PyTorch's update rules and state layout: AdamW (decoupled weight decay) and
// SGD with momentum. Updates run as in-place LibTorch ops under noGrad.
import { Tensor } from "../tensor.js";
import { noGrad } from "../runtime.js";
import { zerosLike } from "../creation.js";
import { tidy } from "../scope.js";

/** Hyperparameters every group carries; each optimizer adds its own. */
export interface GroupOptions {
  lr: number;
  weightDecay: number;
}
export type ParamGroup<O> = O & { params: Tensor[]; initialLr: number };
export type ParamGroupSpec<O> = Partial<O> & { params: Tensor[] };

/** A checkpointable snapshot: per-parameter state (by position across groups) and group hyperparameters. */
export interface OptimizerStateDict {
  state: Record<number, Record<string, Tensor | number>>;
  paramGroups: Record<string, unknown>[];
}

export abstract class Optimizer<O extends GroupOptions> {
  readonly paramGroups: ParamGroup<O>[];
  protected readonly state = new Map<Tensor, Record<string, Tensor | number>>();

  constructor(params: Tensor[] | ParamGroupSpec<O>[], defaults: O) {
    const specs: ParamGroupSpec<O>[] =
      params.length > 0 && params[0] instanceof Tensor
        ? [{ params: params as Tensor[] } as ParamGroupSpec<O>]
        : (params as ParamGroupSpec<O>[]);
    const seen = new Set<Tensor>();
    this.paramGroups = specs.map((spec, g) => {
      for (const p of spec.params) {
        if (seen.has(p)) throw new Error(`optimizer: a parameter appears in more than one group (group ${g})`);
        seen.add(p);
        if (!p.requiresGrad) throw new Error(`optimizer: parameter ${p} in group ${g} does not require grad`);
      }
      const group = { ...defaults, ...spec } as ParamGroup<O>;
      if (!(group.lr >= 0)) throw new Error(`optimizer: learning rate must be >= 0, got ${group.lr}`);
      group.initialLr = group.lr;
      return group;
    });
  }

  /** Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const group of this.paramGroups) for (const p of group.params) p.zeroGrad();
  }

  /** Applies one update from the accumulated gradients. Parameters without one are skipped. */
  step(): void {
    noGrad(() => {
      for (const group of this.paramGroups) {
        for (const p of group.params) {
          tidy(() => {
            const grad = p.grad;
            if (grad) this.update(p, grad, group);
          });
        }
      }
    });
  }

  protected abstract update(param: Tensor, grad: Tensor, group: ParamGroup<O>): void;

  /** The state in PyTorch's layout; tensors are the live state (copy them to keep a snapshot). */
  stateDict(): OptimizerStateDict {
    const state: OptimizerStateDict["state"] = {};
    let index = 0;
    const paramGroups = this.paramGroups.map((group) => {
      const { params, ...hyper } = group;
      const indices = params.map((p) => {
        const s = this.state.get(p);
        if (s) state[index] = { ...s };
        return index++;
      });
      return { ...structuredClone(hyper), params: indices }; // no arrays (betas) shared with the live group
    });
    return { state, paramGroups };
  }

  /**
   * Restores a stateDict() taken from an optimizer over parameters of the same shapes and order.
   * Everything is checked and copied before anything changes, so a failed load leaves this
   * optimizer as it was, and loading this optimizer's own stateDict() works.
   */
  loadStateDict(dict: OptimizerStateDict): void {
    if (dict.paramGroups.length !== this.paramGroups.length) {
      throw new Error(
        `loadStateDict: ${dict.paramGroups.length} parameter groups saved, optimizer has ${this.paramGroups.length}`,
      );
    }
    const params = this.paramGroups.flatMap((g) => g.params);
    const hypers = this.paramGroups.map((group, g) => {
      const saved = dict.paramGroups[g];
      const count = (saved.params as number[]).length;
      if (count !== group.params.length)
        throw new Error(`loadStateDict: group ${g} saved ${count} parameters, has ${group.params.length}`);
      const { params: _ignored, ...hyper } = saved;
      return hyper;
    });
    for (const [key, entry] of Object.entries(dict.state)) {
      const p = params[Number(key)];
      if (!p) throw new Error(`loadStateDict: state for parameter ${key}, which does not exist`);
      for (const [name, v] of Object.entries(entry)) {
        if (v instanceof Tensor && v.shape.join() !== p.shape.join()) {
          throw new Error(
            `loadStateDict: ${name} of parameter ${key} has shape [${v.shape}], parameter has [${p.shape}]`,
          );
        }
      }
    }
    const loaded = new Map<Tensor, Record<string, Tensor | number>>();
    for (const [key, entry] of Object.entries(dict.state)) {
      const copy: Record<string, Tensor | number> = {};
      const p = params[Number(key)];
      // A copy on the parameter's device and in its dtype (a checkpoint is read on the CPU).
      for (const [name, v] of Object.entries(entry))
        copy[name] =
          v instanceof Tensor ? tidy(() => v.detach().to({ device: p.device, dtype: p.dtype }).clone()).keep() : v;
      loaded.set(p, copy);
    }
    this.paramGroups.forEach((group, g) => Object.assign(group, hypers[g]));
    this.dispose();
    for (const [p, s] of loaded) this.state.set(p, s);
  }

  /** Frees the optimizer's state tensors. */
  dispose(): void {
    for (const s of this.state.values()) for (const v of Object.values(s)) if (v instanceof Tensor) v.dispose();
    this.state.clear();
  }
}

export interface AdamWOptions extends GroupOptions {
  betas: [number, number];
  eps: number;
}

/**
 * AdamW (Loshchilov & Hutter), as torch.optim.AdamW: the parameter first decays by
 * lr * weightDecay, then takes the bias-corrected Adam step. Defaults are PyTorch's.
 */
export class AdamW extends Optimizer<AdamWOptions> {
  constructor(params: Tensor[] | ParamGroupSpec<AdamWOptions>[], options: Partial<AdamWOptions> = {}) {
    super(params, { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, ...options });
  }

  protected update(p: Tensor, grad: Tensor, group: ParamGroup<AdamWOptions>): void {
    const [beta1, beta2] = group.betas;
    let s = this.state.get(p);
    if (!s) {
      s = { step: 0, expAvg: zerosLike(p).keep(), expAvgSq: zerosLike(p).keep() };
      this.state.set(p, s);
    }
    const step = (s.step as number) + 1;
    s.step = step;
    const expAvg = s.expAvg as Tensor;
    const expAvgSq = s.expAvgSq as Tensor;
    if (group.weightDecay !== 0) p.mul_(1 - group.lr * group.weightDecay);
    expAvg.lerp_(grad, 1 - beta1);
    expAvgSq.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
    const biasCorrection1 = 1 - beta1 ** step;
    const biasCorrection2 = 1 - beta2 ** step;
    const denom = expAvgSq.sqrt().div_(Math.sqrt(biasCorrection2)).add_(group.eps);
    p.addcdiv_(expAvg, denom, -group.lr / biasCorrection1);
  }
}

export interface SGDOptions extends GroupOptions {
  momentum: number;
  dampening: number;
  nesterov: boolean;
}

/** SGD with optional momentum, dampening, Nesterov and (L2) weight decay, as torch.optim.SGD. */
export class SGD extends Optimizer<SGDOptions> {
  constructor(params: Tensor[] | ParamGroupSpec<SGDOptions>[], options: Partial<SGDOptions> & { lr: number }) {
    super(params, { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, ...options });
    for (const g of this.paramGroups) {
      if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0))
        throw new Error("SGD: Nesterov momentum needs momentum > 0 and dampening 0");
    }
  }

  protected update(p: Tensor, grad: Tensor, group: ParamGroup<SGDOptions>): void {
    let d = group.weightDecay !== 0 ? grad.add(p, group.weightDecay) : grad;
    if (group.momentum !== 0) {
      let s = this.state.get(p);
      if (!s) {
        s = { momentumBuffer: d.clone().keep() };
        this.state.set(p, s);
      } else {
        (s.momentumBuffer as Tensor).mul_(group.momentum).add_(d, 1 - group.dampening);
      }
      const buf = s.momentumBuffer as Tensor;
      d = group.nesterov ? d.add(buf, group.momentum) : buf;
    }
    p.add_(d, -group.lr);
  }
}

/**
 * Scales gradients in place so their joint norm is at most `maxNorm`, as
 * torch.nn.utils.clip_grad_norm_. Returns the norm before clipping.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number, normType = 2): number {
  return noGrad(() =>
    tidy(() => {
      const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null);
      if (grads.length === 0) return 0;
      let total: Tensor;
      if (normType === Infinity) {
        total = grads.map((g) => g.abs().max()).reduce((a, b) => a.maximum(b));
      } else {
        const norms = grads.map((g) => g.norm(normType));
        total =
          norms.length === 1
            ? norms[0]
            : norms
                .slice(1)
                .reduce((acc, n) => acc.add(n.pow(normType)), norms[0].pow(normType))
                .pow(1 / normType);
      }
      const totalNorm = total.item();
      // As PyTorch: scale by min(maxNorm / (norm + 1e-6), 1); a NaN or infinite norm poisons the
      // gradients the same way it does there, so a diverging run is not silently clipped.
      const coef = Math.min(maxNorm / (totalNorm + 1e-6), 1);
      if (!(coef >= 1)) for (const g of grads) g.mul_(Number.isNaN(totalNorm) ? NaN : coef);
      return totalNorm;
    }),
  );
}
