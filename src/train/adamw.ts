// The optimizer of the MobileLLM recipe (pretrain.sh): AdamW, lr 5e-4, betas (0.9, 0.95),
// eps 1e-8, weight decay 0.1, gradient clipping by global norm 1.0 (the Hugging Face Trainer's
// default max_grad_norm), and a cosine learning-rate schedule after a linear warmup.
// All three are flat loops over the one parameter buffer (see params.ts).

export interface AdamWConfig {
  lr: number;            // peak learning rate
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;   // decoupled, applied to every tensor (as the fixtures' reference does)
}

export const ADAMW_DEFAULTS: AdamWConfig = { lr: 5e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

/** Adam's moment estimates, same layout as the parameters. */
export interface AdamWState {
  m: Float32Array;
  v: Float32Array;
  /** Optimizer steps taken so far (t of the bias correction). */
  step: number;
}

export function allocAdamW(n: number): AdamWState {
  return { m: new Float32Array(n), v: new Float32Array(n), step: 0 };
}

/**
 * One torch.optim.AdamW step at learning rate `lr` (per-element math in float64, stored as f32):
 *   w ← w·(1 − lr·wd);  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
 *   w ← w − lr/(1−β1ᵗ) · m / (sqrt(v)/sqrt(1−β2ᵗ) + eps)
 */
export function adamwStep(w: Float32Array, g: Float32Array, s: AdamWState, o: AdamWConfig, lr: number): void {
  s.step++;
  const t = s.step;
  const bc1 = 1 - o.beta1 ** t, bc2 = 1 - o.beta2 ** t;
  const stepSize = lr / bc1, bc2Sqrt = Math.sqrt(bc2), decay = 1 - lr * o.weightDecay;
  const m = s.m, v = s.v;
  for (let i = 0; i < w.length; i++) {
    const gi = g[i]!;
    m[i] = o.beta1 * m[i]! + (1 - o.beta1) * gi;
    v[i] = o.beta2 * v[i]! + (1 - o.beta2) * gi * gi;
    w[i] = w[i]! * decay - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / bc2Sqrt + o.eps);
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
  if (coef < 1) for (let i = 0; i < g.length; i++) g[i] *= coef;
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
