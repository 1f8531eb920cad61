// omni-dpo's public entry point.
export * as torch from "./torch/index.js";
export { Tensor } from "./torch/index.js";
