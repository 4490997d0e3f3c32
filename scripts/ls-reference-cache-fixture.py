#!/usr/bin/env python3
"""Reference logits for layerSharingAttention "reference-cache" (tests/fixtures/tiny-ls).

A float64 transcription of the attention path of facebookresearch/MobileLLM utils/modeling_llama.py
(LlamaModel.forward with layer_sharing, LlamaDecoderLayer, LlamaSdpaAttention) for ONE forward over
the whole prompt with use_cache=True, the release config.json default:

  * the model makes a DynamicCache; each block's attention calls cache.update(k, v, layer_idx), which
    concatenates along the sequence axis. With layer sharing a block runs twice with the same
    layer_idx, so the second run's keys/values are appended after the first run's: key length 2T;
  * no attention_mask is passed, so the SDPA path gets attn_mask=None and is_causal=True (q_len > 1);
    PyTorch's is_causal mask is top-left aligned, tril(ones(L, S)): query i sees keys 0..i, which
    are the FIRST run's keys and values.

Written from the published code's structure, not copied; torch is used for tensors only (float64).
Run: /usr/bin/python3 scripts/ls-reference-cache-fixture.py tests/fixtures/tiny-ls
Writes expected-reference-cache.safetensors (input_ids I64 [T], logits F32 [T, V]).
"""
import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch


def read_safetensors(path):
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        arr = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
        out[name] = torch.from_numpy(arr.astype(np.float64) if t["dtype"] != "I64" else arr.copy())
    return out


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        data = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def rope_cos_sin(T, Dh, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, Dh, 2, dtype=torch.float64) / Dh))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)  # [T, Dh/2]
    emb = torch.cat((freqs, freqs), dim=-1)                              # [T, Dh]
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def sdpa_is_causal(q, k, v):
    """scaled_dot_product_attention(q, k, v, is_causal=True): mask tril(ones(L, S)), top-left aligned."""
    L, S = q.shape[-2], k.shape[-2]
    scores = (q @ k.transpose(-1, -2)) / (q.shape[-1] ** 0.5)
    allowed = torch.ones(L, S, dtype=torch.bool).tril(diagonal=0)
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def attention(w, p, x, cos, sin, cache, layer_idx, c):
    """LlamaSdpaAttention.forward; `cache` is None for use_cache=False."""
    T = x.shape[0]
    H, KV, Dh = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"]
    q = (x @ w[p + "self_attn.q_proj.weight"].T).view(T, H, Dh).transpose(0, 1)    # [H, T, Dh]
    k = (x @ w[p + "self_attn.k_proj.weight"].T).view(T, KV, Dh).transpose(0, 1)   # [KV, T, Dh]
    v = (x @ w[p + "self_attn.v_proj.weight"].T).view(T, KV, Dh).transpose(0, 1)
    q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    # DynamicCache.update(k, v, layer_idx): append along the sequence axis, return the whole cache.
    if cache is not None:
        if layer_idx in cache:
            k = torch.cat((cache[layer_idx][0], k), dim=-2)
            v = torch.cat((cache[layer_idx][1], v), dim=-2)
        cache[layer_idx] = (k, v)
    k, v = k.repeat_interleave(H // KV, dim=0), v.repeat_interleave(H // KV, dim=0)  # repeat_kv
    out = sdpa_is_causal(q, k, v) if T > 1 else torch.softmax((q @ k.transpose(-1, -2)) / Dh**0.5, -1) @ v
    return out.transpose(0, 1).reshape(T, H * Dh) @ w[p + "self_attn.o_proj.weight"].T


def decoder_layer(w, i, h, cos, sin, cache, c):
    p = f"model.layers.{i}."
    eps = c["rms_norm_eps"]
    h = h + attention(w, p, rms_norm(h, w[p + "input_layernorm.weight"], eps), cos, sin, cache, i, c)
    x = rms_norm(h, w[p + "post_attention_layernorm.weight"], eps)
    gate, up = x @ w[p + "mlp.gate_proj.weight"].T, x @ w[p + "mlp.up_proj.weight"].T
    return h + (torch.nn.functional.silu(gate) * up) @ w[p + "mlp.down_proj.weight"].T


def forward(w, ids, c, use_cache):
    T = len(ids)
    cos, sin = rope_cos_sin(T, c["head_dim"], c["rope_theta"])
    h = w["model.embed_tokens.weight"][torch.tensor(ids)]
    cache = {} if use_cache else None
    for i in range(c["num_hidden_layers"]):
        h = decoder_layer(w, i, h, cos, sin, cache, c)
        if c["layer_sharing"]:
            h = decoder_layer(w, i, h, cos, sin, cache, c)  # same layer_idx: same cache entry
    h = rms_norm(h, w["model.norm.weight"], c["rms_norm_eps"])
    head = w["model.embed_tokens.weight"] if c["share_embedding"] else w["lm_head.weight"]
    return h @ head.T


def main(folder):
    folder = Path(folder)
    c = json.loads((folder / "config.json").read_text())
    assert c["layer_sharing"], "the reference-cache mode only differs on a layer-sharing model"
    w = read_safetensors(folder / "model.safetensors")
    ids = json.loads((folder / "expected.json").read_text())["input_ids"]
    logits = forward(w, ids, c, use_cache=True)
    # Check the transcription: with use_cache=False it must give the fixture's own logits (every
    # application attends over its own keys), computed earlier by an independent reference.
    separate = forward(w, ids, c, use_cache=False)
    known = read_safetensors(folder / "expected.safetensors")["logits"].view(len(ids), -1)
    err = (separate - known).abs().max().item()
    assert err < 1e-5, f"use_cache=False differs from expected.safetensors logits by {err}"
    print(f"use_cache=False vs expected.safetensors: max |diff| {err:.2e}; "
          f"use_cache=True vs use_cache=False: max |diff| {(logits - separate).abs().max().item():.3f}")
    write_safetensors(folder / "expected-reference-cache.safetensors", {
        "input_ids": ("I64", np.asarray(ids, dtype=np.int64)),
        "logits": ("F32", logits.numpy().astype(np.float32)),
    })
    print(f"{folder}/expected-reference-cache.safetensors: logits [{len(ids)}, {logits.shape[1]}]")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/tiny-ls")
