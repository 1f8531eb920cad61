// Modules: named parameters and submodules, in registration order, so a model's parameter
// names are exactly its checkpoint's tensor names ("model.layers.0.self_attn.q_proj.weight").
import * as torch from "../torch/index.js";

export class Module {
  readonly #params = new Map<string, torch.Tensor>();
  readonly #children = new Map<string, Module>();
  training = true;

  /** Registers a parameter under `name` (kept alive: tidy scopes never free it). */
  protected param(name: string, t: torch.Tensor): torch.Tensor {
    t.keep();
    if (!t.requiresGrad && (t.dtype === "float32" || t.dtype === "float64" || t.dtype === "bfloat16" || t.dtype === "float16")) t.requiresGrad_(true);
    this.#params.set(name, t);
    return t;
  }

  /** The parameter registered as `name` (always the current tensor, also after loading). */
  protected get(name: string): torch.Tensor {
    const p = this.#params.get(name);
    if (!p) throw new Error(`${this.constructor.name} has no parameter ${name}`);
    return p;
  }

  protected has(name: string): boolean { return this.#params.has(name); }

  protected module<M extends Module>(name: string, m: M): M {
    this.#children.set(name, m);
    return m;
  }

  /** Parameters with their dotted names, depth-first in registration order. */
  namedParameters(prefix = ""): [string, torch.Tensor][] {
    const out: [string, torch.Tensor][] = [];
    for (const [n, p] of this.#params) out.push([prefix + n, p]);
    for (const [n, m] of this.#children) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): torch.Tensor[] { return this.namedParameters().map(([, p]) => p); }

  /** Replaces a registered parameter's tensor in place of the old one (loading weights). */
  setParameter(dottedName: string, value: torch.Tensor): void {
    this.#setParameter(dottedName, value, dottedName);
  }

  // `fullName` is the name as the caller gave it, so errors from a submodule name the whole path.
  #setParameter(dottedName: string, value: torch.Tensor, fullName: string): void {
    const dot = dottedName.indexOf(".");
    if (dot >= 0) {
      const child = this.#children.get(dottedName.slice(0, dot));
      if (child) { child.#setParameter(dottedName.slice(dot + 1), value, fullName); return; }
    }
    const old = this.#params.get(dottedName);
    if (!old) throw new Error(`no parameter named ${fullName}`);
    if (old.shape.join() !== value.shape.join()) {
      throw new Error(`parameter ${fullName}: checkpoint has shape [${value.shape}], model expects [${old.shape}]`);
    }
    const requiresGrad = old.requiresGrad;
    if (old !== value) old.dispose();
    value.keep();
    if (requiresGrad && !value.requiresGrad) value.requiresGrad_(true);
    this.#params.set(dottedName, value);
  }

  /** The device of the parameters ("cpu", "cuda:0"...). */
  get device(): string {
    const first = this.namedParameters()[0];
    return first ? first[1].device : "cpu";
  }

  /** Moves every parameter to `device` (PyTorch's module.to(device)). */
  to(device: torch.Device): this {
    for (const [name, p] of this.namedParameters()) {
      if (p.device === device || (device === "cuda" && p.device.startsWith("cuda"))) continue;
      this.setParameter(name, torch.noGrad(() => p.detach().to({ device })));
    }
    return this;
  }

  train(mode = true): this {
    this.training = mode;
    for (const m of this.#children.values()) m.train(mode);
    return this;
  }
  eval(): this { return this.train(false); }

  /** Freezes (or unfreezes) every parameter. */
  requiresGrad_(value: boolean): this {
    for (const p of this.parameters()) p.requiresGrad_(value);
    return this;
  }

  zeroGrad(): void { for (const p of this.parameters()) p.zeroGrad(); }

  numParameters(): number { return this.parameters().reduce((n, p) => n + p.numel(), 0); }

  /** Frees every parameter. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
  }
}

/** A list of modules registered as "0", "1", ... (PyTorch's nn.ModuleList). */
export class ModuleList<M extends Module> extends Module {
  readonly items: M[];
  constructor(items: M[]) {
    super();
    this.items = items;
    items.forEach((m, i) => this.module(String(i), m));
  }
}
