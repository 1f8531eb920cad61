// One rank of the collectives test (collectives.test.ts starts one process per rank). Prints
// one JSON line with what each collective returned; a failure prints the error and exits 1.
import { torch } from "../../src/index.js";

const rank = Number(process.env.RANK);
const worldSize = Number(process.env.WORLD_SIZE);
const pg = torch.distributed.ProcessGroup.init({
  rank,
  worldSize,
  masterAddr: process.env.MASTER_ADDR!,
  masterPort: Number(process.env.MASTER_PORT),
  backend: "gloo",
  timeoutMs: Number(process.env.TIMEOUT_MS ?? 20000),
});
const out: Record<string, unknown> = { rank };
torch.tidy(() => {
  // float64 sum of rank-dependent values, two tensors at once.
  const a = torch.tensor([rank + 0.25, 10 * rank], { dtype: "float64" });
  const b = torch.tensor(
    [
      [rank, 1],
      [2, 3],
    ],
    { dtype: "float32" },
  );
  pg.allReduce([a, b]);
  out.sum = [a.toArray(), b.toArray()];
  const m = torch.tensor([rank, -rank], { dtype: "float32" });
  pg.allReduce([m], "max");
  out.max = m.toArray();
  const c = torch.tensor([rank === 1 ? 7 : 0], { dtype: "int64" });
  pg.broadcast([c], 1);
  out.broadcast = c.toArray();
  // Summed into rank 1's copy only.
  const r = torch.tensor([rank + 1, 3], { dtype: "float64" });
  pg.reduceAsync(r, 1).wait();
  if (rank === 1) out.reduce = r.toArray();
  out.gather = pg.allGather(torch.tensor([rank * 2], { dtype: "float64" })).map((t) => t.toArray());
  pg.barrier();
  out.shared = pg.shareString("setting", rank === 0 ? "from rank 0" : null);
  if (process.env.DIE_AFTER_SETUP === String(rank)) process.exit(3);
  if (process.env.DIE_AFTER_SETUP) {
    const x = torch.tensor([1], { dtype: "float32" });
    try {
      pg.allReduce([x]);
      out.afterDeath = "no error";
    } catch (e) {
      out.afterDeath = (e as Error).message;
    }
  }
});
console.log(JSON.stringify(out));
