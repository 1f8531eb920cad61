// Modules: named parameters, buffers and submodules, in registration order, so a model's
// parameter names are exactly its checkpoint's tensor names ("model.layers.0.self_attn.q_proj.weight").
import * as torch from "../torch/index.js";

/** A module's state by dotted name: parameters and persistent buffers (PyTorch's state_dict). */
export type StateDict = Map<string, torch.Tensor>;

/** What loadStateDict() left unmatched (with `strict: false`; strict loading throws instead). */
export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** What `to()` takes: a device, a dtype, or both. */
export type ModuleTarget = torch.Device | torch.DType | { device?: torch.Device; dtype?: torch.DType };

function isFloatingDType(dtype: torch.DType): boolean {
  return dtype === "float32" || dtype === "float64" || dtype === "bfloat16" || dtype === "float16";
}

export class Module {
  readonly #params = new Map<string, torch.Tensor>();
  readonly #buffers = new Map<string, { tensor: torch.Tensor; persistent: boolean }>();
  readonly #children = new Map<string, Module>();
  training = true;

  // Names are one path segment, unique across parameters, buffers and submodules, so a
  // dotted name always resolves to exactly one tensor.
  #checkName(kind: string, name: string): void {
    if (name === "" || name.includes("."))
      throw new Error(`${this.constructor.name}: ${kind} name '${name}' must be non-empty and contain no '.'`);
    if (this.#params.has(name) || this.#buffers.has(name) || this.#children.has(name)) {
      throw new Error(`${this.constructor.name}: '${name}' is already registered`);
    }
  }

  /** Registers a parameter under `name` (kept alive: tidy scopes never free it). */
  protected param(name: string, t: torch.Tensor): torch.Tensor {
    this.#checkName("parameter", name);
    t.keep();
    if (!t.requiresGrad && isFloatingDType(t.dtype)) t.requiresGrad_(true);
    this.#params.set(name, t);
    return t;
  }

  /** The parameter registered as `name` (always the current tensor, also after loading). */
  protected get(name: string): torch.Tensor {
    const p = this.#params.get(name);
    if (!p) throw new Error(`${this.constructor.name} has no parameter ${name}`);
    return p;
  }

  protected has(name: string): boolean {
    return this.#params.has(name);
  }

  /**
   * Registers a buffer: state that is not trained (no gradient, no optimizer) but moves with
   * `to()` and, when `persistent` (the default), is saved and loaded by stateDict() and
   * loadStateDict(). Kept alive as parameters are.
   */
  registerBuffer(name: string, t: torch.Tensor, options: { persistent?: boolean } = {}): torch.Tensor {
    this.#checkName("buffer", name);
    if (t.requiresGrad)
      throw new Error(
        `${this.constructor.name}: buffer '${name}' requires grad; register it as a parameter, or detach() it`,
      );
    t.keep();
    this.#buffers.set(name, { tensor: t, persistent: options.persistent ?? true });
    return t;
  }

  /** The buffer registered as `name`. */
  protected buffer(name: string): torch.Tensor {
    const b = this.#buffers.get(name);
    if (!b) throw new Error(`${this.constructor.name} has no buffer ${name}`);
    return b.tensor;
  }

  protected module<M extends Module>(name: string, m: M): M {
    this.#checkName("submodule", name);
    this.#children.set(name, m);
    return m;
  }

  /**
   * Adds a submodule from outside the class (PyTorch's register_module), so its parameters
   * are named under this module's: how adapters (src/nn/lora.ts) attach to existing layers.
   */
  registerModule<M extends Module>(name: string, m: M): M {
    return this.module(name, m);
  }

  /** Removes a submodule added by registerModule (its tensors stay alive: dispose them yourself). */
  removeModule(name: string): void {
    if (!this.#children.delete(name)) throw new Error(`${this.constructor.name} has no submodule ${name}`);
  }

  /** Parameters with their dotted names, depth-first in registration order. */
  namedParameters(prefix = ""): [string, torch.Tensor][] {
    const out: [string, torch.Tensor][] = [];
    for (const [n, p] of this.#params) out.push([prefix + n, p]);
    for (const [n, m] of this.#children) out.push(...m.namedParameters(`${prefix}${n}.`));
    return out;
  }

  parameters(): torch.Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** This module ("" or `prefix` without its dot) and every submodule, with dotted names, depth-first (PyTorch's named_modules). */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix.endsWith(".") ? prefix.slice(0, -1) : prefix, this]];
    for (const [n, m] of this.#children) out.push(...m.namedModules(`${prefix}${n}.`));
    return out;
  }

  /** Buffers (persistent or not) with their dotted names, depth-first in registration order. */
  namedBuffers(prefix = ""): [string, torch.Tensor][] {
    const out: [string, torch.Tensor][] = [];
    for (const [n, b] of this.#buffers) out.push([prefix + n, b.tensor]);
    for (const [n, m] of this.#children) out.push(...m.namedBuffers(`${prefix}${n}.`));
    return out;
  }

  /**
   * Parameters and persistent buffers by dotted name, in PyTorch's order (each module's own
   * parameters, then its buffers, then its submodules'). The values are the live tensors:
   * do not dispose them; clone() them for a snapshot.
   */
  stateDict(prefix = ""): StateDict {
    const out: StateDict = new Map();
    this.#collectState(prefix, out);
    return out;
  }

  #collectState(prefix: string, out: StateDict): void {
    for (const [n, p] of this.#params) out.set(prefix + n, p);
    for (const [n, b] of this.#buffers) if (b.persistent) out.set(prefix + n, b.tensor);
    for (const [n, m] of this.#children) m.#collectState(`${prefix}${n}.`, out);
  }

  /**
   * Copies a state dict's tensors into this module's parameters and persistent buffers, in
   * place (the tensors keep their identity, so an optimizer over them stays valid; values are
   * cast to each tensor's dtype and device). Checked before anything is copied: with `strict`
   * (the default), missing and unexpected keys are an error; a shape that differs always is.
   * The one error names every offending key.
   */
  loadStateDict(
    dict: StateDict | Record<string, torch.Tensor>,
    options: { strict?: boolean } = {},
  ): LoadStateDictResult {
    const strict = options.strict ?? true;
    const given = dict instanceof Map ? dict : new Map(Object.entries(dict));
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !given.has(k));
    const unexpectedKeys = [...given.keys()].filter((k) => !own.has(k));
    const problems: string[] = [];
    if (strict && missingKeys.length > 0) problems.push(`missing keys: ${missingKeys.join(", ")}`);
    if (strict && unexpectedKeys.length > 0) problems.push(`unexpected keys: ${unexpectedKeys.join(", ")}`);
    const pairs: [torch.Tensor, torch.Tensor][] = [];
    for (const [key, value] of given) {
      const target = own.get(key);
      if (!target) continue;
      if (!(value instanceof torch.Tensor)) {
        problems.push(`${key} is not a tensor`);
        continue;
      }
      if (value.isDisposed) {
        problems.push(`${key} has been disposed`);
        continue;
      }
      if (value.shape.join() !== target.shape.join()) {
        problems.push(`${key} has shape [${value.shape.join(", ")}], the module's is [${target.shape.join(", ")}]`);
        continue;
      }
      pairs.push([target, value]);
    }
    if (problems.length > 0) throw new Error(`${this.constructor.name}.loadStateDict: ${problems.join("; ")}`);
    torch.noGrad(() => {
      for (const [target, value] of pairs) target.copy_(value);
    });
    return { missingKeys, unexpectedKeys };
  }

  /** Replaces a registered parameter's tensor in place of the old one (loading weights). */
  setParameter(dottedName: string, value: torch.Tensor): void {
    this.#setParameter(dottedName, value, dottedName);
  }

  // `fullName` is the name as the caller gave it, so errors from a submodule name the whole path.
  #setParameter(dottedName: string, value: torch.Tensor, fullName: string): void {
    const dot = dottedName.indexOf(".");
    if (dot >= 0) {
      const child = this.#children.get(dottedName.slice(0, dot));
      if (child) {
        child.#setParameter(dottedName.slice(dot + 1), value, fullName);
        return;
      }
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
  get device(): torch.Device {
    const first = this.namedParameters()[0];
    return first ? first[1].device : "cpu";
  }

  /**
   * Moves parameters and buffers to a device and/or casts the floating-point ones to a dtype
   * (PyTorch's module.to()). The tensors keep their identity: the objects parameters()
   * returned before now hold the moved data, so an optimizer made earlier steps them. Their
   * gradients move with them. (Optimizer state made before the move stays where it was, as in
   * PyTorch: make the optimizer after `to()`, or before its first step.)
   */
  to(target: ModuleTarget): this {
    const spec =
      typeof target === "string" ? (torch.isDevice(target) ? { device: target } : { dtype: target }) : target;
    const moves = (t: torch.Tensor): { device?: torch.Device; dtype?: torch.DType } | null => {
      // "cuda" is the current CUDA device, which a tensor on "cuda:0" is already on.
      const device =
        spec.device === undefined || t.device === spec.device || (spec.device === "cuda" && t.device.startsWith("cuda"))
          ? undefined
          : spec.device;
      const dtype =
        spec.dtype === undefined || t.dtype === spec.dtype || !isFloatingDType(t.dtype) ? undefined : spec.dtype;
      return device === undefined && dtype === undefined ? null : { device, dtype };
    };
    torch.noGrad(() => {
      for (const t of [...this.parameters(), ...this.namedBuffers().map(([, b]) => b)]) {
        const change = moves(t);
        if (!change) continue;
        torch.tidy(() => {
          const grad = t.grad;
          t.setData(t.detach().to(change));
          if (grad) t.grad = grad.to(change); // the gradient slot keeps it past this scope
        });
      }
    });
    return this;
  }

  train(mode = true): this {
    this.training = mode;
    for (const m of this.#children.values()) m.train(mode);
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  /** Freezes (or unfreezes) every parameter. */
  requiresGrad_(value: boolean): this {
    for (const p of this.parameters()) p.requiresGrad_(value);
    return this;
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.numel(), 0);
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const p of this.parameters()) p.dispose();
    for (const [, b] of this.namedBuffers()) b.dispose();
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
