// Where a long evaluation keeps its finished work between runs, so an interrupted run continues:
// a JSON file in Node (eval/files.ts), anything with these three operations elsewhere.

export interface ResumeStore {
  /** Named in errors (a path). */
  readonly name: string;
  /** The stored text, or undefined when nothing was stored yet. */
  read(): string | undefined;
  /** Replace the stored text (atomically: an interrupted write never leaves half of it). */
  write(text: string): void;
  /** Add text at the end. */
  append(text: string): void;
}
