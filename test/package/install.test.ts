// `npm install omni-dpo` from the packed tarball, as a user gets it: `npm pack` (prepack
// compiles the TypeScript), an install into an empty folder that builds the native addon with
// node-gyp against LibTorch, `npx omni-dpo --help`, and a greedy `generate` on a tiny model that
// must print what this checkout prints for the same model.
//
// The native build takes minutes here, so this runs only with OMNI_DPO_TEST_INSTALL=1
// (.ci/run runs it after the suite). Offline: the tarball's dependencies are packed from this
// checkout's node_modules and installed from those files, so npm fetches nothing; node-gyp
// takes Node's headers from npm's nodedir setting (or its own cache).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../src/util/package-root.js";
import { tempDir, writeToyModel } from "../helpers/toy.js";

const enabled = process.env.OMNI_DPO_TEST_INSTALL === "1";
const root = packageRoot();
let dir = "";
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(cmd: string, args: string[], options: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 << 20, ...options });
  assert.equal(
    r.status,
    0,
    `${cmd} ${args.join(" ")} failed:\n${String(r.stdout).slice(-4000)}\n${String(r.stderr).slice(-8000)}`,
  );
  return String(r.stdout);
}

test(
  "the packed tarball installs into an empty folder, builds its addon and runs `omni-dpo --help` and `generate`",
  {
    skip: enabled ? false : "slow (builds the native addon): set OMNI_DPO_TEST_INSTALL=1; .ci/run does",
    timeout: 20 * 60_000,
  },
  () => {
    dir = tempDir("omni-dpo-install-");
    const packDir = join(dir, "pack");
    const depsDir = join(dir, "deps");
    const app = join(dir, "app");
    for (const d of [packDir, depsDir, app]) mkdirSync(d);

    // prepack runs tsc: the tarball's dist/src is compiled from this checkout's sources.
    const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", packDir], { cwd: root })) as {
      filename: string;
      files: { path: string }[];
    }[];
    const tarball = join(packDir, packed[0]!.filename);
    assert.ok(!packed[0]!.files.some((f) => f.path.startsWith("dist/test/")));

    // The runtime dependencies, packed from node_modules (the versions package-lock.json chose).
    const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
    };
    const deps: Record<string, string> = { "omni-dpo": `file:${tarball}` };
    for (const name of Object.keys(manifest.dependencies)) {
      const before = new Set(readdirSync(depsDir));
      run("npm", ["pack", "--ignore-scripts", "--pack-destination", depsDir, join(root, "node_modules", name)], {
        cwd: depsDir,
      });
      const made = readdirSync(depsDir).filter((f) => !before.has(f));
      assert.equal(made.length, 1, `packing ${name}`);
      deps[name] = `file:${join(depsDir, made[0]!)}`;
    }
    writeFileSync(
      join(app, "package.json"),
      JSON.stringify({ name: "omni-dpo-install-test", private: true, dependencies: deps }, null, 2),
    );
    run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--foreground-scripts"], { cwd: app });

    const help = run("npx", ["--offline", "omni-dpo", "--help"], { cwd: app });
    assert.match(help, /Usage: omni-dpo/);
    assert.match(help, /generate/);

    const model = writeToyModel(join(dir, "tiny-llama"), { seed: 3 });
    const args = ["generate", "--model", model, "--prompt", "Hello world", "--max-new-tokens", "6", "--json"];
    const installed = JSON.parse(run("npx", ["--offline", "omni-dpo", ...args], { cwd: app }).trim()) as {
      completion: string;
      tokens: number;
    };
    const here = JSON.parse(run(process.execPath, [join(root, "dist", "src", "cli", "main.js"), ...args]).trim()) as {
      completion: string;
      tokens: number;
    };
    assert.ok(installed.tokens > 0);
    assert.deepEqual(installed, here);
  },
);
