// Giving the event loop a turn between units of long work.

/**
 * Let timers, I/O and signal handlers run (an abort from a timer or Ctrl-C lands between steps).
 * setImmediate where the runtime has it (Node, Bun, Deno), else a zero timeout (browsers).
 */
export function yieldToEventLoop(): Promise<void> {
  const immediate = (globalThis as { setImmediate?: (cb: () => void) => unknown }).setImmediate;
  return new Promise((resolve) => (immediate ? immediate(resolve) : setTimeout(resolve, 0)));
}
