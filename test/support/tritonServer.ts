/**
 * A Triton server of the test run's own, on free ports, with the repository's models (or those of
 * `options.modelRepository`, a folder or a gs:// address). Stop it with `stop()` (by its PID).
 * Int files that only send it requests share one per run instead: `sharedTriton()`.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { LOCAL_DIR } from "../../local/stack/paths.js";
import { freePort, sleep, type RunningProcess } from "../../local/stack/processes.js";
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

/** The endpoints of the int tier's shared Triton server; it is the run's to stop, not the file's. */
export type SharedTriton = Pick<TestTriton, "install" | "grpcUrl" | "httpUrl" | "metricsUrl">;

/**
 * The int tier's shared Triton server, with the repository's models (started by the run on the
 * first call: intSetup.ts). For files that send it requests and nothing more: a file that stops,
 * kills or reconfigures its server starts its own with `startTestTriton()`. Int files run one at
 * a time, so a file may still read the server's statistics before and after its own requests.
 */
export async function sharedTriton(): Promise<SharedTriton> {
  // Imported here: this module is also loaded by the tier's global setup, outside any test file.
  const { inject } = await import("vitest");
  const broker = inject("tritonBrokerUrl");
  for (;;) {
    const response = await fetch(broker, { method: "POST" });
    if (response.status === 200) return (await response.json()) as SharedTriton;
    if (response.status !== 202) throw new Error(await response.text());
    await sleep(250);
  }
}
