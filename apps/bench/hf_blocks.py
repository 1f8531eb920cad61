"""transformers' Llama-family building blocks as the PyTorch sides of the benchmarks write them
(bench train's Qwen2 case, bench generate): RMSNorm computed in float32, rotate_half for RoPE."""
import torch


def rms_norm(x, weight, eps):
    """transformers' LlamaRMSNorm: normalise in float32, cast back, then scale."""
    variance = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps)).to(x.dtype)


def rotate_half(x):
    """The second half of the last dimension negated and swapped in front of the first."""
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)
