/** A logger that keeps its lines for the test to read: the `Logger` port's double (events/logger.ts). */
import type { LogEntry, Logger } from "../../events/logger.js";

export interface MemoryLogger {
  log: Logger;
  entries: LogEntry[];
  /** The messages logged so far, in order. */
  messages(): string[];
}

export function createMemoryLogger(): MemoryLogger {
  const entries: LogEntry[] = [];
  return { log: (entry) => entries.push(entry), entries, messages: () => entries.map((entry) => entry.message) };
}
