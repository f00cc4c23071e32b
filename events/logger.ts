/**
 * The logger port: structured log lines, one object each. Adapter: JSON lines for Cloud Logging
 * (adapters/logging/jsonLogger.ts); the unit tests' double is test/doubles/memoryLogger.ts.
 */

/** One log line: `message`, an optional `severity` (INFO when absent) and any fields (`jobId`, …). */
export type LogEntry = Record<string, unknown> & { message: string; severity?: string };

export type Logger = (entry: LogEntry) => void;

/** What a logger needs to know about the work in hand when it writes a line. */
export interface LogContext {
  traceId?: string;
  spanId?: string;
  sampled?: boolean;
  jobId?: string;
}
