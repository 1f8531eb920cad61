// `omni-dpo dashboard`'s server: node:http only. GET / is the page, with each run's state as
// read at the last poll inline (so it draws at once); GET /events is a
// server-sent-event stream: each run's full state when a client connects, then what each poll
// of the run directories finds appended (or a run's full state again when a file was
// replaced). Reading errors become problems on the page; a request never takes the server down.
// A client that stops reading is dropped once its unsent events pass a bound (its browser
// reconnects and gets the whole state again), so a stalled client cannot grow the server's memory.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { RunReader, type RunUpdate } from "./run-data.js";
import { dashboardHtml } from "./dashboard-page.js";
import { readEvalResults } from "./eval-results.js";

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);

export function isLoopback(host: string): boolean {
  return LOOPBACK.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export interface DashboardOptions {
  port?: number;
  host?: string;
  /** Polling interval of the run directories, ms. */
  intervalMs?: number;
  names?: string[];
  /**
   * Bytes of events a client may leave unread beyond its first state (which is sent whole on
   * connecting) before it is dropped (default 8 MiB).
   */
  maxUnsentBytes?: number;
  /** Evaluation JSON files or directories of them, read again for each page load. */
  evals?: string[];
}

const MAX_UNSENT_BYTES = 8 * 1024 * 1024;

export interface DashboardServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function startDashboard(dirs: string[], options: DashboardOptions = {}): Promise<DashboardServer> {
  const readers = dirs.map((d, i) => new RunReader(d, i, options.names?.[i]));
  // Each client with the bytes it may leave unsent: its first state plus maxUnsentBytes.
  const clients = new Map<ServerResponse, number>();
  const maxUnsent = options.maxUnsentBytes ?? MAX_UNSENT_BYTES;
  const send = (res: ServerResponse, u: RunUpdate) => res.write(`data: ${JSON.stringify(u)}\n\n`);
  /** Writes to a client, or drops it when it has fallen too far behind (writableLength: bytes not yet handed to the socket). */
  const push = (res: ServerResponse, write: (res: ServerResponse) => void) => {
    if (res.writableLength > clients.get(res)!) {
      clients.delete(res);
      res.destroy();
      return;
    }
    write(res);
  };
  const failed = (r: RunReader, e: unknown): RunUpdate => {
    const problems = [`reading ${r.dir} failed: ${(e as Error).message}`];
    try {
      return { ...r.snapshot(), problems };
    } catch {
      const status = {
        state: "not a run" as const,
        step: 0,
        totalSteps: null,
        etaSeconds: null,
        checkpoint: null,
        detail: "unreadable",
      };
      return { run: r.index, name: r.name, reset: true, rows: [], pairHeader: null, pairRows: [], status, problems };
    }
  };
  /** Each run's whole state now (or why it could not be read). */
  const snapshots = () =>
    readers.map((r) => {
      try {
        return r.snapshot();
      } catch (e) {
        return failed(r, e);
      }
    });

  const poll = () => {
    for (const r of readers) {
      let u: RunUpdate | null;
      try {
        u = r.poll();
      } catch (e) {
        u = failed(r, e);
      }
      if (u) for (const c of clients.keys()) push(c, (res) => send(res, u));
    }
  };

  const host = options.host ?? "127.0.0.1";
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    // Bound to loopback, only a loopback Host is served: a web page that rebinds its own name to
    // 127.0.0.1 (DNS rebinding) must not read the runs from the user's browser.
    const asked = (req.headers.host ?? "").replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
    if (isLoopback(host) && !isLoopback(asked)) {
      res.writeHead(403, { "content-type": "text/plain" }).end(`Host '${asked}' is not served\n`);
      return;
    }
    if (req.method !== "GET") {
      res.writeHead(405, { allow: "GET" }).end("GET only\n");
      return;
    }
    if (path === "/" || path === "/index.html") {
      // The runs' state goes into the page, so it draws the charts before the first event arrives
      // (and without any, where a proxy holds the stream back); the stream starts with it again.
      const evals = options.evals?.length ? readEvalResults(options.evals) : [];
      const page = dashboardHtml({ live: true, updates: snapshots(), evals });
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(page);
    } else if (path === "/events") {
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        connection: "keep-alive",
      });
      res.write("retry: 1000\n\n");
      for (const u of snapshots()) send(res, u);
      clients.set(res, res.writableLength + maxUnsent);
      req.on("close", () => clients.delete(res));
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${path}\n`);
    }
  };
  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(`dashboard error: ${(e as Error).message}\n`);
    }
  });
  // Listening first: a bad or busy port fails here, before any timer could keep the process alive.
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    try {
      server.listen(options.port ?? 0, host, () => {
        server.off("error", reject);
        resolve();
      });
    } catch (e) {
      reject(e as Error); // a port out of range throws at once
    }
  });
  const { port } = server.address() as AddressInfo;
  poll();
  const timer = setInterval(poll, options.intervalMs ?? 500);
  const heartbeat = setInterval(() => {
    for (const c of clients.keys()) push(c, (res) => res.write(": keep-alive\n\n"));
  }, 15_000);
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        clearInterval(heartbeat);
        for (const c of clients.keys()) c.end();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
