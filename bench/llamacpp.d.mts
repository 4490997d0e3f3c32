// Types of bench/llamacpp.mjs for the strict type-check of tests/gguf-llamacpp.test.ts. The llama
// object is node-llama-cpp's, which is not a dependency (so not typed here).

/** node-llama-cpp's CPU llama, or { error } saying why it cannot run here. */
export function getLlamaCpp(): Promise<{ llama: unknown; error?: undefined } | { llama?: undefined; error: string }>;

/** Perplexity with llama.cpp as `mobilellm ppl` computes it, over windows of `seqlen` tokens. */
export function llamaPerplexity(llama: unknown, file: string, ids: readonly number[], seqlen: number): Promise<number>;
