// npm's install script: builds the native addon (native/binding.gyp) with node-gyp against
// LibTorch, $LIBTORCH or the system's (find-libtorch.cjs). Nothing is downloaded: no prebuilt
// binary exists, and node-gyp takes Node's headers from where npm is configured to find them.
//
// OMNI_DPO_SKIP_BUILD=1 installs without the addon: tokenizers, chat templates and the data
// tools work (they never load it); the first tensor operation then says how to build it.
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const here = __dirname;
const addon = path.join(here, "build", "Release", "omni_torch.node");
const say = (m) => process.stderr.write(`omni-dpo: ${m}\n`);

if (process.env.OMNI_DPO_SKIP_BUILD === "1") {
  say(
    "OMNI_DPO_SKIP_BUILD=1: the native addon is not built (tokenizers and data tools work; tensors need `npm rebuild omni-dpo`)",
  );
  process.exit(0);
}

// LibTorch first: a missing one is one clear message (find-libtorch.cjs prints how to install
// it) instead of a compiler error about ATen/ATen.h.
const probe = spawnSync(process.execPath, [path.join(here, "find-libtorch.cjs"), "lib"], {
  stdio: ["ignore", "ignore", "inherit"],
});
if (probe.status !== 0) {
  say(
    "cannot build the native addon without LibTorch; install it as above and run `npm rebuild omni-dpo`,\n" +
      "  or set OMNI_DPO_SKIP_BUILD=1 to install without it (tokenizers and data tools only).",
  );
  process.exit(1);
}

// A development checkout's `npm ci` keeps an addon that is newer than every source.
function upToDate() {
  if (!fs.existsSync(addon)) return false;
  const built = fs.statSync(addon).mtimeMs;
  const sources = [
    path.join(here, "binding.gyp"),
    ...fs.readdirSync(path.join(here, "src")).map((f) => path.join(here, "src", f)),
  ];
  return sources.every((f) => fs.statSync(f).mtimeMs <= built);
}
if (upToDate()) process.exit(0);

// npm hands install scripts its own node-gyp (npm_config_node_gyp); outside npm, the local one.
const args = ["rebuild", "--directory", here, "-j", String(Math.max(1, Math.min(os.availableParallelism(), 8)))];
const gyp = process.env.npm_config_node_gyp;
say("building the native addon against LibTorch (a few minutes)");
const r = gyp
  ? spawnSync(process.execPath, [gyp, ...args], { stdio: "inherit" })
  : spawnSync("node-gyp", args, { stdio: "inherit", shell: process.platform === "win32" });
if (r.error) say(`cannot run node-gyp: ${r.error.message}`);
if (r.status !== 0) {
  say("the native addon failed to build (the compiler's messages are above).");
  process.exit(r.status || 1);
}
