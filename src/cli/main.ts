#!/usr/bin/env node
// The library's command line (train, generate, eval, dashboard, merge, data): parses arguments,
// calls the library, prints. The package's `omni-dpo` bin (apps/cli.ts) is this plus the demo
// and the benchmarks.
import { LIBRARY_COMMANDS, main } from "./program.js";

main(LIBRARY_COMMANDS);
