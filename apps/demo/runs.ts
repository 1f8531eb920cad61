// The pool of worker processes that runs the demo's units of work (apps/demo/jobs.ts). A job is
// self-contained (a recipe for `omni-dpo train`'s trainer, or a sampling request) and its result
// depends on its inputs only, so jobs run in any order on any worker and the demo's numbers do
// not depend on how many cores ran them.
import { fork, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadModel, loadTrainConfig, sampleAndScore, train, trainRewardModel } from "../../src/index.js";
import { arithScorer, arithTokenizer } from "../tasks/arith/index.js";
import { greedyCorrect } from "./evaluate.js";
import { pairwiseAccuracy, scoreSamples } from "./reward-model.js";
import type { Job, JobResult } from "./jobs.js";

export type { Job, JobResult, RewardAccuracyJob, RewardModelJob, RewardScoreJob, SampleJob, TrainJob } from "./jobs.js";

/** Runs one job in this process (a worker calls it). */
export async function executeJob(job: Job): Promise<JobResult<Job>> {
  const tokenizer = arithTokenizer();
  if (job.kind === "reward-model") {
    const start = Date.now();
    const { config } = loadTrainConfig(job.recipe);
    await trainRewardModel(config);
    return { seconds: (Date.now() - start) / 1000 };
  }
  if (job.kind === "reward-accuracy") return pairwiseAccuracy(job.dir, tokenizer, job.pairs);
  if (job.kind === "reward-score") return scoreSamples(job.dir, tokenizer, job.samples);
  if (job.kind === "sample") {
    const sft = loadModel(job.sftDir);
    try {
      return await sampleAndScore(sft, tokenizer, job.prompts, arithScorer({ noise: job.judgeNoise, seed: job.seed }), {
        samples: job.samples,
        temperature: job.temperature,
        maxNewTokens: 64,
        seed: job.seed,
      });
    } finally {
      sft.dispose();
    }
  }
  const start = Date.now();
  const { config } = loadTrainConfig(job.recipe);
  await train(config);
  const model = loadModel(config.outputDir);
  try {
    return { correct: greedyCorrect(model, tokenizer, job.evaluate), seconds: (Date.now() - start) / 1000 };
  } finally {
    model.dispose();
    if (job.keepLogs) rmSync(join(config.outputDir, "model.safetensors"), { force: true });
    else rmSync(config.outputDir, { recursive: true, force: true });
  }
}

/** Worker processes taking jobs from one queue; a worker that dies fails the pool with its job named. */
export class JobPool {
  readonly size: number;
  readonly #idle: ChildProcess[] = [];
  readonly #workers: ChildProcess[] = [];
  readonly #queue: { job: Job; resolve: (r: unknown) => void; reject: (e: Error) => void }[] = [];
  readonly #stderr = new Map<ChildProcess, string>();
  #failure: Error | null = null;
  #closed = false;
  done = 0;

  constructor(
    size = availableParallelism(),
    readonly onDone?: (done: number) => void,
  ) {
    this.size = Math.max(1, Math.floor(size));
  }

  run<J extends Job>(job: J): Promise<JobResult<J>> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#queue.push({ job, resolve: resolve as (r: unknown) => void, reject });
      this.#dispatch();
    });
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#workers) w.kill();
  }

  #dispatch(): void {
    while (this.#queue.length && !this.#failure) {
      const worker = this.#idle.pop() ?? (this.#workers.length < this.size ? this.#spawn() : null);
      if (!worker) return;
      const task = this.#queue.shift()!;
      const finish = () => {
        worker.off("message", onMessage);
        worker.off("exit", onExit);
      };
      const onMessage = (m: { id: string; result?: unknown; error?: string }) => {
        if (m.id !== task.job.id) return;
        finish();
        if (m.error !== undefined) {
          this.#fail(new Error(`demo job ${task.job.id} failed:\n${m.error}`));
          task.reject(this.#failure!);
          return;
        }
        this.done++;
        this.onDone?.(this.done);
        this.#idle.push(worker);
        task.resolve(m.result);
        this.#dispatch();
      };
      const onExit = (code: number | null, signal: string | null) => {
        finish();
        if (this.#closed) return;
        const stderr = this.#stderr.get(worker) ?? "";
        this.#fail(
          new Error(
            `demo worker running job ${task.job.id} exited (${signal ?? `code ${code}`})${stderr ? `:\n${stderr}` : ""}`,
          ),
        );
        task.reject(this.#failure!);
      };
      worker.on("message", onMessage);
      worker.on("exit", onExit);
      worker.send(task.job);
    }
  }

  #spawn(): ChildProcess {
    const script = fileURLToPath(new URL("./worker.js", import.meta.url));
    // Own stdout/stderr pipes: the demo's --json output stays one line, and a failure shows the worker's last words.
    const worker = fork(script, [], {
      stdio: ["ignore", "ignore", "pipe", "ipc"],
      env: { ...process.env, OMP_NUM_THREADS: "1" },
    });
    this.#workers.push(worker);
    // Always read it (a full pipe would block the worker); keep the tail for error messages.
    worker.stderr!.on("data", (chunk: Buffer) =>
      this.#stderr.set(worker, ((this.#stderr.get(worker) ?? "") + chunk.toString()).slice(-4000)),
    );
    return worker;
  }

  #fail(e: Error): void {
    if (this.#failure) return;
    this.#failure = e;
    for (const t of this.#queue.splice(0)) t.reject(e);
    this.close();
  }
}
