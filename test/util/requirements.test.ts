// The skip decision every oracle-dependent test takes from test/helpers/requirements.ts: a missing
// reference skips with its reason, except where the environment requires it (CI), where it throws.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../src/util/package-root.js";
import { REQUIRE_VARIABLE, skipBecause, skipUnless } from "../helpers/requirements.js";

/** Runs `fn` with `vars` set in process.env, restoring them after. */
function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const set = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  };
  set(vars);
  try {
    return fn();
  } finally {
    set(saved);
  }
}

test("a missing browser skips with the reason, and fails where OMNI_DPO_REQUIRE_BROWSER=1", () => {
  const off = { OMNI_DPO_SKIP_BROWSER: "1" };
  const skipped = withEnv({ ...off, OMNI_DPO_REQUIRE_BROWSER: undefined }, () => skipUnless("chromium"));
  assert.equal(skipped, "OMNI_DPO_SKIP_BROWSER=1");
  assert.throws(
    () => withEnv({ ...off, OMNI_DPO_REQUIRE_BROWSER: "1" }, () => skipUnless("chromium")),
    /OMNI_DPO_REQUIRE_BROWSER=1, but OMNI_DPO_SKIP_BROWSER=1/,
  );
});

test("a reason found at run time (network namespaces) skips, or fails where required; none means run", () => {
  assert.equal(
    withEnv({ OMNI_DPO_REQUIRE_NETNS: undefined }, () => skipBecause("netns", "needs root")),
    "needs root",
  );
  assert.throws(
    () => withEnv({ OMNI_DPO_REQUIRE_NETNS: "1" }, () => skipBecause("netns", "needs root")),
    /OMNI_DPO_REQUIRE_NETNS=1, but needs root/,
  );
  assert.equal(
    withEnv({ OMNI_DPO_REQUIRE_NETNS: "1" }, () => skipBecause("netns", null)),
    false,
  );
});

test(".ci/run requires the references setup installs: Python (torch, jinja2), the browser and strace", () => {
  const ci = readFileSync(join(packageRoot(), ".ci", "run"), "utf8");
  const exported = /^export (.*)$/m.exec(ci)?.[1].split(/\s+/) ?? [];
  for (const what of ["torch", "jinja2", "python", "chromium", "strace"] as const) {
    assert.ok(exported.includes(`${REQUIRE_VARIABLE[what]}=1`), `${what}: .ci/run exports ${exported.join(" ")}`);
  }
  assert.ok(ci.indexOf("export OMNI_DPO_REQUIRE") < ci.indexOf("bash scripts/test.sh"), "set before the suite runs");
});
