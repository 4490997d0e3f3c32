// Types of scripts/serve-web.mjs (the demo's static server), for the tests that start it.
import type { Server } from "node:http";

export const PACKAGE_ROOT: string;
export function mimeType(path: string): string;
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | "unsatisfiable" | null;
export interface StartedServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}
export function startServer(options?: {
  root?: string;
  port?: number;
  isolation?: boolean;
  mounts?: Record<string, string>;
}): Promise<StartedServer>;
