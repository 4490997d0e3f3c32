// The optimizer of the MobileLLM recipe (pretrain.sh): AdamW, lr 5e-4, betas (0.9, 0.95),
// eps 1e-8, weight decay 0.1, gradient clipping by global norm 1.0 (the Hugging Face Trainer's
// default max_grad_norm), and a cosine learning-rate schedule after a linear warmup.
// All three are flat loops over the one parameter buffer (see params.ts).

import type { Allocator, Kernels } from "../kernels/kernels.js";
import { createTsKernels } from "../kernels/ts/index.js";
import type { ParamLayout } from "./params.js";

export interface AdamWConfig {
  lr: number; // peak learning rate
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number; // decoupled; applied to the parameter groups that decay (see decayGroups)
}

export const ADAMW_DEFAULTS: AdamWConfig = { lr: 5e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

/** Adam's moment estimates, same layout as the parameters. */
export interface AdamWState {
  m: Float32Array;
  v: Float32Array;
  /** Optimizer steps taken so far (t of the bias correction). */
  step: number;
}

/** Zero moments for n parameters, in the memory of the backend that will update them. */
export function allocAdamW(n: number, k: Allocator = REFERENCE): AdamWState {
  return { m: k.allocF32(n), v: k.allocF32(n), step: 0 };
}

/** A run of parameters [offset, offset + size) of the flat buffer, decayed or not. */
export interface ParamGroup {
  offset: number;
  size: number;
  decay: boolean;
}

/**
 * The Hugging Face Trainer's two parameter groups (Trainer.create_optimizer /
 * get_decay_parameter_names), which the published pretrain.py uses unchanged: weight decay applies
 * to every parameter except biases and the weights of normalization layers; Llama's
 * modeling code registers LlamaRMSNorm in ALL_LAYERNORM_LAYERS, so no RMSNorm weight decays.
 * Why: a norm weight is a per-channel gain whose natural value is 1, and decay would pull it
 * towards 0, shrinking the activations instead of regularizing a mapping. MobileLLM has no biases;
 * the embedding (shared with the output layer) decays. Adjacent tensors of one kind are merged.
 */
export function decayGroups(layout: ParamLayout): ParamGroup[] {
  const groups: ParamGroup[] = [];
  for (const t of layout.tensors) {
    const decay = !/(^|\.|_)norm\.weight$|layernorm\.weight$|\.bias$/.test(t.name);
    const last = groups.at(-1);
    if (last && last.decay === decay && last.offset + last.size === t.offset) last.size += t.size;
    else groups.push({ offset: t.offset, size: t.size, decay });
  }
  return groups;
}

const REFERENCE = createTsKernels();

/**
 * One torch.optim.AdamW step at learning rate `lr` over the parameter groups (default: one group,
 * everything decays), with the kernels of the backend that owns the buffers (default: the TS
 * reference, for plain arrays). Per element, in float64, stored as f32 (see Kernels.adamw):
 *   w ← w·(1 − lr·wd);  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
 *   w ← w − lr/(1−β1ᵗ) · m / (sqrt(v)/sqrt(1−β2ᵗ) + eps)
 */
export function adamwStep(
  w: Float32Array,
  g: Float32Array,
  s: AdamWState,
  o: AdamWConfig,
  lr: number,
  groups: ParamGroup[] = [{ offset: 0, size: w.length, decay: true }],
  k: Kernels = REFERENCE,
): void {
  s.step++;
  for (const { offset, size, decay } of groups) {
    const end = offset + size;
    k.adamw(
      w.subarray(offset, end),
      g.subarray(offset, end),
      s.m.subarray(offset, end),
      s.v.subarray(offset, end),
      size,
      lr,
      o.beta1,
      o.beta2,
      o.eps,
      decay ? o.weightDecay : 0,
      s.step,
    );
  }
}

/** The global L2 norm of all gradients (float64 sum). */
export function gradNorm(g: Float32Array): number {
  let ss = 0;
  for (let i = 0; i < g.length; i++) ss += g[i]! * g[i]!;
  return Math.sqrt(ss);
}

/**
 * torch.nn.utils.clip_grad_norm_: if the global norm exceeds maxNorm, scale every gradient by
 * maxNorm / (norm + 1e-6). Returns the norm before clipping.
 */
export function clipGradNorm(g: Float32Array, maxNorm: number): number {
  const norm = gradNorm(g);
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) for (let i = 0; i < g.length; i++) g[i]! *= coef;
  return norm;
}

/**
 * Learning rate for optimizer step `step` (0-based, the step about to be taken), as the Hugging
 * Face cosine schedule with warmup computes it, but decaying to a floor of minRatio·peak:
 *   step < warmup:  peak · step / warmup
 *   after:          peak · (minRatio + (1 − minRatio) · ½(1 + cos(π · progress)))
 * with progress = (step − warmup) / (total − warmup).
 */
export function cosineLr(step: number, peak: number, warmup: number, total: number, minRatio = 0.1): number {
  if (step < warmup) return (peak * step) / Math.max(1, warmup);
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}
