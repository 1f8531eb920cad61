# Serves a TCPStore as torchrun's agent does (workers then connect to it with
# TORCHELASTIC_USE_AGENT_STORE=True): PyTorch's own store, to check the ranks use it. Prints
# "serving" once listening; exits when stdin closes.
import sys
from datetime import timedelta

import torch.distributed as dist

store = dist.TCPStore("127.0.0.1", int(sys.argv[1]), int(sys.argv[2]), True, timedelta(seconds=60), wait_for_workers=False)
print("serving", flush=True)
sys.stdin.read()
