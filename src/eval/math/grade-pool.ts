// Grading beside generation: a problem's outputs are graded on worker threads while the main
// thread generates the next batch (symbolic checks can take as long as generating). The verdicts
// are gradeAgainstGold's, as on the main thread; with no threads, grading runs inline.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { gradeAgainstGold, type MathGrade } from "./grade.js";
import type { GradeTask } from "./grade-worker.js";

export interface Grader {
  /** The grades of one problem's outputs, in order. */
  grade(outputs: string[], gold: string, dataset: string): Promise<MathGrade[]>;
  /** Ends the threads (pending grades are rejected). */
  close(): Promise<void>;
}

/** Threads by default: the cores the main thread leaves, at most 4; none on one core. */
export function defaultGradeThreads(): number {
  return Math.min(4, availableParallelism() - 1);
}

/** A grader over `threads` worker threads, or grading inline when `threads` is 0. */
export function createGrader(threads: number): Grader {
  if (threads <= 0) {
    return {
      grade: async (outputs, gold, dataset) => outputs.map((o) => gradeAgainstGold(o, gold, dataset)),
      close: async () => {},
    };
  }
  return new WorkerGrader(threads);
}

interface Pending {
  task: GradeTask;
  resolve: (grades: MathGrade[]) => void;
  reject: (e: Error) => void;
}

class WorkerGrader implements Grader {
  readonly #threads: number;
  readonly #idle: Worker[] = [];
  readonly #busy = new Map<Worker, Pending>();
  readonly #queue: Pending[] = [];
  #started = 0;
  #nextId = 0;

  constructor(threads: number) {
    this.#threads = threads;
  }

  grade(outputs: string[], gold: string, dataset: string): Promise<MathGrade[]> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ task: { id: this.#nextId++, outputs, gold, dataset }, resolve, reject });
      this.#dispatch();
    });
  }

  async close(): Promise<void> {
    const workers = [...this.#idle, ...this.#busy.keys()];
    for (const p of [...this.#busy.values(), ...this.#queue.splice(0)]) p.reject(new Error("the grader was closed"));
    this.#busy.clear();
    this.#idle.length = 0;
    await Promise.all(workers.map((w) => w.terminate()));
  }

  /** Hands queued tasks to idle threads, starting threads (lazily) up to the limit. */
  #dispatch(): void {
    while (this.#queue.length > 0) {
      const worker = this.#idle.pop() ?? (this.#started < this.#threads ? this.#start() : undefined);
      if (!worker) return;
      const pending = this.#queue.shift()!;
      this.#busy.set(worker, pending);
      worker.postMessage(pending.task);
    }
  }

  #start(): Worker {
    this.#started++;
    const worker = new Worker(new URL("./grade-worker.js", import.meta.url));
    worker.on("message", (m: { id: number; grades?: MathGrade[]; error?: string }) => {
      const pending = this.#busy.get(worker);
      this.#busy.delete(worker);
      this.#idle.push(worker);
      if (pending) {
        if (m.error !== undefined) pending.reject(new Error(`grading: ${m.error}`));
        else pending.resolve(m.grades!);
      }
      this.#dispatch();
    });
    worker.on("error", (e) => {
      // a dead thread fails its task; the others carry on
      const pending = this.#busy.get(worker);
      this.#busy.delete(worker);
      this.#started--;
      pending?.reject(e);
      this.#dispatch();
    });
    return worker;
  }
}
