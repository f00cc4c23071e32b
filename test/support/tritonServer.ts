/**
 * A Triton server of the test run's own, on free ports, with the repository's models (or those of
 * `options.modelRepository`, a folder or a gs:// address). Stop it with `stop()` (by its PID).
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { LOCAL_DIR } from "../../local/stack/paths.js";
import { freePort, type RunningProcess } from "../../local/stack/processes.js";
import { ensureTriton, startTriton, type StartTritonOptions, type TritonInstall } from "../../local/stack/triton.js";

export interface TestTriton {
  install: TritonInstall;
  process: RunningProcess;
  /** host:port for the gRPC client. */
  grpcUrl: string;
  httpUrl: string;
  metricsUrl: string;
  stop(): Promise<void>;
}

export async function startTestTriton(options: Partial<Pick<StartTritonOptions, "modelRepository" | "env" | "logFile">> = {}): Promise<TestTriton> {
  const install = await ensureTriton();
  const [grpcPort, httpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  const process = await startTriton({
    grpcPort,
    httpPort,
    metricsPort,
    install,
    ...options,
    logFile: options.logFile ?? join(LOCAL_DIR, "logs", `triton-${randomUUID()}.log`),
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
