// argmax: the one implementation (greedy decoding, eval's greedy check and multiple-choice pick).

/** Index of the largest of xs[0..n) (the first one on ties, like torch.argmax / numpy.argmax). */
export function argmax(xs: ArrayLike<number>, n: number = xs.length): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}
