// `omni-dpo dashboard`'s server: node:http only. GET / is the page; GET /events is a
// server-sent-event stream: each run's full state when a client connects, then what each poll
// of the run directories finds appended (or a run's full state again when a file was
// replaced). Reading errors become problems on the page; a request never takes the server down.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { RunReader, type RunUpdate } from "./run-data.js";
import { dashboardHtml } from "./dashboard-page.js";

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
}

export interface DashboardServer { url: string; server: Server; close(): Promise<void> }

export async function startDashboard(dirs: string[], options: DashboardOptions = {}): Promise<DashboardServer> {
  const readers = dirs.map((d, i) => new RunReader(d, i, options.names?.[i]));
  const clients = new Set<ServerResponse>();
  const send = (res: ServerResponse, u: RunUpdate) => res.write(`data: ${JSON.stringify(u)}\n\n`);
  const failed = (r: RunReader, e: unknown): RunUpdate => ({
    ...r.snapshot(), problems: [`reading ${r.dir} failed: ${(e as Error).message}`],
  });
  const page = dashboardHtml({ live: true });

  const poll = () => {
    for (const r of readers) {
      let u: RunUpdate | null;
      try { u = r.poll(); } catch (e) { u = failed(r, e); }
      if (u) for (const c of clients) send(c, u);
    }
  };
  poll();
  const timer = setInterval(poll, options.intervalMs ?? 500);

  const host = options.host ?? "127.0.0.1";
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    // Bound to loopback, only a loopback Host is served: a web page that rebinds its own name to
    // 127.0.0.1 (DNS rebinding) must not read the runs from the user's browser.
    const asked = (req.headers.host ?? "").replace(/:\d+$/, "").replace(/^\[(.*)\]$/, "$1");
    if (isLoopback(host) && !isLoopback(asked)) { res.writeHead(403, { "content-type": "text/plain" }).end(`Host '${asked}' is not served\n`); return; }
    if (req.method !== "GET") { res.writeHead(405, { allow: "GET" }).end("GET only\n"); return; }
    if (path === "/" || path === "/index.html") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" }).end(page);
    } else if (path === "/events") {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store", connection: "keep-alive" });
      res.write("retry: 1000\n\n");
      for (const r of readers) {
        try { send(res, r.snapshot()); } catch (e) { send(res, failed(r, e)); }
      }
      clients.add(res);
      req.on("close", () => clients.delete(res));
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: ${path}\n`);
    }
  };
  const server = createServer((req, res) => {
    try { handle(req, res); } catch (e) {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(`dashboard error: ${(e as Error).message}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => { server.off("error", reject); resolve(); });
  });
  const { port } = server.address() as AddressInfo;
  const heartbeat = setInterval(() => { for (const c of clients) c.write(": keep-alive\n\n"); }, 15_000);
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/`,
    server,
    close: () => new Promise<void>((resolve) => {
      clearInterval(timer);
      clearInterval(heartbeat);
      for (const c of clients) c.end();
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
