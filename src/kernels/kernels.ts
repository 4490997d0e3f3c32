// The kernel interface: every numeric operation of MobileLLM, forward and backward, in one place.
//
// Two implementations share it: `kernels/ts/` (the readable reference, plain loops) and the
// WebAssembly SIMD kernels compiled from `assembly/`. The model code in `src/model/` only ever
// calls these functions, so the same model runs on either backend and the property tests can
// compare the two on identical inputs.
//
// Shape letters used in names throughout the project:
//   T tokens in this call, P positions held in a KV cache, D hidden size (dim), H query heads,
//   KV key/value heads, Dh head dim, F ffn (intermediate) size, V vocab, L layers, I/O matmul in/out.
// A name like `qTHDh` is a row-major Float32Array of shape [T, H, Dh].
//
// Conventions (llm.c style): outputs first, then inputs, then sizes. Kernels never allocate;
// they write into buffers the caller owns. All buffers come from the backend's allocator, so on
// the wasm backend they are views on the module's linear memory and no data is copied between
// JavaScript and WebAssembly inside a forward pass.

/** The kernel backends: "ts" (the readable reference) and "wasm" (the SIMD kernels). */
export type BackendName = "ts" | "wasm";

/**
 * Storage dtype of a weight tensor. Activations are always f32. q8_0 / q4_0 are llama.cpp's block
 * formats (blocks of 32 values with an f16 scale; src/kernels/quant.ts), for matrices whose rows
 * are a multiple of 32 long.
 */
export type DType = "f32" | "f16" | "bf16" | "q8_0" | "q4_0";

/**
 * A weight tensor in its storage dtype. Linear weights are PyTorch's `[out, in]` row-major
 * (y = x Wᵀ). f16 and bf16 are kept as their raw 16-bit patterns and widened inside the kernels,
 * so resident weight memory equals the checkpoint's size. A backend may remember facts about a
 * 16-bit weight's values after its first use (the wasm backend checks each f16 matrix for Inf/NaN
 * once), so treat `data` as read-only once a kernel has seen it: make a new Weight to change it.
 */
export interface Weight {
  dtype: DType;
  shape: number[];
  /**
   * f32 → Float32Array; f16/bf16 → Uint16Array of raw bits (length = product of shape);
   * q8_0/q4_0 → Uint8Array of blocks, row after row (length = rows · row bytes). The wasm backend
   * rewrites a q4_0 matrix's blocks in place into groups of four rows at its first matmul
   * (src/kernels/quant.ts Q4_0X4, recorded with the bytes: isGroupedQ4); code reading the bytes of
   * a quantized weight calls plainBlocks(w), which restores this layout in place.
   */
  data: Float32Array | Uint16Array | Uint8Array;
}

/** What declares buffers: a Kernels backend, or the measuring allocator of a memory plan (plan.ts). */
export interface Allocator {
  /** A zero-filled f32 buffer owned by this backend. */
  allocF32(n: number): Float32Array;
  /** A zero-filled u16 buffer (f16/bf16 weight bits) owned by this backend. */
  allocU16(n: number): Uint16Array;
  /** A zero-filled byte buffer (q8_0/q4_0 weight blocks) owned by this backend. */
  allocU8(n: number): Uint8Array;
}

export interface Kernels extends Allocator {
  /** Backend name, as accepted by `loadModel(..., { backend })`. */
  readonly name: BackendName;
  /** Threads the kernels run on (1 when absent). Results are bit-identical for every count. */
  readonly threads?: number;
  /** Release what the backend holds beyond memory (the wasm backend's worker threads). */
  dispose?(): Promise<void>;

  // ---- memory -------------------------------------------------------------------------------
  /**
   * Allocate every buffer `build` declares, at once: the memory plan of a model or a training run.
   * `build` runs twice: first with a measuring allocator (its buffers are empty placeholders) to
   * learn the total, then, after the backend has grown its memory once to hold it, with the
   * backend itself; the second run's result is returned. So `build` only declares buffers (the
   * same ones both times); fill them afterwards. Needed on wasm without SharedArrayBuffer, where
   * memory cannot grow once buffers exist (src/kernels/wasm/arena.ts); see src/kernels/plan.ts.
   */
  allocate<T>(build: (a: Allocator) => T): T;
  /** Hint: about `bytes` more bytes will be allocated soon (lets wasm grow its memory once). */
  reserve(bytes: number): void;

  // ---- forward operations ------------------------------------------------------------------------
  /**
   * yTO[t,o] = Σ_i xTI[t,i]·W[o,i]  (F.linear without bias; W is [O, I] in any DType). For q8_0/q4_0
   * weights x is first quantized per block to int8 (src/kernels/quant.ts quantizeActivations) and
   * the block products are summed in integers, as llama.cpp does; both backends give the same bits.
   */
  matmul(yTO: Float32Array, xTI: Float32Array, wOI: Weight, T: number, I: number, O: number): void;

  /** outTD[t,:] = table[ids[t], :] widened to f32 (table is [V, D]). */
  embedding(outTD: Float32Array, tableVD: Weight, ids: ArrayLike<number>, T: number, D: number): void;

  /** yTD[t,:] = xTD[t,:] / sqrt(mean(xTD[t,:]²) + eps) · wD   (RMSNorm; y may alias x). */
  rmsnorm(yTD: Float32Array, xTD: Float32Array, wD: Float32Array, T: number, D: number, eps: number): void;

  /**
   * Rotary position embedding, Hugging Face "rotate_half" convention, in place on xTHDh for
   * positions pos0 .. pos0+T-1. cosPR/sinPR are tables [maxPositions, Dh/2] (R = Dh/2):
   *   x'[i]      = x[i]·cos − x[i+R]·sin
   *   x'[i+R]    = x[i+R]·cos + x[i]·sin
   */
  rope(xTHDh: Float32Array, T: number, H: number, Dh: number, pos0: number, cosPR: Float32Array, sinPR: Float32Array): void;

  /**
   * Causal grouped-query attention for T new queries at positions pos0 .. pos0+T-1.
   * kPKVDh/vPKVDh are the KV cache of this attention application, [maxP, KV, Dh], already holding
   * keys/values (keys rotated) for positions 0 .. pos0+T-1. Query head h uses kv head
   * floor(h / (H/KV)). outTHDh[t,h,:] = softmax_j(q·k_j / sqrt(Dh), j ≤ pos0+t) · v.
   * scoresP is scratch of at least pos0+T floats.
   */
  attention(
    outTHDh: Float32Array,
    qTHDh: Float32Array,
    kPKVDh: Float32Array,
    vPKVDh: Float32Array,
    T: number,
    pos0: number,
    H: number,
    KV: number,
    Dh: number,
    scoresP: Float32Array,
  ): void;

  /** outN = silu(gateN) · upN, elementwise (SwiGLU's gate; out may alias gate). */
  siluMul(outN: Float32Array, gateN: Float32Array, upN: Float32Array, n: number): void;

  /**
   * outN = max(xN, 0), elementwise (the vanilla ReLU feed-forward network, ffn_type "relu", that
   * MobileLLM §2.2.1 compares SwiGLU with; out may alias x).
   */
  relu(outN: Float32Array, xN: Float32Array, n: number): void;

  /** yN += xN (residual connection). */
  add(yN: Float32Array, xN: Float32Array, n: number): void;

  /**
   * Next-token cross-entropy, in place: each row of logitsTV becomes softmax(row) (kept for the
   * backward), and the result is Σ_t −log p_t[targets[t]] over the rows whose target is ≥ 0 (a
   * negative target, like PyTorch's ignore_index -100, marks a row that predicts nothing).
   * The sum is accumulated in float64.
   */
  crossEntropy(logitsTV: Float32Array, targetsT: ArrayLike<number>, T: number, V: number): number;

  /**
   * AdamW (torch.optim.AdamW) on n parameters, per-element math in float64, stored as f32:
   *   w ← w·(1 − lr·wd);  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
   *   w ← w − lr/(1−β1ᵗ) · m / (sqrt(v)/sqrt(1−β2ᵗ) + eps)        (t = step, from 1)
   */
  adamw(
    wN: Float32Array,
    gN: Float32Array,
    mN: Float32Array,
    vN: Float32Array,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
  ): void;

  // ---- backward operations: the gradient of each forward operation above -------------------
  // Training calls them in reverse order of the forward (src/model/block.ts). Each accumulates
  // (+=) into parameter gradients and says what it does with input gradients.

  /** dXTI[t,i] = Σ_o dYTO[t,o]·W[o,i]  (gradient of `matmul` w.r.t. its input; overwrites dX). */
  matmulBackwardX(dXTI: Float32Array, dYTO: Float32Array, wOI: Weight, T: number, I: number, O: number): void;

  /** dWOI[o,i] += Σ_t dYTO[t,o]·xTI[t,i]  (gradient of `matmul` w.r.t. an f32 weight; accumulates). */
  matmulBackwardW(dWOI: Float32Array, dYTO: Float32Array, xTI: Float32Array, T: number, I: number, O: number): void;

  /** dTableVD[ids[t], :] += dOutTD[t, :]  (gradient of `embedding`; repeated ids accumulate). */
  embeddingBackward(dTableVD: Float32Array, dOutTD: Float32Array, ids: ArrayLike<number>, T: number, D: number): void;

  /**
   * Gradient of `rmsnorm`, recomputing r = 1/sqrt(mean(x²) + eps) per row; with g = dy·w:
   *   dwD += Σ_t dy·x·r        dxTD += r·g − x·r³·mean(g·x)     (both accumulate)
   */
  rmsnormBackward(
    dxTD: Float32Array,
    dwD: Float32Array,
    dyTD: Float32Array,
    xTD: Float32Array,
    wD: Float32Array,
    T: number,
    D: number,
    eps: number,
  ): void;

  /** Gradient of `rope`, in place on dxTHDh: the rotation by −angle (a rotation's transpose). */
  ropeBackward(dxTHDh: Float32Array, T: number, H: number, Dh: number, pos0: number, cosPR: Float32Array, sinPR: Float32Array): void;

  /**
   * Gradient of `attention` for one sequence of T tokens from position 0 (training has no cache):
   * overwrites dqTHDh, dkTKVDh, dvTKVDh. The probabilities are recomputed row by row, so nothing
   * of size T² is kept. Per query t, head h (kv head g), P = softmax(q·kᵀ/sqrt(Dh)) over p ≤ t:
   *   dP_p = dout·v_p;  dS_p = P_p·(dP_p − Σ P·dP) / sqrt(Dh);
   *   dq = Σ_p dS_p k_p;  dk_p += dS_p q;  dv_p += P_p dout      (dk, dv summed over g's heads)
   * scratch2T holds at least 2·T floats.
   */
  attentionBackward(
    dqTHDh: Float32Array,
    dkTKVDh: Float32Array,
    dvTKVDh: Float32Array,
    doutTHDh: Float32Array,
    qTHDh: Float32Array,
    kTKVDh: Float32Array,
    vTKVDh: Float32Array,
    T: number,
    H: number,
    KV: number,
    Dh: number,
    scratch2T: Float32Array,
  ): void;

  /** Gradient of `siluMul` (overwrites dgate, dup):  dgate = dout·up·σ(g)(1 + g(1 − σ(g))),  dup = dout·silu(g). */
  siluMulBackward(dgateN: Float32Array, dupN: Float32Array, doutN: Float32Array, gateN: Float32Array, upN: Float32Array, n: number): void;

  /** Gradient of `relu` (overwrites dx; dx may alias dout):  dx = dout where x > 0, else 0. */
  reluBackward(dxN: Float32Array, doutN: Float32Array, xN: Float32Array, n: number): void;

  /**
   * Gradient of `crossEntropy` times `scale`, in place: probsTV (from crossEntropy) becomes
   * (p − onehot(target))·scale; rows with a negative target become 0.
   */
  crossEntropyBackward(probsTV: Float32Array, targetsT: ArrayLike<number>, T: number, V: number, scale: number): void;
}
