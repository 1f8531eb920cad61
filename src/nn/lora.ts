// LoRA adapters (Hu et al., 2021) as PEFT makes them: each targeted Linear (or GPT-2 Conv1D)
// keeps its frozen weight W and gains lora_A [r, in] and lora_B [out, r], float32 and trainable,
// so that y = x W^T + b + scaling · B A dropout(x), scaling = alpha / r (rsLoRA: alpha / sqrt(r)).
// A starts kaiming-uniform (a = sqrt(5)), B at zero, so a fresh adapter leaves the model as it
// was. The adapters are registered under the layer they wrap, so their parameter names are
// PEFT's without its "base_model.model." prefix and adapter name
// ("model.layers.0.self_attn.q_proj.lora_A.weight"). Layers are found by walking the module
// tree and matching names as PEFT does, so no architecture needs its own code.
import * as torch from "../torch/index.js";
import { Conv1D, Linear } from "./layers.js";
import type { Module } from "./module.js";

/** The adapter's hyperparameters (PEFT's LoraConfig fields, camelCased). */
export interface LoraSettings {
  /** Rank r of B A (a positive integer). */
  r: number;
  /** alpha: the update is scaled by alpha / r (or alpha / sqrt(r) with useRslora). */
  alpha: number;
  /** Dropout probability on the adapter's input, in training mode only. */
  dropout: number;
  /**
   * Which layers get adapters: a list of names (a layer matches when its full dotted name
   * equals one or ends with "." + one), "all-linear" (every Linear and Conv1D but the output
   * head), or another string, a regular expression the full name must match entirely.
   */
  targetModules: readonly string[] | string;
  /** Modules trained in full beside the adapters (e.g. lm_head), saved whole. */
  modulesToSave: readonly string[];
  useRslora: boolean;
}

/** What errors call each setting (the recipe's lora_r, or adapter_config.json's r). */
export type SettingNames = Record<keyof LoraSettings, string>;

export const PEFT_NAMES: SettingNames = {
  r: "r",
  alpha: "lora_alpha",
  dropout: "lora_dropout",
  targetModules: "target_modules",
  modulesToSave: "modules_to_save",
  useRslora: "use_rslora",
};

/** PEFT's scaling of B A. */
export function loraScaling(s: Pick<LoraSettings, "r" | "alpha" | "useRslora">): number {
  return s.useRslora ? s.alpha / Math.sqrt(s.r) : s.alpha / s.r;
}

/** Checks the settings' values; errors start with `where` and name the setting as `names` does. */
export function checkLoraSettings(s: LoraSettings, where: string, names: SettingNames = PEFT_NAMES): void {
  const bad = (key: keyof LoraSettings, what: string) =>
    new Error(`${where}: ${names[key]} ${what}, got ${JSON.stringify(s[key])}`);
  if (!Number.isInteger(s.r) || s.r <= 0) throw bad("r", "must be a positive integer");
  if (typeof s.alpha !== "number" || !Number.isFinite(s.alpha)) throw bad("alpha", "must be a number");
  if (typeof s.dropout !== "number" || !(s.dropout >= 0 && s.dropout < 1)) throw bad("dropout", "must lie in [0, 1)");
  const t = s.targetModules;
  if (
    typeof t === "string"
      ? t === ""
      : !Array.isArray(t) || t.length === 0 || !t.every((x) => typeof x === "string" && x !== "")
  ) {
    throw bad("targetModules", 'must be a non-empty list of module names, "all-linear", or a regular expression');
  }
  if (!Array.isArray(s.modulesToSave) || !s.modulesToSave.every((x) => typeof x === "string" && x !== ""))
    throw bad("modulesToSave", "must be a list of module names");
  if (typeof s.useRslora !== "boolean") throw bad("useRslora", "must be true or false");
}

/** One wrapped layer: its full name, the layer, and its two adapter matrices. */
export interface LoraLayer {
  readonly name: string;
  readonly layer: Linear | Conv1D;
  /** [r, in] */
  readonly a: Linear;
  /** [out, r] */
  readonly b: Linear;
}

/** A module trained in full (modules_to_save): its parameters, and a frozen copy of their starting values for the adapter-free model. */
interface SavedModule {
  readonly name: string;
  readonly params: [string, torch.Tensor][];
  readonly original: torch.Tensor[];
}

const attached = new WeakMap<Module, LoraModel>();

/** The adapters attached to `model`, or null for a plain model. */
export function loraOf(model: Module): LoraModel | null {
  return attached.get(model) ?? null;
}

/** PEFT's rule: a list entry matches a name equal to it or ending in "." + it; a string is a regex the whole name must match. */
function matcher(targets: readonly string[] | string): (name: string) => string | null {
  if (typeof targets === "string") {
    const re = new RegExp(`^(?:${targets})$`);
    return (name) => (re.test(name) ? targets : null);
  }
  return (name) => targets.find((t) => name === t || name.endsWith(`.${t}`)) ?? null;
}

const isAdaptable = (m: Module): m is Linear | Conv1D => m instanceof Linear || m instanceof Conv1D;
const leafName = (name: string) => name.slice(name.lastIndexOf(".") + 1);

/** LoRA adapters on one model: made by attachLora, found again with loraOf. */
export class LoraModel {
  readonly layers: LoraLayer[] = [];
  readonly scaling: number;
  /** false: every adapter is skipped and modules_to_save hold their starting values (the reference model). */
  #enabled = true;
  readonly #saved: SavedModule[] = [];

  private constructor(
    readonly model: Module,
    readonly settings: LoraSettings,
  ) {
    this.scaling = loraScaling(settings);
  }

  /**
   * Wraps the targeted layers of `model` with fresh adapters (A kaiming-uniform, B zero, on
   * the layer's device, float32), freezes every base parameter and makes the adapters (and
   * modules_to_save) the only trainable ones. A target that matches no Linear or Conv1D, or a
   * model that already has adapters, is an error naming the setting as `names` does.
   */
  static attach(model: Module, settings: LoraSettings, where = "LoRA", names: SettingNames = PEFT_NAMES): LoraModel {
    checkLoraSettings(settings, where, names);
    if (attached.has(model)) throw new Error(`${where}: the model already has LoRA adapters`);
    const modules = model.namedModules();
    const adaptable = modules.filter(([n, m]) => n !== "" && isAdaptable(m));
    let chosen: [string, Linear | Conv1D][];
    let resolved = settings;
    if (settings.targetModules === "all-linear") {
      // PEFT's shorthand: every linear layer but the output head.
      chosen = adaptable.filter(([n]) => leafName(n) !== "lm_head") as [string, Linear | Conv1D][];
      resolved = { ...settings, targetModules: [...new Set(chosen.map(([n]) => leafName(n)))].sort() };
    } else {
      const match = matcher(settings.targetModules);
      const used = new Set<string>();
      chosen = [];
      for (const [n, m] of modules) {
        const target = n === "" ? null : match(n);
        if (target === null) continue;
        used.add(target);
        // A list entry may also name containers ("self_attn"); PEFT refuses those, and so do we.
        if (!isAdaptable(m)) {
          throw new Error(
            `${where}: ${names.targetModules} '${target}' matches ${n}, a ${m.constructor.name}; only Linear and Conv1D layers take LoRA adapters`,
          );
        }
        chosen.push([n, m]);
      }
      const known = [...new Set(adaptable.map(([n]) => leafName(n)))].join(", ");
      const missing =
        typeof settings.targetModules === "string"
          ? chosen.length
            ? []
            : [settings.targetModules]
          : settings.targetModules.filter((t) => !used.has(t));
      if (missing.length) {
        throw new Error(
          `${where}: ${names.targetModules} ${missing.map((t) => `'${t}'`).join(", ")} ${missing.length > 1 ? "match" : "matches"} no layer of the model; its linear layers are ${known}`,
        );
      }
    }
    const lora = new LoraModel(model, resolved);
    const byName = new Map(modules);
    for (const name of settings.modulesToSave) {
      const m = byName.get(name) ?? modules.find(([n]) => n.endsWith(`.${name}`))?.[1];
      if (!m) throw new Error(`${where}: ${names.modulesToSave} '${name}' is not a module of the model`);
    }
    model.requiresGrad_(false);
    try {
      for (const [name, layer] of chosen) lora.#wrap(name, layer);
      for (const name of settings.modulesToSave) {
        for (const [n, m] of modules) if (n === name || n.endsWith(`.${name}`)) lora.#save(n, m);
      }
    } catch (e) {
      lora.detach();
      throw e;
    }
    attached.set(model, lora);
    return lora;
  }

  #wrap(name: string, layer: Linear | Conv1D): void {
    const { r, dropout } = this.settings;
    const device = layer.weight.device;
    const bound = 1 / Math.sqrt(layer.inFeatures); // kaiming_uniform_(a = sqrt(5)) on [r, in]
    const a = new Linear(layer.inFeatures, r, false, { empty: true });
    const b = new Linear(r, layer.outFeatures, false, { empty: true });
    torch.noGrad(() =>
      torch.tidy(() => {
        a.weight.copy_(
          torch
            .rand([r, layer.inFeatures])
            .mul(2 * bound)
            .sub(bound),
        );
        b.weight.zero_();
      }),
    );
    if (device !== "cpu") {
      a.to(device);
      b.to(device);
    }
    layer.registerModule("lora_A", a);
    layer.registerModule("lora_B", b);
    const scaling = this.scaling;
    layer.adapter = (x, y) => {
      if (!this.#enabled) return y;
      const h = x.dtype === "float32" ? x : x.to({ dtype: "float32" }); // [..., in]
      const delta = b.forward(a.forward(torch.dropout(h, dropout, layer.training && dropout > 0))).mul(scaling); // [..., out]
      return y.add(delta.dtype === y.dtype ? delta : delta.to({ dtype: y.dtype })); // [..., out]
    };
    this.layers.push({ name, layer, a, b });
  }

  #save(name: string, m: Module): void {
    const params = m.namedParameters();
    const original = torch.noGrad(() => params.map(([, p]) => p.detach().clone().keep()));
    for (const [, p] of params) p.requiresGrad_(true);
    this.#saved.push({ name, params, original });
  }

  /** Whether the adapters take part in forward passes. */
  get enabled(): boolean {
    return this.#enabled;
  }

  /**
   * Runs `fn` on the model without its adapters (and with modules_to_save at their starting
   * values): the reference model of a LoRA run, as TRL uses a PEFT model with no ref_model.
   */
  withAdaptersDisabled<T>(fn: () => T): T {
    if (!this.#enabled) return fn();
    const trained = this.#swapSaved(null);
    this.#enabled = false;
    try {
      return fn();
    } finally {
      this.#enabled = true;
      this.#swapSaved(trained);
    }
  }

  // Points each saved module's parameters at their original values (trained === null; returns
  // handles on the trained values) or back at the trained ones. setData keeps the parameters'
  // identity, so the optimizer and the gradients are untouched.
  #swapSaved(trained: torch.Tensor[][] | null): torch.Tensor[][] {
    return torch.noGrad(() =>
      this.#saved.map((s, i) =>
        s.params.map(([, p], j) => {
          if (trained) {
            p.setData(trained[i][j]);
            trained[i][j].dispose();
            return trained[i][j];
          }
          const current = p.detach().keep();
          p.setData(s.original[j]);
          return current;
        }),
      ),
    );
  }

  /** The trainable parameters with their model names: every lora_A and lora_B, then modules_to_save. */
  namedParameters(): [string, torch.Tensor][] {
    const out: [string, torch.Tensor][] = [];
    for (const l of this.layers)
      out.push([`${l.name}.lora_A.weight`, l.a.weight], [`${l.name}.lora_B.weight`, l.b.weight]);
    for (const s of this.#saved) for (const [n, p] of s.params) out.push([`${s.name}.${n}`, p]);
    return out;
  }

  parameters(): torch.Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** The full names of the modules trained in full (modules_to_save). */
  get savedModules(): string[] {
    return this.#saved.map((s) => s.name);
  }

  /**
   * Adds scaling · B A into each wrapped layer's weight (transposed for Conv1D's [in, out]
   * layout), in the weight's dtype, then removes the adapters: the plain model the adapter
   * stands for (PEFT's merge_and_unload).
   */
  mergeAndUnload(): void {
    torch.noGrad(() => {
      for (const l of this.layers) {
        torch.tidy(() => {
          const w = l.layer.weight;
          const delta = l.b.weight.matmul(l.a.weight).mul(this.scaling); // [out, in]
          const oriented = l.layer instanceof Conv1D ? delta.t() : delta; // as W is stored
          w.copy_(
            w
              .to({ dtype: "float32" })
              .add(oriented.to({ device: w.device }))
              .to({ dtype: w.dtype }),
          );
        });
      }
    });
    this.detach();
  }

  /** Removes the adapters (not merged) and frees them; modules_to_save keep their trained values. */
  detach(): void {
    for (const l of this.layers) {
      l.layer.adapter = null;
      l.layer.removeModule("lora_A");
      l.layer.removeModule("lora_B");
      l.a.dispose();
      l.b.dispose();
    }
    this.layers.length = 0;
    for (const s of this.#saved) for (const t of s.original) t.dispose();
    this.#saved.length = 0;
    this.#enabled = true;
    attached.delete(this.model);
  }
}

/** Wraps `model`'s targeted layers with fresh LoRA adapters (see LoraModel.attach). */
export function attachLora(model: Module, settings: LoraSettings, where?: string, names?: SettingNames): LoraModel {
  return LoraModel.attach(model, settings, where, names);
}
