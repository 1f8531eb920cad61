// c10d through the addon, as users' ranks run it: separate processes rendezvous over a TCPStore
// on loopback and all-reduce, broadcast, all-gather and barrier over Gloo; a rank that exits
// makes the survivor's next collective throw a DistributedError naming its rank (no hang, no
// crash); bad arguments are errors, not aborts.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { freePort, runRanks } from "./ranks.js";

const WORKER = join(import.meta.dirname, "collectives-worker.js");

describe("c10d collectives (Gloo, 2 processes)", () => {
  it("all-reduce (sum, max), broadcast, reduce, all-gather, barrier and the store agree across ranks", async () => {
    const runs = await runRanks(WORKER, 2, { MASTER_PORT: String(await freePort()) });
    const outs = runs.map((r) => {
      assert.equal(r.code, 0, r.output);
      return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
    });
    for (const o of outs) {
      assert.deepEqual(o.sum, [
        [1.5, 10],
        [
          [1, 2],
          [4, 6],
        ],
      ]);
      assert.deepEqual(o.max, [1, 0]);
      assert.deepEqual(o.broadcast, [7]);
      assert.deepEqual(o.gather, [[0], [2]]);
      if (o.rank === 1) assert.deepEqual(o.reduce, [3, 6]);
      assert.equal(o.shared, "from rank 0");
    }
  });

  it("a rank that exits makes the other's next collective fail with an error naming its own rank, within seconds", async () => {
    const started = Date.now();
    const runs = await runRanks(WORKER, 2, {
      MASTER_PORT: String(await freePort()),
      DIE_AFTER_SETUP: "1",
      TIMEOUT_MS: "30000",
    });
    assert.equal(runs[1].code, 3);
    assert.equal(runs[0].code, 0, runs[0].output);
    const o = JSON.parse(runs[0].stdout.trim().split("\n").at(-1)!);
    assert.match(o.afterDeath, /^rank 0 of 2: allReduce failed: /);
    assert.ok(Date.now() - started < 20000, "the survivor noticed before the 30 s timeout");
  });

  it("rejects bad input with errors, in this process", () => {
    assert.equal(torch.distributed.hasBackend("gloo"), true);
    assert.throws(
      () =>
        torch.distributed.ProcessGroup.init({
          rank: 2,
          worldSize: 2,
          masterAddr: "127.0.0.1",
          masterPort: 1,
          backend: "gloo",
          timeoutMs: 100,
        }),
      /rank must be an integer from 0 to 1/,
    );
    assert.throws(
      () =>
        torch.distributed.ProcessGroup.init({
          rank: 0,
          worldSize: 1,
          masterAddr: "127.0.0.1",
          masterPort: 70000,
          backend: "gloo",
          timeoutMs: 100,
        }),
      /port/,
    );
    // A client whose server never comes: the rendezvous times out with the address in the message.
    assert.throws(
      () =>
        torch.distributed.ProcessGroup.init({
          rank: 1,
          worldSize: 2,
          masterAddr: "127.0.0.1",
          masterPort: 9,
          backend: "gloo",
          timeoutMs: 300,
        }),
      /rank 1 of 2: rendezvous at 127\.0\.0\.1:9 failed/,
    );
  });
});
