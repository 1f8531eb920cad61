#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with Node's own test runner.
// Extra arguments are passed to `node --test` (e.g. --test-name-pattern=adamw).
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

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
const r = spawnSync(process.execPath, ["--test", "--test-concurrency=1", ...args, ...files], { stdio: "inherit", env });
process.exit(r.status ?? 1);
