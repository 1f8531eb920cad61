#!/usr/bin/env node
// The package's `omni-dpo` command: the library's commands, the apps' (the demo, the benchmarks),
// and the arithmetic task's scorer for `data build --scorer arith`. Apps depend on the library;
// the library never imports them.
import { registerScorer } from "../src/index.js";
import { LIBRARY_COMMANDS, main, type ProgramCommand } from "../src/cli/program.js";
import { benchCommand } from "./bench/command.js";
import { demoCommand } from "./demo/command.js";
import { arithScorer } from "./tasks/arith/scorer.js";

registerScorer("arith", ({ seed, noise }) => arithScorer({ noise: noise ?? 1.5, seed }));

const DEMO: ProgramCommand = {
  name: "demo",
  usage: "demo",
  command: demoCommand,
  summary: ["the embedded demo: DPO, SimPO and Omni-DPO on the same pairs, with a report"],
};
const BENCH: ProgramCommand = {
  name: "bench",
  usage: "bench engine|model|train",
  command: benchCommand,
  summary: [
    "engine throughput and overhead, model forward speed, or one training",
    "step's speed and memory, beside PyTorch",
  ],
};

main([DEMO, ...LIBRARY_COMMANDS, BENCH]);
