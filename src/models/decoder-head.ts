// A head over a causal LM's decoder (the reward and process-reward models): the decoder's own
// state (rotary tables, training mode, its tensors) follows the head's module.
import { Module, type ModuleTarget } from "../nn/module.js";
import type { CausalLM } from "./causal-lm.js";

export abstract class DecoderHead extends Module {
  /** The decoder; its submodules are this module's, so names are the checkpoint's ("model.layers.0..."). */
  abstract readonly body: CausalLM;

  /**
   * Drops the body's LM head (transformers' heads have none) and adopts its other top-level
   * submodules, so this module's parameter names are the checkpoint's.
   */
  protected adoptDecoder(body: CausalLM): void {
    const children = body.namedModules().filter(([n]) => n !== "" && !n.includes("."));
    for (const [name, child] of children) {
      if (name === "lm_head") {
        body.removeModule(name);
        child.dispose();
      } else this.registerModule(name, child);
    }
  }

  /** Moves the parameters, and whatever the body keeps beside them (rotary frequencies). */
  override to(target: ModuleTarget): this {
    super.to(target);
    this.body.to(target);
    return this;
  }

  override train(mode = true): this {
    super.train(mode);
    this.body.train(mode);
    return this;
  }

  override dispose(): void {
    super.dispose();
    this.body.dispose();
  }
}
