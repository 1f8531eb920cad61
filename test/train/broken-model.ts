// A model directory whose weights are all NaN (a diverged run's output), for the tests that
// check NaN is an error and never a number in a report.
import * as torch from "../../src/torch/index.js";
import { loadModel, saveModel } from "../../src/models/auto.js";
import { writeToyModel } from "../helpers/toy.js";

export function writeNanModel(dir: string, options: { architecture?: "llama" | "gpt2" } = {}): string {
  writeToyModel(dir, options);
  const model = loadModel(dir);
  try {
    torch.noGrad(() => {
      for (const p of model.parameters()) p.mul_(Number.NaN);
    });
    saveModel(model, dir);
  } finally {
    model.dispose();
  }
  return dir;
}
