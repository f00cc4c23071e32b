/**
 * A Triton server of the test run's own, on free ports, with the repository's models. Stop it
 * with `stop()` (by its PID).
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { LOCAL_DIR } from "../../local/stack/paths.js";
import { freePort, type RunningProcess } from "../../local/stack/processes.js";
import { ensureTriton, startTriton, type TritonInstall } from "../../local/stack/triton.js";

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
    logFile: join(LOCAL_DIR, "logs", `triton-${randomUUID()}.log`),
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
