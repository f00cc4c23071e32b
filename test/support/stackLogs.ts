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

/**
 * The first line of `file` that `matches`, waiting for it: a process writes its log line after
 * the change it reports is already visible to others.
 */
export async function waitForLogLine(file: string, matches: (line: LogLine) => boolean, timeoutMs = 15_000): Promise<LogLine> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const found = (await readJsonLog(file)).find(matches);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no such line in ${file} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
