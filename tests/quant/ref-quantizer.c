/*
 * An independent float32 oracle for tests/quant-format.test.ts: the Q8_0 and Q4_0 reference
 * quantization rules of ggml (quantize_row_q8_0_ref / quantize_row_q4_0_ref), written from the
 * format definition in C so that every step is genuine C float arithmetic (roundf, the truncating
 * int8 cast, f32 products) and the f16 scale is rounded by the compiler's _Float16 conversion
 * rather than by our TypeScript. Reads n float32 values (n a multiple of 32) from stdin and writes
 * the q8_0 blocks, then the q4_0 blocks, to stdout. Built and run by the test when gcc exists.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_half(uint8_t *out, float d) {
  _Float16 h = (_Float16)d;
  memcpy(out, &h, 2);
}

int main(void) {
  static float x[1 << 20];
  size_t n = fread(x, sizeof(float), sizeof x / sizeof x[0], stdin);
  for (size_t b = 0; b + 32 <= n; b += 32) { /* q8_0 */
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = amax > fabsf(x[b + j]) ? amax : fabsf(x[b + j]);
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    uint8_t blk[34];
    put_half(blk, d);
    for (int j = 0; j < 32; j++) blk[2 + j] = (uint8_t)(int8_t)roundf(x[b + j] * id);
    fwrite(blk, 1, 34, stdout);
  }
  for (size_t b = 0; b + 32 <= n; b += 32) { /* q4_0 */
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; j++) {
      if (amax < fabsf(x[b + j])) { amax = fabsf(x[b + j]); max = x[b + j]; }
    }
    const float d = max / -8;
    const float id = d ? 1.0f / d : 0.0f;
    uint8_t blk[18];
    put_half(blk, d);
    for (int j = 0; j < 16; j++) {
      const float x0 = x[b + j] * id, x1 = x[b + 16 + j] * id;
      int8_t t0 = (int8_t)(x0 + 8.5f), t1 = (int8_t)(x1 + 8.5f);
      const uint8_t q0 = t0 < 15 ? t0 : 15, q1 = t1 < 15 ? t1 : 15;
      blk[2 + j] = (uint8_t)(q0 | (q1 << 4));
    }
    fwrite(blk, 1, 18, stdout);
  }
  return 0;
}
