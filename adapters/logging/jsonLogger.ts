/**
 * Structured log lines in the JSON shape Cloud Logging reads from stdout: `severity`,
 * `message`, the trace and span of the work in hand (`logging.googleapis.com/trace` as
 * `projects/<project>/traces/<traceId>`, `logging.googleapis.com/spanId`), and whatever fields the
 * caller adds. `jobId` is on every line about a job: the caller's, or else the one of the job in
 * hand.
 * Implements the `Logger` port (events/logger.ts).
 */
import type { LogContext, Logger } from "../../events/logger.js";

export interface JsonLoggerOptions {
  /** The Google Cloud project the trace ids belong to; without it no trace field is written. */
  projectId?: string;
  /** The trace, span and job of the work in hand (the observability layer supplies it). */
  context?: () => LogContext | undefined;
}

export function createJsonLogger(
  component: string,
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  options: JsonLoggerOptions = {},
): Logger {
  return (entry) => {
    const context = options.context?.() ?? {};
    const correlation: Record<string, unknown> = {};
    if (context.traceId && options.projectId) {
      correlation["logging.googleapis.com/trace"] = `projects/${options.projectId}/traces/${context.traceId}`;
      if (context.spanId) correlation["logging.googleapis.com/spanId"] = context.spanId;
      if (context.sampled !== undefined) correlation["logging.googleapis.com/trace_sampled"] = context.sampled;
    }
    if (context.jobId && entry.jobId === undefined) correlation.jobId = context.jobId;
    write(JSON.stringify({ severity: "INFO", component, time: new Date().toISOString(), ...correlation, ...entry }));
  };
}
