// A grading thread: answers each { id, outputs, gold, dataset } message with the grades of the
// outputs (or the error), so symbolic checks run beside generation (grade-pool.ts).
import { parentPort } from "node:worker_threads";
import { gradeAgainstGold } from "./grade.js";

export interface GradeTask {
  id: number;
  outputs: string[];
  gold: string;
  dataset: string;
}

parentPort!.on("message", (task: GradeTask) => {
  try {
    const grades = task.outputs.map((o) => gradeAgainstGold(o, task.gold, task.dataset));
    parentPort!.postMessage({ id: task.id, grades });
  } catch (e) {
    parentPort!.postMessage({ id: task.id, error: e instanceof Error ? e.message : String(e) });
  }
});
