// One side of `omni-dpo bench train` in its own process: reads a TrainStepConfig as JSON on
// stdin, runs the step (apps/bench/train.ts runTrainStep) and prints the result as one JSON line.
import { readFileSync } from "node:fs";
import { runTrainStep, type TrainStepConfig } from "./train.js";

const cfg = JSON.parse(readFileSync(0, "utf8")) as TrainStepConfig;
console.log(JSON.stringify(runTrainStep(cfg)));
