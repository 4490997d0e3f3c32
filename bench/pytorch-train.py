# The PyTorch peer of bench/train.bench.ts: the same MobileLLM (Llama-style: RMSNorm, rotary
# embedding, GQA attention with the causal mask, SwiGLU, shared input/output embedding, optional
# immediate block-wise layer sharing) trained with AdamW in fp32 on random tokens, timed per
# optimizer step. bench/train.bench.ts runs it as a child process, interleaved with our own runs,
# so the ratio is measured on one machine in one run.
#
#   python3 bench/pytorch-train.py '<config JSON>' --threads 1 --batch 16 --seq 256 --steps 3
#
# The config JSON uses our field names (src/model/config.ts: vocabSize, hiddenSize, ...). Prints one
# JSON line: {"tokensPerSecond", "msPerStep", "threads", "blas", "loss"}.
import argparse
import ctypes
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, D, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(D))
        self.eps = eps

    def forward(self, x):  # x [B, T, D]
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):  # [..., Dh] -> [-x2, x1]
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.H, self.KV, self.Dh = c["numHeads"], c["numKvHeads"], c["headDim"]
        D = c["hiddenSize"]
        self.q_proj = nn.Linear(D, self.H * self.Dh, bias=False)
        self.k_proj = nn.Linear(D, self.KV * self.Dh, bias=False)
        self.v_proj = nn.Linear(D, self.KV * self.Dh, bias=False)
        self.o_proj = nn.Linear(self.H * self.Dh, D, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.H, self.Dh).transpose(1, 2)    # [B, H, T, Dh]
        k = self.k_proj(x).view(B, T, self.KV, self.Dh).transpose(1, 2)   # [B, KV, T, Dh]
        v = self.v_proj(x).view(B, T, self.KV, self.Dh).transpose(1, 2)   # [B, KV, T, Dh]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.H // self.KV                                           # GQA: each kv head serves rep query heads
        k = k.repeat_interleave(rep, dim=1)                               # [B, H, T, Dh]
        v = v.repeat_interleave(rep, dim=1)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.Dh) + mask      # [B, H, T, T]
        att = torch.softmax(scores, dim=-1) @ v                           # [B, H, T, Dh]
        return self.o_proj(att.transpose(1, 2).reshape(B, T, self.H * self.Dh))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        D, Fh = c["hiddenSize"], c["intermediateSize"]
        self.gate_proj = nn.Linear(D, Fh, bias=False)
        self.up_proj = nn.Linear(D, Fh, bias=False)
        self.down_proj = nn.Linear(Fh, D, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hiddenSize"], c["rmsNormEps"])
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c["hiddenSize"], c["rmsNormEps"])
        self.mlp = MLP(c)

    def forward(self, h, cos, sin, mask):
        h = h + self.self_attn(self.input_layernorm(h), cos, sin, mask)
        return h + self.mlp(self.post_attention_layernorm(h))


class MobileLLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c["vocabSize"], c["hiddenSize"])
        self.layers = nn.ModuleList([Block(c) for _ in range(c["numLayers"])])
        self.norm = RMSNorm(c["hiddenSize"], c["rmsNormEps"])
        self.lm_head = None if c["shareEmbedding"] else nn.Linear(c["hiddenSize"], c["vocabSize"], bias=False)
        Dh, P = c["headDim"], c["maxPositions"]
        inv = 1.0 / (c["ropeTheta"] ** (torch.arange(0, Dh, 2, dtype=torch.float32) / Dh))
        freqs = torch.outer(torch.arange(P, dtype=torch.float32), inv)  # [P, Dh/2]
        emb = torch.cat((freqs, freqs), dim=-1)                          # [P, Dh]
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)

    def forward(self, ids):  # ids [B, T] -> logits [B, T, V]
        T = ids.shape[1]
        mask = torch.full((T, T), float("-inf")).triu(1)                # causal
        cos, sin = self.cos[:T], self.sin[:T]
        h = self.embed_tokens(ids)
        for layer in self.layers:
            h = layer(h, cos, sin, mask)
            if self.c["layerSharing"]:                                   # immediate block-wise sharing: apply twice
                h = layer(h, cos, sin, mask)
        h = self.norm(h)
        return h @ self.embed_tokens.weight.t() if self.lm_head is None else self.lm_head(h)


def blas_in_use():
    """Which BLAS library this process loaded, and for OpenBLAS the kernel (core) it chose."""
    libs = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "blas" in path.lower():
                libs.add(path)
    for path in sorted(libs):
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            return "OpenBLAS %s, core %s (%s)" % (lib.openblas_get_config().decode().split()[1],
                                                   lib.openblas_get_corename().decode(), path)
        except (OSError, AttributeError, IndexError):
            continue
    return "not OpenBLAS: " + (", ".join(sorted(libs)) or "no BLAS library loaded")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    c = json.loads(a.config)
    model = MobileLLM(c)
    for n, p in model.named_parameters():  # as src/train/init.ts: N(0, 0.02), norms at 1
        if "norm" not in n:
            nn.init.normal_(p, std=0.02)
    # the Hugging Face Trainer's groups: no weight decay on norm weights (src/train/adamw.ts)
    decay = [p for n, p in model.named_parameters() if "norm" not in n]
    no_decay = [p for n, p in model.named_parameters() if "norm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
    ids = torch.randint(0, c["vocabSize"], (a.batch, a.seq))

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, c["vocabSize"]), ids[:, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    ms = (time.perf_counter() - t0) * 1000 / a.steps
    print(json.dumps({"tokensPerSecond": a.batch * a.seq / (ms / 1000), "msPerStep": ms, "threads": torch.get_num_threads(),
                      "blas": blas_in_use(), "loss": loss}))


if __name__ == "__main__":
    main()
