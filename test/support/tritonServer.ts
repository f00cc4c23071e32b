/**
 * A Triton server of the test run's own, on free ports, with the repository's models. Stop it
 * with `stop()` (by its PID).
 */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { randomUUID } from "node:crypto";
import { freePort, type RunningProcess } from "../../local/processes.js";
import { ensureTriton, startTriton, type TritonInstall } from "../../local/triton.js";

const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));

export interface TestTriton {
  install: TritonInstall;
  process: RunningProcess;
  /** host:port for the gRPC client. */
  grpcUrl: string;
  httpUrl: string;
  metricsUrl: string;
  stop(): Promise<void>;
}

export async function startTestTriton(): Promise<TestTriton> {
  const install = await ensureTriton();
  const [grpcPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const process = await startTriton({
    grpcPort,
    httpPort,
    metricsPort,
    install,
    logFile: join(REPO_ROOT, ".local", "logs", `triton-${randomUUID()}.log`),
  });
  return {
    install,
    process,
    grpcUrl: `127.0.0.1:${grpcPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
    stop: () => process.stop(),
  };
}
