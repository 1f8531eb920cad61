// The programmer's API from outside: a TypeScript program, compiled with `tsc --strict` against
// the package's types (imported by the package's name), trains LoRA adapters from a typed Recipe
// object, saves the merged model through saveModel and mergeAdapter, and reloads both; the merged
// models compute what the adapter does. A misspelt recipe key must not compile (the program's
// expect-error directives fail the compile when the error is missing). The README's example
// compiles with it.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../src/util/package-root.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";

const root = packageRoot();
const dir = tempDir("omni-dpo-typed-");
after(() => rmSync(dir, { recursive: true, force: true }));

const PROGRAM = `
import { loadAdapterModel, loadModel, mergeAdapter, saveModel, torch, train, type CausalLM, type Recipe } from "omni-dpo";

const [model, data, out] = process.argv.slice(2) as [string, string, string];
const recipe: Recipe = {
  model_name_or_path: model, dataset_mixer: { [data]: 1.0 }, output_dir: \`\${out}/run\`,
  loss_type: "sigmoid", beta: 0.1, use_peft: true, lora_r: 4, lora_alpha: 8, lora_target_modules: "all-linear",
  learning_rate: 1e-3, max_steps: 2, per_device_train_batch_size: 2, max_length: 48, max_prompt_length: 24,
  save_strategy: "no", pair_log_samples: 0,
};
// @ts-expect-error a misspelt key does not compile
const typo: Recipe = { ...recipe, learnig_rate: 1e-5 };
// @ts-expect-error nor a value of the wrong type
const wrong: Recipe = { ...recipe, lora_r: "four" };
void typo; void wrong;

const result = await train(recipe, { quiet: true });
const logits = (m: CausalLM): number[] => torch.noGrad(() => torch.tidy(() =>
  Array.from(m.forward(torch.tensor([[5, 17, 3, 88, 42]], { dtype: "int64" })).data() as Float32Array)));
const adapted = loadAdapterModel(result.outputDir);
saveModel(adapted, \`\${out}/merged-by-save\`, { merged: true });
const merge = await mergeAdapter(result.outputDir, \`\${out}/merged\`);
const expected = logits(adapted);
const diff = (m: CausalLM) => Math.max(...logits(m).map((v, i) => Math.abs(v - expected[i]!)));
console.log(JSON.stringify({
  steps: result.globalStep, layers: merge.layers,
  bySave: diff(loadModel(\`\${out}/merged-by-save\`)), byMerge: diff(loadModel(\`\${out}/merged\`)),
}));
`;

test("a tsc --strict program trains LoRA from a typed Recipe, merges through exported functions and reloads", () => {
  const app = join(dir, "app");
  mkdirSync(join(app, "node_modules", "@types"), { recursive: true });
  symlinkSync(root, join(app, "node_modules", "omni-dpo"));
  symlinkSync(join(root, "node_modules", "@types", "node"), join(app, "node_modules", "@types", "node"));
  writeFileSync(join(app, "package.json"), JSON.stringify({ type: "module", private: true }));
  writeFileSync(join(app, "program.ts"), PROGRAM);
  // The README's "Training from code" example compiles too (it is not run: it names files of its own).
  const readme = readFileSync(join(root, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### Training from code"));
  const example = /```ts\n([\s\S]*?)```/.exec(section)![1]!;
  writeFileSync(join(app, "readme-example.ts"), `${example}\nexport {};\n`);
  const tsc = spawnSync(
    process.execPath,
    [
      join(root, "node_modules", "typescript", "bin", "tsc"),
      "--strict",
      "--module",
      "nodenext",
      "--moduleResolution",
      "nodenext",
      "--target",
      "es2022",
      "--types",
      "node",
      "--skipLibCheck",
      "--outDir",
      "out",
      "program.ts",
      "readme-example.ts",
    ],
    { cwd: app, encoding: "utf8" },
  );
  assert.equal(tsc.status, 0, `tsc failed:\n${tsc.stdout}${tsc.stderr}`);
  const model = writeToyModel(join(dir, "model"), { seed: 5 });
  const data = writeJsonl(join(dir, "pairs.jsonl"), toyPairs(4, 3));
  const r = spawnSync(process.execPath, [join(app, "out", "program.js"), model, data, join(dir, "runs")], {
    cwd: app,
    encoding: "utf8",
    env: { ...process.env, OMP_NUM_THREADS: "1" },
  });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
    steps: number;
    layers: number;
    bySave: number;
    byMerge: number;
  };
  assert.equal(got.steps, 2);
  assert.ok(got.layers > 0);
  assert.ok(got.bySave < 1e-5 && got.byMerge < 1e-5, JSON.stringify(got));
});
