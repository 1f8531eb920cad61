// The addon loads on first tensor use, not at import: where it is not built (here: OMNI_DPO_ADDON
// points the loader at a file that does not exist), the package still imports and its tokenizers
// work, and the first tensor operation says what is missing and how to build it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { AutoTokenizer } from "../../src/index.js";
import { tempTokenizerDir, writeByteLevelTokenizer } from "../helpers/tokenizers.js";

test('without the addon: import { AutoTokenizer } from "omni-dpo" tokenizes; the first tensor op names the missing addon', async () => {
  const dir = tempTokenizerDir();
  writeByteLevelTokenizer(dir);
  const text = "Hello world, the fox runs.";
  const expected = (await AutoTokenizer.fromPretrained(dir)).encode(text);
  const missing = join(tempTokenizerDir("omni-dpo-no-addon-"), "omni_torch.node");
  const script = `
    import { AutoTokenizer, torch } from "omni-dpo";
    const tokenizer = await AutoTokenizer.fromPretrained(${JSON.stringify(dir)});
    const ids = tokenizer.encode(${JSON.stringify(text)});
    let error = null;
    try { torch.ones([2]); } catch (e) { error = e.message; }
    console.log(JSON.stringify({ ids, decoded: tokenizer.decode(ids), error }));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
    env: { ...process.env, OMNI_DPO_ADDON: missing },
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout.trim()) as { ids: number[]; decoded: string; error: string | null };
  assert.deepEqual(got.ids, expected);
  assert.equal(got.decoded, text);
  assert.ok(got.error, "the tensor op failed");
  assert.ok(got.error.includes(missing), `the error names the missing file: ${got.error}`);
  assert.match(got.error, /native addon is not built/);
  assert.match(got.error, /npm run build:native/);
});

test("importing the package loads no LibTorch; the first tensor op does, with OPENBLAS_CORETYPE chosen before", () => {
  const script = `
    import { readFileSync } from "node:fs";
    import { torch } from "omni-dpo";
    const loaded = () => /libtorch_cpu/.test(readFileSync("/proc/self/maps", "utf8"));
    const atImport = { libtorch: loaded(), coretype: process.env.OPENBLAS_CORETYPE ?? null };
    const sum = torch.ones([3]).sum().item();
    const info = torch.buildInfo();
    console.log(JSON.stringify({ atImport, libtorch: loaded(), sum, info, coretype: process.env.OPENBLAS_CORETYPE ?? null }));`;
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
    encoding: "utf8",
    env,
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout.trim());
  assert.deepEqual(got.atImport, { libtorch: false, coretype: null }, "nothing native at import");
  assert.equal(got.libtorch, true);
  assert.equal(got.sum, 3);
  // Whatever the engine chose is what the process had when LibTorch (and OpenBLAS) loaded.
  assert.equal(got.info.openblasCoretype, got.coretype);
  assert.equal(got.info.coretypeChosenByEngine, got.coretype !== null);
});
