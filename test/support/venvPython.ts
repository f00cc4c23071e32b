/** Runs a Python script of test/support in the project venv and returns its stdout. */
import { execFile } from "node:child_process";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { TritonInstall } from "../../local/stack/triton.js";

const execFileAsync = promisify(execFile);
const SUPPORT = resolve(fileURLToPath(new URL(".", import.meta.url)));

export async function runSupportPython(install: TritonInstall, script: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(install.python, [join(SUPPORT, script), ...args], {
    maxBuffer: 16 * 1024 * 1024,
    env: { ...process.env, PYTHONNOUSERSITE: "1", PYTHONDONTWRITEBYTECODE: "1" },
  });
  return stdout;
}
