// A distributed run fails and stops as users need: a killed rank brings the launcher and the
// other ranks down within seconds, naming the rank; Ctrl-C on the launcher stops every rank at
// one agreed step with one checkpoint, which a run of the same world size resumes and one of
// another world size refuses with a message saying what to do; ranks started by an outside
// launcher (only the standard environment) train as one run, also over a store torchrun's
// agent serves.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { torchPython } from "../../src/util/python.js";
import { skipUnless } from "../helpers/requirements.js";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { tempDir } from "../helpers/toy.js";
import { freePort } from "./ranks.js";
import { metricRows, runTrain, startTrain, writeRecipe, writeSetup } from "./train-ranks.js";

const AGENT_STORE = fileURLToPath(new URL("../../../test/distributed/agent_store.py", import.meta.url));

let root: string;
let setup: { model: string; data: string };
before(() => {
  root = tempDir("omni-dpo-ddp-faults-");
  setup = writeSetup(root, 32);
});
after(() => rmSync(root, { recursive: true, force: true }));

function recipe(name: string, extra: Record<string, unknown> = {}): { file: string; dir: string } {
  const dir = join(root, name);
  const file = writeRecipe(join(root, `${name}.yaml`), {
    model_name_or_path: setup.model,
    dataset_mixer: { [setup.data]: 1.0 },
    output_dir: dir,
    pref_loss: "dpo",
    beta: 0.5,
    learning_rate: 1e-3,
    per_device_train_batch_size: 2,
    max_length: 48,
    max_prompt_length: 24,
    logging_steps: 1,
    save_steps: 100000,
    seed: 3,
    ddp_timeout: 60,
    ...extra,
  });
  return { file, dir };
}

/** The pid of the launcher's child that is rank `rank` (read from /proc: the launcher's children and their RANK). */
function rankPid(launcher: number, rank: number): number | null {
  const file = `/proc/${launcher}/task/${launcher}/children`;
  if (!existsSync(file)) return null;
  for (const pid of readFileSync(file, "utf8").trim().split(/\s+/).filter(Boolean).map(Number)) {
    try {
      if (readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(`RANK=${rank}`)) return pid;
    } catch {
      /* exited meanwhile */
    }
  }
  return null;
}

/** Both ranks of a 2-rank run started as an outside launcher starts them: only the standard environment. */
async function outsideRanks(file: string, port?: string, extra: Record<string, string> = {}) {
  const master = port ?? String(await freePort());
  const rank = (r: number) =>
    runTrain(file, [], {
      RANK: String(r),
      WORLD_SIZE: "2",
      LOCAL_RANK: String(r),
      MASTER_ADDR: "127.0.0.1",
      MASTER_PORT: master,
      ...extra,
    });
  return Promise.all([rank(0), rank(1)]);
}

async function until(what: string, ok: () => boolean, timeoutMs = 60000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe("faults in a 2-rank run", () => {
  it("a killed rank makes the launcher and the other rank exit with an error naming it, within seconds", async () => {
    const { file, dir } = recipe("killed", { max_steps: 100000 });
    const run = startTrain(file, ["--nproc-per-node", "2", "--master-port", String(await freePort())]);
    await until("a logged step", () => metricRows(dir).length > 0);
    const victim = rankPid(run.child.pid!, 1);
    assert.ok(victim, "rank 1's process");
    const killedAt = Date.now();
    process.kill(victim, "SIGKILL");
    const r = await run.done;
    const seconds = (Date.now() - killedAt) / 1000;
    assert.notEqual(r.code, 0);
    assert.match(r.output, new RegExp(`rank 1 \\(pid ${victim}\\) was killed by SIGKILL; stopping the other ranks`));
    assert.match(r.output, /rank 0 of 2: allReduce failed/, "rank 0 said why it stopped");
    assert.ok(seconds < 20, `all down in ${seconds} s`);
  });

  it("Ctrl-C on the launcher: one checkpoint at an agreed step, exit 130; another world size is refused; the same resumes and finishes", async () => {
    const { file, dir } = recipe("interrupted", { max_steps: 60 });
    const port = String(await freePort());
    const run = startTrain(file, ["--nproc-per-node", "2", "--master-port", port]);
    await until("a logged step", () => metricRows(dir).length > 0);
    run.child.kill("SIGINT");
    const r = await run.done;
    assert.equal(r.code, 130, r.output);
    const checkpoints = readdirSync(dir).filter((n) => n.startsWith("checkpoint-"));
    assert.equal(checkpoints.length, 1, `one checkpoint: ${checkpoints}`);
    const step = Number(checkpoints[0].slice("checkpoint-".length));
    assert.ok(step > 0 && step < 60);
    assert.match(r.stdout, new RegExp(`stopped at step ${step}/60`), "rank 0 reported the step");

    const alone = await runTrain(file);
    assert.equal(alone.code, 1);
    assert.match(
      alone.output,
      /this checkpoint was written by 2 processes .*resume it with 2 \(--nproc-per-node x --nnodes = 2\), not 1/,
    );

    const resumed = await runTrain(file, ["--nproc-per-node", "2", "--master-port", String(await freePort())]);
    assert.equal(resumed.code, 0, resumed.output);
    assert.match(resumed.output, new RegExp(`resumed from .*checkpoint-${step} at step ${step}`));
    const rows = metricRows(dir).filter((row) => "loss" in row);
    assert.deepEqual(
      rows.map((row) => row.step),
      Array.from({ length: 60 }, (_, i) => i + 1),
      "every step logged once",
    );
  });

  it("processes started by an outside launcher (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) are the ranks of one run", async () => {
    const { file, dir } = recipe("outside", { max_steps: 3 });
    const [r0, r1] = await outsideRanks(file);
    assert.equal(r0.code, 0, r0.output);
    assert.equal(r1.code, 0, r1.output);
    assert.match(r0.output, /rank 0 of 2 joined \(gloo, 127\.0\.0\.1:\d+\)/);
    assert.deepEqual(
      metricRows(dir)
        .filter((row) => "loss" in row)
        .map((row) => row.step),
      [1, 2, 3],
    );
    assert.ok(existsSync(join(dir, "model.safetensors")));
  });

  it("a run the main process refuses to plan (a missing resume_from_checkpoint) stops every rank with the reason, not a wait", async () => {
    const missing = join(root, "no-such-checkpoint");
    const { file } = recipe("refused", { max_steps: 3, resume_from_checkpoint: missing });
    const started = Date.now();
    const [r0, r1] = await outsideRanks(file);
    const seconds = (Date.now() - started) / 1000;
    assert.notEqual(r0.code, 0);
    assert.notEqual(r1.code, 0);
    assert.match(r0.output, /resume_from_checkpoint: .*no-such-checkpoint does not exist/);
    assert.match(
      r1.output,
      /the main process refused to start the run: resume_from_checkpoint: .*no-such-checkpoint does not exist/,
    );
    // ddp_timeout is 60 s: rank 1 heard the reason, it did not time out waiting for a plan.
    assert.ok(seconds < 45, `both stopped in ${seconds.toFixed(1)} s`);
  });

  it(
    "with TORCHELASTIC_USE_AGENT_STORE=True (torchrun's workers) the ranks use the store already served (PyTorch's own TCPStore)",
    { skip: skipUnless("torch") },
    async () => {
      const { file, dir } = recipe("agent-store", { max_steps: 2 });
      const port = String(await freePort());
      const agent = spawn(torchPython()!, [AGENT_STORE, port, "3"], { stdio: ["pipe", "pipe", "inherit"] });
      try {
        await new Promise<void>((resolve, reject) => {
          agent.stdout.on("data", (d) => {
            if (String(d).includes("serving")) resolve();
          });
          agent.on("exit", (code) => reject(new Error(`the store exited with ${code}`)));
        });
        const [r0, r1] = await outsideRanks(file, port, { TORCHELASTIC_USE_AGENT_STORE: "True" });
        assert.equal(r0.code, 0, r0.output);
        assert.equal(r1.code, 0, r1.output);
        assert.deepEqual(
          metricRows(dir)
            .filter((row) => "loss" in row)
            .map((row) => row.step),
          [1, 2],
        );
      } finally {
        agent.stdin.end();
        agent.kill();
      }
    },
  );
});
