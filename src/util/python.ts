// Finds a Python that has PyTorch and runs scripts in it. Benchmarks compare against PyTorch
// in the same run, and parity tests check values against it.
import { spawnSync } from "node:child_process";

let cached: string | null | undefined;

/** A python executable that can `import torch`, or null. OMNI_DPO_PYTHON wins when set. */
export function torchPython(): string | null {
  if (cached !== undefined) return cached;
  const candidates = [process.env.OMNI_DPO_PYTHON, "python3", "/usr/bin/python3", "python"].filter(Boolean) as string[];
  cached = null;
  for (const exe of candidates) {
    const r = spawnSync(exe, ["-c", "import torch"], { encoding: "utf8" });
    if (r.status === 0) {
      cached = exe;
      break;
    }
  }
  return cached;
}

export const NO_TORCH_PYTHON = "no python3 with torch (apt-get install python3-torch, or set OMNI_DPO_PYTHON)";

/**
 * Runs a Python script (source text, or a file path with `file: true`) with `input` as JSON
 * on stdin and returns the JSON object printed on the last line of stdout, run by the Python that
 * has torch unless `options.python` names another.
 */
export function runPythonJson<T = unknown>(
  script: string,
  input: unknown = null,
  options: { file?: boolean; env?: NodeJS.ProcessEnv; args?: string[]; python?: string } = {},
): T {
  // `python`: another interpreter, for scripts that need only the standard library or jinja2.
  const exe = options.python ?? torchPython();
  if (!exe) throw new Error(NO_TORCH_PYTHON);
  const argv = options.file ? [script, ...(options.args ?? [])] : ["-c", script, ...(options.args ?? [])];
  const r = spawnSync(exe, argv, {
    input: JSON.stringify(input),
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, PYTHONUNBUFFERED: "1", ...options.env },
  });
  if (r.status !== 0) throw new Error(`python failed (exit ${r.status}):\n${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as T;
}
