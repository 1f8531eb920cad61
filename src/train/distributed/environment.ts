// Which rank this process is: the environment torchrun (and SLURM or Kubernetes wrappers, and
// omni-dpo's own launcher) give each worker. A process without WORLD_SIZE is a plain run.
import { BACKENDS, type Backend } from "../../torch/distributed.js";

export interface DistributedEnv {
  rank: number;
  worldSize: number;
  /** The rank among this machine's processes: which GPU it takes (cuda:LOCAL_RANK). */
  localRank: number;
  masterAddr: string;
  masterPort: number;
  /** OMNI_DPO_BACKEND (the launcher's --backend); null: by device (gloo on CPU, nccl on CUDA). */
  backend: Backend | null;
  /** GLOO_SOCKET_IFNAME, as torch.distributed reads it. */
  socketIfname: string | null;
  /** torchrun's agent already serves the store at MASTER_ADDR:MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True). */
  agentStore: boolean;
}

function integer(env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback?: number): number {
  const text = env[name];
  if (text === undefined || text === "") {
    if (fallback !== undefined) return fallback;
    throw new Error(
      `environment: ${name} is not set (a distributed worker needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT)`,
    );
  }
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`environment: ${name}=${text} must be an integer from ${min} to ${max}`);
  return n;
}

/**
 * This worker's place in a distributed run, or null when WORLD_SIZE is unset (one process).
 * `localRankKey` is the recipe's local_rank (-1: unset); LOCAL_RANK wins, as in transformers.
 */
export function distributedEnv(env: NodeJS.ProcessEnv = process.env, localRankKey = -1): DistributedEnv | null {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === "") return null;
  const worldSize = integer(env, "WORLD_SIZE", 1, 1 << 20);
  const rank = integer(env, "RANK", 0, worldSize - 1);
  const backend = env.OMNI_DPO_BACKEND || null;
  if (backend !== null && !BACKENDS.includes(backend as Backend)) {
    throw new Error(`environment: OMNI_DPO_BACKEND=${backend} must be one of ${BACKENDS.join(", ")}`);
  }
  const masterAddr = env.MASTER_ADDR;
  if (!masterAddr)
    throw new Error(
      "environment: MASTER_ADDR is not set (a distributed worker needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT)",
    );
  return {
    rank,
    worldSize,
    localRank: integer(env, "LOCAL_RANK", 0, 1 << 20, localRankKey >= 0 ? localRankKey : rank),
    masterAddr,
    masterPort: integer(env, "MASTER_PORT", 1, 65535),
    backend: backend as Backend | null,
    socketIfname: env.GLOO_SOCKET_IFNAME || null,
    agentStore: env.TORCHELASTIC_USE_AGENT_STORE === "True",
  };
}
