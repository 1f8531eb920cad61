// Starting ranks for the distributed tests: one Node process per rank with the launcher's
// environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), one thread each.
import { spawn } from "node:child_process";
import { createServer } from "node:net";

export interface RankRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  output: string;
}

/** A TCP port free on loopback right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Runs `script` once per rank and resolves with each rank's exit and output, in rank order. */
export function runRanks(
  script: string,
  worldSize: number,
  env: Record<string, string>,
  args: string[] = [],
): Promise<RankRun[]> {
  return Promise.all(
    Array.from({ length: worldSize }, (_, rank) =>
      runProcess([script, ...args], {
        RANK: String(rank),
        WORLD_SIZE: String(worldSize),
        LOCAL_RANK: String(rank),
        MASTER_ADDR: "127.0.0.1",
        ...env,
      }),
    ),
  );
}

/** Runs node with `args` and the extra environment; resolves when it exits. */
export function runProcess(args: string[], env: Record<string, string>, timeoutMs = 60000): Promise<RankRun> {
  return runCommand(process.execPath, args, env, timeoutMs);
}

/** Runs `command` with `args` (one thread, the extra environment); resolves when it exits, killed after `timeoutMs`. */
export function runCommand(
  command: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 60000,
): Promise<RankRun> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      env: { ...process.env, OMP_NUM_THREADS: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let output = "";
    child.stdout.on("data", (d) => {
      stdout += d;
      output += d;
    });
    child.stderr.on("data", (d) => {
      output += d;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, output });
    });
  });
}
