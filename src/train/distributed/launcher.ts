// The launcher, as torchrun: starts this machine's ranks as child processes with the standard
// environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and
// watches them. A rank that fails (an error, a signal) brings the others down within a bounded
// time, with a message naming it; a signal to the launcher (Ctrl-C) goes to every rank once,
// and they agree on a step, checkpoint it and stop.
//
// Ranks run in process groups of their own, so a terminal's Ctrl-C reaches them once (through
// here), not twice (a second Ctrl-C means "exit now"). Each holds an IPC channel to the
// launcher and exits when it closes: killing the launcher leaves no rank behind.
import { spawn, type ChildProcess } from "node:child_process";
import type { Backend } from "../../torch/distributed.js";

export interface LaunchOptions {
  /** What each rank runs: a Node script and its arguments. */
  script: string;
  args: string[];
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  backend: Backend | null;
  /** After a rank fails, how long the others get to exit on their own before SIGKILL. */
  graceMs?: number;
  /** Where the launcher's own messages go. */
  report?: (message: string) => void;
}

/** Marks a rank started by this launcher (it watches the IPC channel). */
export const LAUNCHED_BY = "OMNI_DPO_LAUNCHER_PID";

/** Checks the launcher's flags; returns what is wrong, naming the flag. */
export function launchProblems(
  o: Pick<LaunchOptions, "nprocPerNode" | "nnodes" | "nodeRank" | "masterPort">,
): string[] {
  const problems: string[] = [];
  if (!Number.isInteger(o.nprocPerNode) || o.nprocPerNode < 1)
    problems.push(`--nproc-per-node must be a positive integer, not ${o.nprocPerNode}`);
  if (!Number.isInteger(o.nnodes) || o.nnodes < 1)
    problems.push(`--nnodes must be a positive integer, not ${o.nnodes}`);
  if (!Number.isInteger(o.nodeRank) || o.nodeRank < 0 || o.nodeRank >= o.nnodes)
    problems.push(`--node-rank must be an integer from 0 to ${o.nnodes - 1}, not ${o.nodeRank}`);
  if (!Number.isInteger(o.masterPort) || o.masterPort < 1 || o.masterPort > 65535)
    problems.push(`--master-port must be from 1 to 65535, not ${o.masterPort}`);
  return problems;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

/** Runs this machine's ranks to the end; resolves with the exit code the launcher should return. */
export function launch(o: LaunchOptions): Promise<number> {
  const problems = launchProblems(o);
  if (problems.length) throw new Error(problems.join("; "));
  const report = o.report ?? ((m: string) => process.stderr.write(`omni-dpo launcher: ${m}\n`));
  const worldSize = o.nnodes * o.nprocPerNode;
  const children: { rank: number; child: ChildProcess; exited: boolean }[] = [];
  return new Promise((resolve) => {
    let failure: { rank: number; code: number } | null = null;
    let signalled: NodeJS.Signals | null = null;
    let killTimer: NodeJS.Timeout | null = null;
    let running = o.nprocPerNode;
    const onSignal = (signal: NodeJS.Signals) => {
      if (signalled) {
        report(`${signal} again: killing every rank now (no checkpoint)`);
        for (const c of children) if (!c.exited) c.child.kill("SIGKILL");
        return;
      }
      signalled = signal;
      report(`${signal}: passed to every rank; they checkpoint after this step and stop (again to kill them now)`);
      for (const c of children) if (!c.exited) c.child.kill(signal);
    };
    const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];
    for (const s of signals) process.on(s, onSignal);
    for (let local = 0; local < o.nprocPerNode; local++) {
      const rank = o.nodeRank * o.nprocPerNode + local;
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        RANK: String(rank),
        WORLD_SIZE: String(worldSize),
        LOCAL_RANK: String(local),
        LOCAL_WORLD_SIZE: String(o.nprocPerNode),
        GROUP_RANK: String(o.nodeRank),
        MASTER_ADDR: o.masterAddr,
        MASTER_PORT: String(o.masterPort),
        [LAUNCHED_BY]: String(process.pid),
        // As torchrun: several ranks on one machine would oversubscribe its cores with a thread pool each.
        OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? (o.nprocPerNode > 1 ? "1" : undefined),
      };
      if (o.backend) env.OMNI_DPO_BACKEND = o.backend;
      if (env.OMP_NUM_THREADS === undefined) delete env.OMP_NUM_THREADS;
      const child = spawn(process.execPath, [o.script, ...o.args], {
        env,
        stdio: ["ignore", "inherit", "inherit", "ipc"],
        detached: true,
      });
      const entry = { rank, child, exited: false };
      children.push(entry);
      child.on("exit", (code, signal) => {
        entry.exited = true;
        running--;
        const stopped = signalled !== null && (code === 130 || code === 0);
        if (!failure && !stopped && (code !== 0 || signal)) {
          failure = { rank, code: code ?? 1 };
          report(`rank ${rank} (pid ${child.pid}) ${describeExit(code, signal)}; stopping the other ranks`);
          for (const c of children) if (!c.exited) c.child.kill("SIGTERM");
          // A rank blocked in a collective cannot run its signal handler; the collective fails
          // when the dead rank's connections close, or at ddp_timeout. This bounds the wait.
          killTimer = setTimeout(() => {
            for (const c of children) if (!c.exited) c.child.kill("SIGKILL");
          }, o.graceMs ?? 15000);
        }
        if (running === 0) {
          if (killTimer) clearTimeout(killTimer);
          for (const s of signals) process.off(s, onSignal);
          if (failure) resolve(failure.code === 0 ? 1 : failure.code);
          else resolve(signalled ? 130 : 0);
        }
      });
    }
  });
}

/** In a rank this launcher started: exit when the launcher is gone (its IPC channel closed). */
export function watchLauncher(): void {
  if (!process.env[LAUNCHED_BY] || !process.send) return;
  process.on("disconnect", () => {
    process.stderr.write(
      `omni-dpo: rank ${process.env.RANK}: the launcher (pid ${process.env[LAUNCHED_BY]}) is gone; exiting\n`,
    );
    process.exit(1);
  });
  // The channel must not keep a finished rank alive.
  process.channel?.unref();
}
