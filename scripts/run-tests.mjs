#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with Node's own test runner.
// Extra arguments are passed to `node --test` (e.g. --test-name-pattern=adamw).
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { availableParallelism } from "node:os";

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return find(path);
    return name.endsWith(".test.js") ? [path] : [];
  });
}

const files = find("dist/test").sort();
const args = process.argv.slice(2);
// Tests work on tiny tensors, where LibTorch's thread pool costs more than it saves (and on a
// busy machine, far more); one thread keeps them fast. Benchmarks use every core.
const env = { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? "1" };
// Two files at a time: each is single-threaded and many wait on child processes, so two keep a
// 2-core machine busy (1317 tests: 585 s one at a time, 334 s two at a time). More would put
// the timing bounds of the reliability tests at the mercy of the machine's size.
const concurrency = Math.min(2, availableParallelism());
const r = spawnSync(process.execPath, ["--test", `--test-concurrency=${concurrency}`, ...args, ...files], {
  stdio: "inherit",
  env,
});
process.exit(r.status ?? 1);
