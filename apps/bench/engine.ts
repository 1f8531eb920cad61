// `omni-dpo bench engine`: the tensor engine's throughput and per-op overhead beside PyTorch
// (Python) on the same machine, in the same run, under the same BLAS and thread settings.
import { join } from "node:path";
import { torch } from "../../src/index.js";
import { packageRoot } from "../../src/util/package-root.js";
import { NO_TORCH_PYTHON, runPythonJson, torchPython } from "../../src/util/python.js";
import { formatTable, measure, row, type Row } from "./measure.js";

export interface EngineBenchOptions {
  quick?: boolean;
}
export interface EngineBenchResult {
  rows: Row[];
  environment: {
    torchVersion: string;
    pytorchVersion: string | null;
    threads: number;
    openblasCoretype: string | null;
    coretypeChosenByEngine: boolean;
  };
  note?: string;
}

export function benchEngine(options: EngineBenchOptions = {}): EngineBenchResult {
  const info = torch.buildInfo();
  const cfg = {
    threads: info.threads,
    matmul_sizes: [1024, 2048],
    linear: [512, 1024, 1024] as [number, number, number],
    trial_seconds: options.quick ? 0.05 : 0.25,
  };
  const timing = { trialSeconds: cfg.trial_seconds };
  // PyTorch runs first, then this engine: each side gets a fresh, identical machine state.
  let py: Record<string, number> | null = null;
  let pytorchVersion: string | null = null;
  let note: string | undefined;
  if (torchPython()) {
    const result = runPythonJson<Record<string, number | string>>(
      join(packageRoot(), "apps", "bench", "engine.py"),
      cfg,
      { file: true },
    );
    pytorchVersion = String(result.torch_version);
    py = result as Record<string, number>;
  } else {
    note = `PyTorch columns empty: ${NO_TORCH_PYTHON}`;
  }

  torch.manualSeed(0);
  const omni: Record<string, number> = {};

  for (const n of cfg.matmul_sizes) {
    const [a, b] = [torch.randn([n, n]), torch.randn([n, n])];
    omni[`matmul_${n}`] = measure(() => a.matmul(b).dispose(), timing).secondsPerIteration;
    a.dispose();
    b.dispose();
  }

  const [B, fin, fout] = cfg.linear;
  const x = torch.randn([B, fin]).requiresGrad_();
  const w = torch.randn([fout, fin]).requiresGrad_();
  const bias = torch.randn([fout]).requiresGrad_();
  omni.linear = measure(
    () =>
      torch.tidy(() => {
        torch.linear(x, w, bias).sum().backward();
        x.zeroGrad();
        w.zeroGrad();
        bias.zeroGrad();
      }),
    timing,
  ).secondsPerIteration;
  torch.dispose([x, w, bias]);

  const [s, t] = [torch.randn([4]), torch.randn([4])];
  omni.tiny_add = measure(() => s.add(t).dispose(), timing).secondsPerIteration;
  const g = torch.randn([4]).requiresGrad_();
  omni.tiny_mul_grad = measure(() => g.mul(t).dispose(), timing).secondsPerIteration;
  torch.dispose([s, t, g]);

  const gflops = (flops: number, seconds: number) => flops / seconds / 1e9;
  const rows: Row[] = [];
  for (const n of cfg.matmul_sizes) {
    const flops = 2 * n ** 3;
    rows.push(
      row(
        `matmul ${n}x${n} fp32`,
        "GFLOP/s",
        gflops(flops, omni[`matmul_${n}`]),
        py ? gflops(flops, py[`matmul_${n}`]) : null,
        true,
      ),
    );
  }
  const linearFlops = 6 * B * fin * fout; // forward, grad input, grad weight
  rows.push(
    row(
      `linear fwd+bwd [${B},${fin}]x[${fout},${fin}]`,
      "GFLOP/s",
      gflops(linearFlops, omni.linear),
      py ? gflops(linearFlops, py.linear) : null,
      true,
    ),
  );
  rows.push(row("tiny add [4] (overhead)", "us/op", omni.tiny_add * 1e6, py ? py.tiny_add * 1e6 : null, false));
  rows.push(
    row("tiny mul [4], grad recorded", "us/op", omni.tiny_mul_grad * 1e6, py ? py.tiny_mul_grad * 1e6 : null, false),
  );

  return {
    rows,
    environment: {
      torchVersion: info.torchVersion,
      pytorchVersion,
      threads: info.threads,
      openblasCoretype: info.openblasCoretype,
      coretypeChosenByEngine: info.coretypeChosenByEngine,
    },
    note,
  };
}

export function formatEngineBench(r: EngineBenchResult): string {
  const env = r.environment;
  const blas = env.openblasCoretype
    ? `OPENBLAS_CORETYPE=${env.openblasCoretype} (${env.coretypeChosenByEngine ? "chosen by the engine for this AVX-512 CPU" : "set by the user"})`
    : "OPENBLAS_CORETYPE unset (OpenBLAS picks its own kernels)";
  return [
    `LibTorch ${env.torchVersion} via omni-dpo; PyTorch ${env.pytorchVersion ?? "absent"} via Python; ${env.threads} threads; ${blas}`,
    "",
    formatTable(r.rows),
    "",
    "vs PyTorch: speed relative to PyTorch on this machine in this run (> 1 is faster). Goals: >= 0.95x on large ops, >= 1.0x on per-op overhead.",
    ...(r.note ? [r.note] : []),
  ].join("\n");
}
