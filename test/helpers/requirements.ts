// The one place that decides whether a test whose oracle lives outside Node (PyTorch, Jinja2,
// Chromium, strace, network namespaces, an addon built with oneDNN) runs here. Where the oracle
// is missing the test skips and prints why, except where the environment requires it: .ci/run
// sets OMNI_DPO_REQUIRE_PYTHON=1, OMNI_DPO_REQUIRE_BROWSER=1, OMNI_DPO_REQUIRE_STRACE=1 and
// OMNI_DPO_REQUIRE_ONEDNN=1, because setup installs those, and a quiet skip there would let a
// broken install pass. Required and missing is an error, which fails the test (or the test file,
// when asked at load time) with the reason.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { NO_TORCH_PYTHON, torchPython } from "../../src/util/python.js";
import { torch } from "../../src/index.js";

/** What a test may need: a Python with torch, any Python 3, one with jinja2, Chromium, strace, root with iproute2. */
export type Requirement = "torch" | "pil" | "python" | "jinja2" | "chromium" | "strace" | "netns" | "onednn";

/** The variable that turns each requirement's skip into a failure. */
export const REQUIRE_VARIABLE: Record<Requirement, string> = {
  torch: "OMNI_DPO_REQUIRE_PYTHON",
  pil: "OMNI_DPO_REQUIRE_PYTHON",
  python: "OMNI_DPO_REQUIRE_PYTHON",
  jinja2: "OMNI_DPO_REQUIRE_PYTHON",
  chromium: "OMNI_DPO_REQUIRE_BROWSER",
  strace: "OMNI_DPO_REQUIRE_STRACE",
  netns: "OMNI_DPO_REQUIRE_NETNS",
  onednn: "OMNI_DPO_REQUIRE_ONEDNN",
};

export const CHROMIUM = "/usr/bin/chromium";

/** Pythons to try, in order: OMNI_DPO_PYTHON, then python3 on the PATH, then Debian's. */
function pythons(): string[] {
  return [process.env.OMNI_DPO_PYTHON, "python3", "/usr/bin/python3"].filter((p): p is string => !!p);
}

function firstPythonWith(module: string | null): string | null {
  const code = module ? `import ${module}` : "import sys; assert sys.version_info[0] == 3";
  return pythons().find((exe) => spawnSync(exe, ["-c", code], { encoding: "utf8" }).status === 0) ?? null;
}

const found = new Map<string, string | null>();

/** A python that can import `module` (any Python 3 for null), or null; asked once per module. */
export function pythonWith(module: "torch" | "jinja2" | null): string | null {
  const key = module ?? "";
  if (!found.has(key)) found.set(key, module === "torch" ? torchPython() : firstPythonWith(module));
  return found.get(key)!;
}

/** Why `what` is missing here, or null when it is present. */
function missing(what: Exclude<Requirement, "netns">): string | null {
  switch (what) {
    case "torch":
      return pythonWith("torch") ? null : NO_TORCH_PYTHON;
    case "pil": {
      // Image parity tests run PIL inside the python that has torch.
      const exe = pythonWith("torch");
      if (!exe) return NO_TORCH_PYTHON;
      const ok = spawnSync(exe, ["-c", "import PIL"], { encoding: "utf8" }).status === 0;
      return ok ? null : `${exe} cannot import PIL (apt-get install python3-pil)`;
    }
    case "python":
      return pythonWith(null) ? null : "no python3 (apt-get install python3, or set OMNI_DPO_PYTHON)";
    case "jinja2":
      return pythonWith("jinja2") ? null : "no python3 with jinja2 (apt-get install python3-jinja2)";
    case "chromium":
      if (process.env.OMNI_DPO_SKIP_BROWSER === "1") return "OMNI_DPO_SKIP_BROWSER=1";
      return existsSync(CHROMIUM) ? null : `no chromium at ${CHROMIUM} (scripts/setup.sh installs it)`;
    case "onednn":
      return torch.buildInfo().packedLinear
        ? null
        : "the addon was built without oneDNN, so nothing packs (scripts/setup.sh installs libdnnl-dev, then rebuilds it)";
    case "strace": {
      // strace needs ptrace, which some sandboxes deny even where it is installed.
      const r = spawnSync("strace", ["-f", "-qq", "-e", "trace=fsync", "true"], { encoding: "utf8" });
      if (r.error) return "strace is not installed (scripts/setup.sh installs it: apt-get install strace)";
      return r.status === 0 ? null : `strace cannot trace here: ${r.stderr.trim()}`;
    }
  }
}

export function isRequired(what: Requirement): boolean {
  return process.env[REQUIRE_VARIABLE[what]] === "1";
}

/**
 * The reason to skip when `reason` (non-null) keeps a test needing `what` from running; throws
 * instead where the environment requires `what`. For checks only the test itself can make
 * (creating network namespaces), at run time.
 */
export function skipBecause(what: Requirement, reason: string | null): string | false {
  if (reason === null) return false;
  if (isRequired(what)) throw new Error(`${REQUIRE_VARIABLE[what]}=1, but ${reason}`);
  console.log(`# skipped (needs ${what}): ${reason}`);
  return reason;
}

/**
 * For a test's `skip` option: false when everything in `needs` is here; otherwise the reason,
 * printed, to skip; throws where the environment requires what is missing.
 */
export function skipUnless(...needs: Exclude<Requirement, "netns">[]): string | false {
  for (const what of needs) {
    const reason = skipBecause(what, missing(what));
    if (reason) return reason;
  }
  return false;
}
