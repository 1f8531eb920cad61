// A head over a causal LM's decoder (the reward and process-reward models): the decoder's own
// state (rotary tables, training mode, its tensors) follows the head's module.
import { Module, type ModuleTarget } from "../nn/module.js";
import type { CausalLM } from "./causal-lm.js";

export abstract class DecoderHead extends Module {
  /** The decoder; its submodules are this module's, so names are the checkpoint's ("model.layers.0..."). */
  abstract readonly body: CausalLM;

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
