# PyTorch's own DistributedSampler (shuffle off: the order is given) for the sharding test:
# reads [{"n": N, "world": W}] on stdin, prints each case's shard per rank as JSON.
import json
import sys

from torch.utils.data import DistributedSampler

cases = json.load(sys.stdin)
out = []
for case in cases:
    data = list(range(case["n"]))
    out.append([list(DistributedSampler(data, num_replicas=case["world"], rank=r, shuffle=False)) for r in range(case["world"])])
print(json.dumps(out))
