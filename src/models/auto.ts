// Loading and saving causal language models in Hugging Face's layout: config.json plus
// safetensors weights, single-file or sharded. A model saved here loads in transformers.
import { existsSync } from "node:fs";
import { join } from "node:path";
import * as torch from "../torch/index.js";
import type { Init } from "../nn/layers.js";
import { architectureOf, readConfig, type RawConfig } from "./config.js";
import type { CausalLM } from "./causal-lm.js";
import { GPT2LMHeadModel } from "./gpt2.js";
import { LlamaForCausalLM } from "./llama.js";
import { loadCheckpoint, saveCheckpoint } from "./safetensors.js";
import { writeJsonAtomic } from "../util/files.js";

/** How a loaded checkpoint named its tensors, so saving writes the same names back. */
const layouts = new WeakMap<CausalLM, { prefix: string }>();

/** A model of the config's architecture with fresh (random, seeded by manualSeed) weights. */
export function createModel(config: RawConfig, init: Init = {}): CausalLM {
  const arch = architectureOf(config);
  return arch === "gpt2" ? new GPT2LMHeadModel(config, init) : new LlamaForCausalLM(config, arch, init);
}

export interface LoadOptions {
  /** Compute dtype; weights stored as F16/BF16/F32 are cast to it. Default float32. */
  dtype?: torch.DType;
  /** Where the parameters live ("cpu", "cuda", "cuda:1"); default cpu. */
  device?: torch.Device;
}

export class AutoModelForCausalLM {
  /** Loads config.json and the safetensors weights of `dir`; the model starts in eval mode. */
  static async fromPretrained(dir: string, options: LoadOptions = {}): Promise<CausalLM> {
    return loadModel(dir, options);
  }
}

export function loadModel(dir: string, options: LoadOptions = {}): CausalLM {
  const config = readConfig(dir);
  architectureOf(config, join(dir, "config.json"));
  const dtype = options.dtype ?? "float32";
  const model = createModel(config, { dtype, empty: true });
  const tensors = loadCheckpoint(dir, { dtype });
  try {
    // Names and shapes up front: setParameter frees the tensors it replaces.
    const shapes = new Map(model.namedParameters().map(([n, p]) => [n, p.shape.join()]));
    const tied = model.tiedNames();
    // GPT-2 checkpoints exist with and without the "transformer." prefix.
    const prefix = model.architecture === "gpt2" && [...tensors.keys()].some((n) => n.startsWith("h.") || n === "wte.weight") ? "transformer." : "";
    const unexpected: string[] = [];
    const misshapen: string[] = [];
    const loaded = new Set<string>();
    for (const [name, t] of tensors) {
      const target = shapes.has(prefix + name) ? prefix + name : name;
      const shape = shapes.get(target);
      if (shape !== undefined && shape !== t.shape.join()) {
        misshapen.push(`${name} [${t.shape}] (model: [${shape}])`);
        loaded.add(target);
      } else if (shape !== undefined) {
        model.setParameter(target, t);
        loaded.add(target);
        tensors.delete(name);
      } else if (!model.isIgnoredCheckpointName(name) && !(name in tied)) {
        unexpected.push(name);
      }
    }
    const missing = [...shapes.keys()].filter((n) => !loaded.has(n));
    if (missing.length || unexpected.length || misshapen.length) {
      throw new Error(`${dir}: checkpoint does not match ${config.architectures?.[0] ?? model.architecture}` +
        (missing.length ? `\n  missing tensors: ${missing.join(", ")}` : "") +
        (unexpected.length ? `\n  unexpected tensors: ${unexpected.join(", ")}` : "") +
        (misshapen.length ? `\n  tensors of the wrong shape: ${misshapen.join(", ")}` : ""));
    }
    layouts.set(model, { prefix });
    if (options.device && options.device !== "cpu") model.to(options.device);
    return model.eval() as CausalLM;
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

export interface SaveOptions {
  /** Shard above this many bytes (default 5 GB, as transformers). */
  maxShardBytes?: number;
  /** Store weights in this dtype (e.g. bfloat16 to halve the size); default: as they are. */
  dtype?: torch.DType;
}

/** Writes config.json and the weights, with the names the model was loaded with. */
export function saveModel(model: CausalLM, dir: string, options: SaveOptions = {}): void {
  const prefix = layouts.get(model)?.prefix ?? "";
  torch.tidy(() => {
    const entries: [string, torch.Tensor][] = model.namedParameters().map(([name, p]) => {
      const stored = prefix && name.startsWith(prefix) ? name.slice(prefix.length) : name;
      const value = p.detach();
      return [stored, options.dtype && options.dtype !== value.dtype ? value.to(options.dtype) : value];
    });
    saveCheckpoint(dir, entries, { maxShardBytes: options.maxShardBytes });
    const dtype = options.dtype ?? entries[0]?.[1].dtype ?? "float32";
    writeJsonAtomic(join(dir, "config.json"), { ...model.config, torch_dtype: dtype });
  });
}

export function isModelDirectory(dir: string): boolean {
  return existsSync(join(dir, "config.json"));
}
