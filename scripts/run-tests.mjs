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
const r = spawnSync(process.execPath, ["--test", "--test-concurrency=1", ...args, ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
