// The project's one seeded random number generator: sampling during generation, weight
// initialisation for training, and the random inputs of tests and benches.

/**
 * Mulberry32 (Tommy Ettinger, public domain): a 32-bit state PRNG that adds a Weyl constant and
 * mixes with two multiply-xorshift rounds. Period 2^32 (a 1.5B-parameter initialisation draws
 * ~3·10^9 uniforms, inside one period), passes the usual statistical batteries at the sample
 * counts we need, and is four lines, so a sampled generation or a training run can be reproduced
 * exactly from its seed on any JavaScript engine. Its whole state is one uint32, so it fits in a
 * training checkpoint and a resumed run draws exactly the numbers the uninterrupted run would have.
 */
export class Mulberry32 {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The next uint32. */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1), with 32 bits of randomness. */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Standard normal (Box–Muller; one of the pair is used, so the state advances by two draws). */
  normal(): number {
    const u1 = 1 - this.next(); // (0, 1]
    const u2 = this.next();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** The state, to save in a checkpoint: [one uint32]. */
  getState(): number[] {
    return [this.state >>> 0];
  }

  setState(state: readonly number[]): void {
    const s = state[0];
    if (state.length !== 1 || s === undefined || !Number.isInteger(s) || s < 0 || s > 0xffffffff) {
      throw new Error(`invalid RNG state ${JSON.stringify(state)}: expected one unsigned 32-bit integer`);
    }
    this.state = s | 0;
  }
}
