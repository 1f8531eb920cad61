// Finds a Python with PyTorch for parity tests, and runs scripts in it. Parity tests skip with
// a printed reason when none exists; CI installs Debian's python3-torch so they run there.
import { spawnSync } from "node:child_process";

let cached: string | null | undefined;

/** A python executable that can `import torch`, or null. OMNI_DPO_PYTHON wins when set. */
export function torchPython(): string | null {
  if (cached !== undefined) return cached;
  const candidates = [process.env.OMNI_DPO_PYTHON, "python3", "/usr/bin/python3", "python"].filter(Boolean) as string[];
  cached = null;
  for (const exe of candidates) {
    const r = spawnSync(exe, ["-c", "import torch"], { encoding: "utf8" });
    if (r.status === 0) { cached = exe; break; }
  }
  return cached;
}

/** Why parity tests skip here, or null when they can run. */
export function skipReason(): string | null {
  return torchPython() ? null : "no python3 with torch (apt-get install python3-torch, or set OMNI_DPO_PYTHON)";
}

/** Runs `script` with `input` serialised as JSON on stdin; returns the JSON it prints last. */
export function runPython<T = unknown>(script: string, input: unknown = null): T {
  const exe = torchPython();
  if (!exe) throw new Error(skipReason()!);
  const r = spawnSync(exe, ["-c", script], {
    input: JSON.stringify(input), encoding: "utf8", maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, PYTHONUNBUFFERED: "1" },
  });
  if (r.status !== 0) throw new Error(`python failed (${r.status}):\n${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as T;
}
