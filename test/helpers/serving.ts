// A tiny chat model with decisive logits (every weight drawn at scale 0.3, so the argmax is not a
// near-tie that batching noise could flip), and `omni-dpo serve` started on a free loopback port.
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { torch, saveModel } from "../../src/index.js";
import { loadModel } from "../../src/models/auto.js";
import { packageRoot } from "../../src/util/package-root.js";
import { writeToyModel } from "./toy.js";

export function writeSharpChatModel(dir: string, seed = 3): string {
  writeToyModel(dir, { chatTemplate: "chatml", seed });
  const model = loadModel(dir);
  torch.manualSeed(seed);
  torch.noGrad(() =>
    torch.tidy(() => {
      for (const [name, p] of model.namedParameters()) {
        const v = torch.randn(p.shape).mul(0.3);
        model.setParameter(name, /norm/.test(name) ? v.add(1) : v);
      }
    }),
  );
  saveModel(model, dir);
  model.dispose();
  return dir;
}

export interface ServeProcess {
  url: string;
  child: ChildProcess;
  log: string[];
  stop(): Promise<void>;
}

/** Starts `omni-dpo serve` on port 0 (a free loopback port) and waits for the line that says where. */
export function startServeProcess(args: string[]): Promise<ServeProcess> {
  const cli = join(packageRoot(), "dist", "src", "cli", "main.js");
  const child = spawn(process.execPath, [cli, "serve", "--port", "0", "--quiet", ...args], {
    env: { ...process.env, OMP_NUM_THREADS: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log: string[] = [];
  child.stderr!.on("data", (d: Buffer) => log.push(d.toString()));
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      const m = /at (http:\/\/\S+)/.exec(line);
      if (!m) return;
      resolve({
        url: m[1],
        child,
        log,
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) {
              done();
              return;
            }
            child.once("exit", () => done());
            child.kill("SIGTERM");
          }),
      });
    });
    child.once("exit", (code) => reject(new Error(`serve exited with ${code}: ${log.join("")}`)));
  });
}

export interface Proxy {
  url: string;
  requests: { path: string; authorization?: string; status: number }[];
  close(): Promise<void>;
}

/**
 * A flaky network in front of a real server: answers the first `failures` requests with the
 * given statuses itself, delays the rest by `delayMs` and forwards them. Records what it saw.
 */
export async function startProxy(
  target: string,
  options: { failures?: number[]; delayMs?: number } = {},
): Promise<Proxy> {
  const { createServer } = await import("node:http");
  const failures = [...(options.failures ?? [])];
  const requests: Proxy["requests"] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const status = failures.shift();
      const path = (req.url ?? "").replace(/^\/v1/, "");
      if (status !== undefined) {
        requests.push({ path, authorization: req.headers.authorization, status });
        res.writeHead(status, { "content-type": "application/json", "retry-after-ms": "10" }).end(
          JSON.stringify({
            error: { message: `injected ${status}`, type: "server_error", param: null, code: null },
          }),
        );
        return;
      }
      setTimeout(() => {
        const body = req.method === "POST" ? Buffer.concat(chunks) : undefined;
        fetch(`${target}${path}`, { method: req.method, headers: { "content-type": "application/json" }, body }).then(
          async (r) => {
            requests.push({ path, authorization: req.headers.authorization, status: r.status });
            const type = r.headers.get("content-type") ?? "application/json";
            res.writeHead(r.status, { "content-type": type }).end(Buffer.from(await r.arrayBuffer()));
          },
          (e: Error) => {
            res.writeHead(502).end(e.message);
          },
        );
      }, options.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Runs the CLI without blocking this process's event loop (a proxy or server here keeps serving). */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const cli = join(packageRoot(), "dist", "src", "cli", "main.js");
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, OMP_NUM_THREADS: "1", ...env } });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => child.on("close", (status) => resolve({ status, stdout, stderr })));
}
