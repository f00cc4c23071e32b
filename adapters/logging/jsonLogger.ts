/**
 * Structured log lines in the JSON shape Cloud Logging reads from stdout: `severity`,
 * `message`, and whatever fields the caller adds (`jobId` on every line about a job).
 */
export type LogEntry = Record<string, unknown> & { message: string; severity?: string };

export type Logger = (entry: LogEntry) => void;

export function createJsonLogger(component: string, write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)): Logger {
  return (entry) => {
    write(JSON.stringify({ severity: "INFO", component, time: new Date().toISOString(), ...entry }));
  };
}
