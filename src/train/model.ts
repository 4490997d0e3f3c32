// Forward and backward of the whole MobileLLM over a training batch, llm.c style: the forward
// keeps every activation in the TrainState, the backward walks the same steps in reverse and
// accumulates into the gradient buffer (zero it with `zeroGrads` before a new optimizer step).
//
//   h = embed(ids);  for each application a:  h = h + attn(norm1(h));  h = h + mlp(norm2(h))
//   logits = norm(h) · Wᵀ   (W = embed_tokens when share_embedding, else lm_head)
//   loss = mean next-token cross-entropy

import type { Kernels } from "../kernels/kernels.js";
import { attentionBackward, attentionForward } from "./attention.js";
import { crossEntropyBackward, crossEntropyForward } from "./cross-entropy.js";
import { embeddingBackward, embeddingForward } from "./embedding.js";
import { rmsnormBackward, rmsnormForward } from "./rmsnorm.js";
import { ropeBackward, ropeForward } from "./rope.js";
import type { TrainState } from "./state.js";
import { numApplications } from "./state.js";
import { swigluBackward, swigluForward } from "./swiglu.js";

/** The block application a uses: a, or a/2 with immediate block-wise layer sharing. */
export function blockOf(s: TrainState, a: number): number {
  return s.config.layerSharing ? a >> 1 : a;
}

function checkBackwardKernels(k: Kernels): void {
  if (!k.matmulBackwardX || !k.matmulBackwardW) {
    throw new Error(`the "${k.name}" kernel backend has no matmul backward kernels; train with --backend ts`);
  }
}

/** Forward over the B·T ids already in s.idsN; returns the mean loss. logitsNV then holds softmax probabilities. */
export function trainForward(s: TrainState): number {
  const c = s.config, k = s.kernels, w = s.params.weights;
  checkBackwardKernels(k); // attention's out = P v uses matmulBackwardX
  const B = s.B, T = s.T, N = B * T;
  const D = c.hiddenSize, H = c.numHeads, KV = c.numKvHeads, Dh = c.headDim, F = c.intermediateSize, V = c.vocabSize;
  const Q = H * Dh, K = KV * Dh, eps = c.rmsNormEps;

  embeddingForward(s.residND[0]!, w.embedVD.data as Float32Array, s.idsN, N, D, V);   // h = embed_tokens(ids)
  for (let a = 0; a < numApplications(c); a++) {
    const l = w.layers[blockOf(s, a)]!, act = s.apps[a]!;
    const hIn = s.residND[a]!, hOut = s.residND[a + 1]!;
    // attention sub-layer
    rmsnormForward(act.xn1ND, act.rstd1N, hIn, l.inputNormD, N, D, eps);             // input_layernorm
    k.matmul(act.qNQ, act.xn1ND, l.wqQD, N, D, Q);                                    // q = x Wqᵀ
    k.matmul(act.kNK, act.xn1ND, l.wkKD, N, D, K);                                    // k = x Wkᵀ
    k.matmul(act.vNK, act.xn1ND, l.wvKD, N, D, K);                                    // v = x Wvᵀ
    ropeForward(act.qNQ, B, T, H, Dh, s.rope.cosPR, s.rope.sinPR);
    ropeForward(act.kNK, B, T, KV, Dh, s.rope.cosPR, s.rope.sinPR);
    attentionForward(k, s.att, act.attNQ, act.probsBHTT, act.qNQ, act.kNK, act.vNK, B, T, H, KV, Dh);
    k.matmul(act.midND, act.attNQ, l.woDQ, N, Q, D);                                  // o_proj
    k.add(act.midND, hIn, N * D);                                                     // h + attn(…)
    // MLP sub-layer
    rmsnormForward(act.xn2ND, act.rstd2N, act.midND, l.postNormD, N, D, eps);        // post_attention_layernorm
    k.matmul(act.gateNF, act.xn2ND, l.wGateFD, N, D, F);
    k.matmul(act.upNF, act.xn2ND, l.wUpFD, N, D, F);
    swigluForward(act.actNF, act.gateNF, act.upNF, N * F);                            // silu(gate)·up
    k.matmul(hOut, act.actNF, l.wDownDF, N, F, D);                                    // down_proj
    k.add(hOut, act.midND, N * D);                                                    // h + mlp(…)
  }
  rmsnormForward(s.xnFND, s.rstdFN, s.residND[numApplications(c)]!, w.finalNormD, N, D, eps); // model.norm
  k.matmul(s.logitsNV, s.xnFND, w.lmHeadVD, N, D, V);                                 // lm_head
  return crossEntropyForward(s.logitsNV, s.idsN, B, T, V);
}

/**
 * Backward of the last trainForward: adds d(loss · lossScale)/d params into s.params.gradFlat.
 * lossScale is 1, or 1/gradAccum when several micro-batches make one optimizer step.
 */
export function trainBackward(s: TrainState, lossScale = 1): void {
  const c = s.config, k = s.kernels, w = s.params.weights, g = s.params.grads;
  checkBackwardKernels(k);
  const B = s.B, T = s.T, N = B * T;
  const D = c.hiddenSize, H = c.numHeads, KV = c.numKvHeads, Dh = c.headDim, F = c.intermediateSize, V = c.vocabSize;
  const Q = H * Dh, K = KV * Dh, A = numApplications(c);

  crossEntropyBackward(s.logitsNV, s.idsN, B, T, V, lossScale / (B * (T - 1)));     // d logits
  k.matmulBackwardW!(g.lmHeadVD, s.logitsNV, s.xnFND, N, D, V);                          // d W_lm (= d embed when shared)
  k.matmulBackwardX!(s.dxnND, s.logitsNV, w.lmHeadVD, N, D, V);                          // d norm(h)
  s.dresND.fill(0, 0, N * D);
  rmsnormBackward(s.dresND, g.finalNormD, s.dxnND, s.residND[A]!, w.finalNormD, s.rstdFN, N, D);

  for (let a = A - 1; a >= 0; a--) {
    const l = w.layers[blockOf(s, a)]!, gl = g.layers[blockOf(s, a)]!, act = s.apps[a]!;
    // MLP sub-layer: hOut = mid + down(silu(gate)·up); dresND is d hOut and becomes d mid
    k.matmulBackwardW!(gl.wDownDF, s.dresND, act.actNF, N, F, D);
    k.matmulBackwardX!(s.dactNF, s.dresND, l.wDownDF, N, F, D);
    swigluBackward(s.dgateNF, s.dupNF, s.dactNF, act.gateNF, act.upNF, N * F);
    k.matmulBackwardW!(gl.wGateFD, s.dgateNF, act.xn2ND, N, D, F);
    k.matmulBackwardW!(gl.wUpFD, s.dupNF, act.xn2ND, N, D, F);
    k.matmulBackwardX!(s.dxnND, s.dgateNF, l.wGateFD, N, D, F);
    k.matmulBackwardX!(s.dtmpND, s.dupNF, l.wUpFD, N, D, F);
    k.add(s.dxnND, s.dtmpND, N * D);
    rmsnormBackward(s.dresND, gl.postNormD, s.dxnND, act.midND, l.postNormD, act.rstd2N, N, D);
    // attention sub-layer: mid = hIn + o_proj(att); dresND becomes d hIn
    k.matmulBackwardW!(gl.woDQ, s.dresND, act.attNQ, N, Q, D);
    k.matmulBackwardX!(s.dattNQ, s.dresND, l.woDQ, N, Q, D);
    attentionBackward(k, s.att, s.dqNQ, s.dkNK, s.dvNK, s.dattNQ, act.qNQ, act.kNK, act.vNK, act.probsBHTT, B, T, H, KV, Dh);
    ropeBackward(s.dqNQ, B, T, H, Dh, s.rope.cosPR, s.rope.sinPR);
    ropeBackward(s.dkNK, B, T, KV, Dh, s.rope.cosPR, s.rope.sinPR);
    k.matmulBackwardW!(gl.wqQD, s.dqNQ, act.xn1ND, N, D, Q);
    k.matmulBackwardW!(gl.wkKD, s.dkNK, act.xn1ND, N, D, K);
    k.matmulBackwardW!(gl.wvKD, s.dvNK, act.xn1ND, N, D, K);
    k.matmulBackwardX!(s.dxnND, s.dqNQ, l.wqQD, N, D, Q);
    k.matmulBackwardX!(s.dtmpND, s.dkNK, l.wkKD, N, D, K);
    k.add(s.dxnND, s.dtmpND, N * D);
    k.matmulBackwardX!(s.dtmpND, s.dvNK, l.wvKD, N, D, K);
    k.add(s.dxnND, s.dtmpND, N * D);
    rmsnormBackward(s.dresND, gl.inputNormD, s.dxnND, s.residND[a]!, l.inputNormD, act.rstd1N, N, D);
  }
  embeddingBackward(g.embedVD, s.dresND, s.idsN, N, D);                              // d embed_tokens (input use)
}

export function zeroGrads(s: TrainState): void {
  s.params.gradFlat.fill(0);
}
