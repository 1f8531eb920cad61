// Writes are durable and their failures name the file: a write into a full device (/dev/full,
// ENOSPC) is a WriteError naming the path and keeps the previous content; a checkpoint's files,
// then its directory, are fsynced before the rename that makes it visible, and output_dir
// after it (checked on a real run's system calls with strace, where strace can trace).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../../src/util/package-root.js";
import { WriteError, writeFileAtomic, writeJsonAtomic } from "../../src/util/files.js";
import { MetricsSink } from "../../src/train/metrics.js";
import { tempDir, toyPairs, writeJsonl, writeToyModel } from "../helpers/toy.js";
import { skipUnless } from "../helpers/requirements.js";

const CLI = join(packageRoot(), "dist", "src", "cli", "main.js");
let root: string;
before(() => {
  root = tempDir("omni-dpo-durable-");
});
after(() => rmSync(root, { recursive: true, force: true }));

describe("a write that fails names the path", () => {
  it("writeFileAtomic into a full device (ENOSPC) throws a WriteError naming the file, and the file keeps its content", () => {
    const file = join(root, "config.json");
    writeJsonAtomic(file, { kept: true });
    // The temporary name this process writes under, made a link to a device that is always full.
    symlinkSync("/dev/full", `${file}.tmp-${process.pid}`);
    assert.throws(
      () => writeJsonAtomic(file, { kept: false }),
      (e: unknown) => {
        assert.ok(e instanceof WriteError, String(e));
        assert.equal(e.code, "ENOSPC");
        assert.equal(e.path, file);
        assert.match(e.message, new RegExp(`^${file}: cannot write \\(ENOSPC: no space left on device`));
        return true;
      },
    );
    assert.deepEqual(JSON.parse(readFileSync(file, "utf8")), { kept: true });
    assert.ok(!existsSync(`${file}.tmp-${process.pid}`), "the temporary name is cleaned up");
    writeFileAtomic(file, "{}\n");
    assert.equal(readFileSync(file, "utf8"), "{}\n", "and the next write works");
  });

  it("a metrics row that cannot be appended (ENOSPC) names metrics.jsonl", () => {
    const file = join(root, "metrics.jsonl");
    symlinkSync("/dev/full", file);
    assert.throws(
      () => new MetricsSink(file).write({ step: 1, loss: 0.5 }),
      (e: unknown) => e instanceof WriteError && e.path === file && e.code === "ENOSPC",
    );
  });
});

describe("durability order, on a real run's system calls", () => {
  it(
    "checkpoint: every file, then the directory, fsynced before the rename into place, then output_dir; atomic files likewise",
    { skip: skipUnless("strace") },
    () => {
      writeToyModel(join(root, "model"));
      writeJsonl(join(root, "pairs.jsonl"), toyPairs(8));
      const yaml = join(root, "run.yaml");
      writeFileSync(
        yaml,
        "model_name_or_path: model\ndataset_mixer:\n  pairs.jsonl: 1.0\noutput_dir: out\npref_loss: simpo\nmax_steps: 1\n" +
          "per_device_train_batch_size: 4\nmax_length: 48\nmax_prompt_length: 24\n",
      );
      const log = join(root, "strace.log");
      const r = spawnSync(
        "strace",
        [
          "-f",
          "-qq",
          "-y",
          "-e",
          "trace=fsync,rename,renameat,renameat2",
          "-o",
          log,
          process.execPath,
          CLI,
          "train",
          yaml,
        ],
        { cwd: root, encoding: "utf8", timeout: 180_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      const out = join(root, "out");
      const calls = readFileSync(log, "utf8").split("\n");
      const fsyncAt = (path: string) => calls.findIndex((l) => l.includes(`fsync(`) && l.includes(`<${path}>)`));
      const renameAt = (from: RegExp, to: string) =>
        calls.findIndex((l) => /rename/.test(l) && from.test(l) && l.includes(`"${to}"`));
      const lastFsyncAfter = (path: string, after: number) =>
        calls.findIndex((l, i) => i > after && l.includes(`<${path}>)`) && l.includes("fsync("));

      const final = join(out, "checkpoint-1");
      const renamed = renameAt(new RegExp(`"${final}\\.tmp-\\d+"`), final);
      assert.ok(renamed >= 0, "the checkpoint is renamed into place from its temporary directory");
      const tmp = calls[renamed].match(new RegExp(`"(${final}\\.tmp-\\d+)"`))![1];
      // The directory's last fsync before the rename (atomic files inside it fsync it too, earlier).
      let dirSynced = -1;
      calls.slice(0, renamed).forEach((l, i) => {
        if (l.includes("fsync(") && l.includes(`<${tmp}>)`)) dirSynced = i;
      });
      assert.ok(dirSynced >= 0, "the temporary directory is fsynced before the rename");
      for (const name of readdirSync(final)) {
        const at = fsyncAt(join(tmp, name));
        assert.ok(
          at >= 0 && at < dirSynced,
          `${name} is fsynced before its directory (at ${at}, directory at ${dirSynced})`,
        );
      }
      assert.ok(lastFsyncAfter(out, renamed) > renamed, "output_dir is fsynced after the rename");

      const results = join(out, "train_results.json");
      const resultsRenamed = renameAt(new RegExp(`"${results}\\.tmp-\\d+"`), results);
      assert.ok(resultsRenamed >= 0);
      const resultsTmp = calls[resultsRenamed].match(/"([^"]+\.tmp-\d+)"/)![1];
      assert.ok(
        fsyncAt(resultsTmp) >= 0 && fsyncAt(resultsTmp) < resultsRenamed,
        "an atomic file is fsynced before its rename",
      );
      assert.ok(lastFsyncAfter(out, resultsRenamed) > resultsRenamed, "and its directory after");
      assert.ok(fsyncAt(join(out, "model.safetensors")) >= 0, "the final weights are fsynced");
    },
  );
});
