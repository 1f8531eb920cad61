// The dashboard's server without a browser: clients that connect to the event stream and never
// read are dropped once their unsent events pass the bound (a stalled client cannot grow the
// server's memory) while a reading client keeps receiving; a bad or busy --port exits at once.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { startDashboard, type DashboardServer } from "../../src/report/dashboard-server.js";
import { packageRoot } from "../../src/util/package-root.js";
import { tempDir } from "../helpers/toy.js";

const CLI = join(packageRoot(), "dist", "src", "cli", "main.js");

let root: string;
let run: string;
before(() => {
  root = tempDir("omni-dpo-dashboard-server-");
  run = join(root, "run");
  mkdirSync(run);
  writeFileSync(join(run, "metrics.jsonl"), JSON.stringify({ step: 1, loss: 0.69 }) + "\n");
});
after(() => rmSync(root, { recursive: true, force: true }));

const connections = (d: DashboardServer) =>
  new Promise<number>((resolve, reject) => {
    d.server.getConnections((e, n) => (e ? reject(e) : resolve(n)));
  });

describe("event stream", () => {
  it("drops clients that never read once their unsent events pass the bound; a reading client keeps up", async () => {
    const bound = 256 * 1024;
    const dash = await startDashboard([run], { intervalMs: 20, maxUnsentBytes: bound });
    const url = new URL(dash.url);
    const stalled: Socket[] = [];
    let received = 0;
    const reader = get(new URL("events", dash.url), (res) =>
      res.on("data", (chunk: Buffer) => {
        received += chunk.length;
      }),
    );
    try {
      for (let i = 0; i < 5; i++) {
        const s = connect(Number(url.port), url.hostname);
        s.on("error", () => {}); // the server resets it
        s.write(`GET /events HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
        s.pause(); // and never reads
        stalled.push(s);
      }
      while ((await connections(dash)) < 6) await new Promise((r) => setTimeout(r, 10));
      // Rows of about 1 MB every 30 ms: far more than the socket buffers and the bound hold.
      const row = (step: number) => JSON.stringify({ step, loss: 0.5, note: "x".repeat(200) }) + "\n";
      const started = Date.now();
      let step = 2;
      while ((await connections(dash)) > 1) {
        assert.ok(
          Date.now() - started < 15_000,
          `stalled clients still connected after 15 s (${await connections(dash)} connections)`,
        );
        appendFileSync(join(run, "metrics.jsonl"), Array.from({ length: 4000 }, () => row(step++)).join(""));
        await new Promise((r) => setTimeout(r, 30));
      }
      const sent = step;
      const before = received;
      appendFileSync(join(run, "metrics.jsonl"), row(sent));
      while (received === before) {
        assert.ok(Date.now() - started < 20_000, "the reading client stopped receiving");
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(await connections(dash), 1, "the reading client is still connected");
    } finally {
      reader.destroy();
      for (const s of stalled) s.destroy();
      await dash.close();
    }
  });
});

describe("omni-dpo dashboard --port", () => {
  const dashboard = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, "dashboard", run, ...args], { encoding: "utf8", timeout: 20_000 });

  it("out of range: a usage error, at once", () => {
    const r = dashboard("--port", "70000");
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /--port must be at most 65535, got 70000/);
  });

  it("in use: the listen error, and the process exits", async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const port = (busy.address() as { port: number }).port;
    try {
      const r = dashboard("--port", String(port));
      assert.equal(r.signal, null, "it hung until killed");
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
    } finally {
      busy.close();
    }
  });
});
