// The import rules `npm run lint` enforces (.dependency-cruiser.cjs), run on a planted tree: a
// cycle (through a type-only import), a layer importing one above it and the library importing
// an app are each reported; the imports the layers allow are not.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { packageRoot } from "../../src/util/package-root.js";
import { tempDir } from "../helpers/toy.js";

const ROOT = packageRoot();
const DEPCRUISE = join(ROOT, "node_modules", ".bin", "depcruise");

const PLANTED: Record<string, string> = {
  "src/torch/tensor.ts": "export const zero = 0;\n",
  // A cycle whose back edge is a type-only import.
  "src/models/auto.ts": 'import { base } from "./peft.js";\nexport const load = () => base;\n',
  "src/models/peft.ts":
    'import type { load } from "./auto.js";\nexport const base = 1;\nexport type Load = typeof load;\n',
  // nn sits below models.
  "src/nn/module.ts": 'import { load } from "../models/auto.js";\nexport const m = load;\n',
  // Allowed: data above models and torch.
  "src/data/build.ts":
    'import { load } from "../models/auto.js";\nimport { zero } from "../torch/tensor.js";\nexport const b = [load, zero];\n',
  // The library importing an app.
  "src/cli/main.ts": 'import { demo } from "../../apps/demo.js";\nexport const run = demo;\n',
  "apps/demo.ts": 'import { b } from "../src/data/build.js";\nexport const demo = b;\n',
  "tsconfig.json": JSON.stringify({
    compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", strict: true, noEmit: true },
    include: ["src/**/*.ts", "apps/**/*.ts"],
  }),
};

test("lint's import rules report a planted cycle, a layer importing upward and the library importing an app", () => {
  // A development dependency, as TypeScript is: its absence is a broken install, not a reason to skip.
  assert.ok(existsSync(DEPCRUISE), `${DEPCRUISE} is missing: install the development dependencies (npm ci)`);
  const dir = tempDir("omni-dpo-lint-");
  try {
    for (const [file, text] of Object.entries(PLANTED)) {
      mkdirSync(dirname(join(dir, file)), { recursive: true });
      writeFileSync(join(dir, file), text);
    }
    // As `npm run lint` runs it: an error line per violation ("error RULE: FROM → TO ..."), exit status non-zero.
    const r = spawnSync(
      DEPCRUISE,
      ["src", "apps", "--config", join(ROOT, ".dependency-cruiser.cjs"), "--output-type", "err"],
      { cwd: dir, encoding: "utf8" },
    );
    assert.notEqual(r.status, 0, `a tree with violations fails the check:\n${r.stdout}${r.stderr}`);
    const found = [...r.stdout.matchAll(/error (\S+): (\S+) →\s*(\S+)/g)].map(
      ([, rule, from, to]) => `${rule}: ${from} -> ${to}`,
    );
    assert.deepEqual(
      found.sort(),
      [
        "layer-nn: src/nn/module.ts -> src/models/auto.ts",
        "library-not-apps: src/cli/main.ts -> apps/demo.ts",
        "no-cycle: src/models/auto.ts -> src/models/peft.ts",
      ],
      r.stdout,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
