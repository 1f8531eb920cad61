// One of the demo's worker processes (apps/demo/runs.ts starts them): takes jobs from the parent
// over IPC, one at a time, and answers each with its result or its error. Sampling and training
// runs are independent, so the demo spreads them over the machine's cores this way; LibTorch's
// own threads do not help ops this small.
import { torch } from "../../src/index.js";
import { executeJob, type Job } from "./runs.js";

torch.setNumThreads(1);
process.on("message", (job: Job) => {
  void (async () => {
    try {
      process.send!({ id: job.id, result: await executeJob(job) });
    } catch (e) {
      process.send!({ id: job.id, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    }
  })();
});
