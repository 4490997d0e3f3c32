#!/usr/bin/env python3
# Reference for the weight-decay mask of the Hugging Face Trainer (tests/train-optim.test.ts):
# two torch.optim.AdamW steps on the tiny-gqa fixture's weights with its reference gradients
# (grad.* of expected.safetensors), with the parameter groups that Trainer.create_optimizer
# builds: weight decay for every parameter except biases and the weights of modules in
# ALL_LAYERNORM_LAYERS (LlamaRMSNorm is registered there), no decay for the rest.
# The modules are rebuilt here by name (an RMSNorm weight is a module "...norm" / "...layernorm"
# with one [D] parameter), so the script needs torch and numpy only (Debian python3-torch), not
# transformers. Writes the first 256 elements of each updated tensor (F32, safetensors).
# Usage: /usr/bin/python3 scripts/adamw-mask-fixture.py tests/fixtures/tiny-gqa tests/fixtures/adamw-mask/expected.safetensors
import json
import struct
import sys

import numpy as np
import torch

LR, BETAS, EPS, WEIGHT_DECAY, STEPS, KEEP = 1e-2, (0.9, 0.95), 1e-8, 0.1, 2, 256


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"]).copy()
    return out


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def is_norm_weight(name):
    # the Trainer's test: the parameter's module is in ALL_LAYERNORM_LAYERS (here: an RMSNorm)
    module = name.rsplit(".", 1)[0]
    return module.endswith("norm") or module.endswith("layernorm")


fixture, out = sys.argv[1], sys.argv[2]
weights = read_safetensors(f"{fixture}/model.safetensors")
expected = read_safetensors(f"{fixture}/expected.safetensors")
params = {n: torch.nn.Parameter(torch.from_numpy(w)) for n, w in weights.items()}
for n, p in params.items():
    p.grad = torch.from_numpy(expected[f"grad.{n}"])
decay = [p for n, p in params.items() if not is_norm_weight(n) and not n.endswith(".bias")]
no_decay = [p for n, p in params.items() if is_norm_weight(n) or n.endswith(".bias")]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}],
                        lr=LR, betas=BETAS, eps=EPS)
for _ in range(STEPS):
    opt.step()
result = {f"adamw.{n}": p.detach().numpy().reshape(-1)[:KEEP] for n, p in params.items()}
write_safetensors(out, result, {
    "lr": str(LR), "betas": json.dumps(BETAS), "eps": str(EPS), "weight_decay": str(WEIGHT_DECAY), "steps": str(STEPS),
    "kept": f"first {KEEP} elements of each tensor", "torch": torch.__version__,
    "no_decay": json.dumps([n for n in params if is_norm_weight(n) or n.endswith(".bias")]),
})
