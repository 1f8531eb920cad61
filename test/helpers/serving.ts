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
  torch.noGrad(() => torch.tidy(() => {
    for (const [name, p] of model.namedParameters()) {
      const v = torch.randn(p.shape).mul(0.3);
      model.setParameter(name, /norm/.test(name) ? v.add(1) : v);
    }
  }));
  saveModel(model, dir);
  model.dispose();
  return dir;
}

export interface ServeProcess { url: string; child: ChildProcess; log: string[]; stop(): Promise<void> }

/** Starts `omni-dpo serve` on port 0 (a free loopback port) and waits for the line that says where. */
export function startServeProcess(args: string[]): Promise<ServeProcess> {
  const cli = join(packageRoot(), "dist", "src", "cli", "main.js");
  const child = spawn(process.execPath, [cli, "serve", "--port", "0", "--quiet", ...args], {
    env: { ...process.env, OMP_NUM_THREADS: "1" }, stdio: ["ignore", "pipe", "pipe"],
  });
  const log: string[] = [];
  child.stderr!.on("data", (d: Buffer) => log.push(d.toString()));
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      const m = /at (http:\/\/\S+)/.exec(line);
      if (!m) return;
      resolve({
        url: m[1], child, log,
        stop: () => new Promise<void>((done) => {
          if (child.exitCode !== null) { done(); return; }
          child.once("exit", () => done());
          child.kill("SIGTERM");
        }),
      });
    });
    child.once("exit", (code) => reject(new Error(`serve exited with ${code}: ${log.join("")}`)));
  });
}
