/** The JSON log lines a local-stack process wrote, as Cloud Logging would read them from stdout. */
import { readFile } from "node:fs/promises";

export type LogLine = Record<string, unknown> & { message: string };

export async function readJsonLog(file: string): Promise<LogLine[]> {
  const text = await readFile(file, "utf8");
  const lines: LogLine[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // Not one of ours: a library's own output.
    }
  }
  return lines;
}
