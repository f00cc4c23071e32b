/**
 * Global setup of the int tier: the real Firestore, Pub/Sub, Firebase Auth and Cloud Storage emulators, started
 * once per run on free loopback ports and stopped by PID afterwards. Tests read the endpoints
 * with `inject("services")` and make their own names, so they never depend on each other.
 *
 * It also keeps one Triton server (the repository's models) for the files that only send it
 * requests: started by the first file that asks (`sharedTriton()` in tritonServer.ts), so that a
 * run without such a file starts none, and stopped with the emulators.
 */
import { createServer, type Server } from "node:http";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { ensureEmulators, startAuthEmulator, startFirestoreEmulator, startPubsubEmulator, startStorageEmulator } from "../../local/stack/emulators.js";
import { LOCAL_DIR } from "../../local/stack/paths.js";
import { freePort, type RunningProcess } from "../../local/stack/processes.js";
import { startTestTriton, type SharedTriton, type TestTriton } from "./tritonServer.js";

export interface IntServices {
  projectId: string;
  firestoreHost: string;
  pubsubHost: string;
  /** host:port of the Firebase Auth emulator; its users' tokens are what the API takes here. */
  authHost: string;
  storageUrl: string;
  /** The bucket whose finalize notifications go to `notificationsTopic`. */
  notifyBucket: string;
  notificationsTopic: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    services: IntServices;
    /** POST here for the run's shared Triton server (see `sharedTriton()`). */
    tritonBrokerUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const logDir = join(LOCAL_DIR, "logs", "int");
  await ensureEmulators((line) => console.log(`[int setup] ${line}`));
  // Ports are picked free and then bound by the emulators a moment later; in between another
  // process (the Firestore emulator's own WebSocket port among them) may take one. A start that
  // fails so is tried again on fresh ports.
  for (let attempt = 1; ; attempt += 1) {
    try {
      const { services, started } = await startServices(logDir);
      project.provide("services", services);
      const broker = await startTritonBroker();
      project.provide("tritonBrokerUrl", broker.url);
      return async () => {
        // A part that ended before the run did is what broke the tests that used it: say so.
        for (const part of started.filter((each) => !each.isRunning())) {
          console.error(`[int teardown] ${part.name} (pid ${part.pid}) ended during the run; the end of ${part.logFile}:\n${await logTail(part.logFile)}`);
        }
        await Promise.all([...started.map((part) => part.stop()), broker.stop()]);
      };
    } catch (error) {
      if (attempt === 3) throw error;
      console.error(`[int setup] start ${attempt} failed (${String(error)}); trying again on fresh ports`);
    }
  }
}

async function startServices(logDir: string): Promise<{ services: IntServices; started: RunningProcess[] }> {
  const [firestorePort, pubsubPort, authPort, storagePort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const started: RunningProcess[] = [];
  try {
    const services: IntServices = {
      projectId: "image-edit-int",
      firestoreHost: `127.0.0.1:${firestorePort}`,
      pubsubHost: `127.0.0.1:${pubsubPort}`,
      authHost: `127.0.0.1:${authPort}`,
      storageUrl: `http://127.0.0.1:${storagePort}`,
      notifyBucket: "int-uploads-notified",
      notificationsTopic: "int-uploads-finalized",
    };
    const javas = await Promise.allSettled([
      startFirestoreEmulator(firestorePort, logDir, undefined, services.authHost),
      startPubsubEmulator(pubsubPort, logDir),
      startAuthEmulator(authPort, logDir, services.projectId),
    ]);
    for (const result of javas) if (result.status === "fulfilled") started.push(result.value);
    const failed = javas.find((result): result is PromiseRejectedResult => result.status === "rejected");
    if (failed) throw failed.reason;
    started.push(
      await startStorageEmulator({
        port: storagePort,
        logDir,
        projectId: services.projectId,
        pubsubHost: services.pubsubHost,
        notifyTopic: services.notificationsTopic,
        notifyBucket: services.notifyBucket,
      }),
    );
    return { services, started };
  } catch (error) {
    await Promise.all(started.map((part) => part.stop()));
    throw error;
  }
}

/** The last lines of a log file, for a failure message. */
export async function logTail(file: string, lines = 20): Promise<string> {
  const text = await readFile(file, "utf8").catch((error: unknown) => `(unreadable: ${String(error)})`);
  return text.trimEnd().split("\n").slice(-lines).join("\n");
}

/**
 * A loopback HTTP endpoint in this (the main vitest) process for the shared Triton. A request
 * starts it if nothing has; the answer is 202 while it starts (the file asks again), 200 with its
 * endpoints once it is ready, or 500 with the error of a failed start (the next request tries
 * again).
 */
async function startTritonBroker(): Promise<{ url: string; stop(): Promise<void> }> {
  let triton: Promise<TestTriton> | undefined;
  let ready: SharedTriton | undefined;
  let failure: string | undefined;
  const server: Server = createServer((request, response) => {
    request.resume();
    if (ready) return void response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(ready));
    if (failure) {
      response.writeHead(500, { "content-type": "text/plain" }).end(`the shared Triton did not start: ${failure}`);
      failure = undefined;
      return;
    }
    if (!triton) {
      console.log("[int setup] starting the shared Triton server");
      triton = startTestTriton();
      triton.then(
        (running) => (ready = { install: running.install, grpcUrl: running.grpcUrl, httpUrl: running.httpUrl, metricsUrl: running.metricsUrl }),
        (error: unknown) => {
          failure = String(error);
          triton = undefined;
        },
      );
    }
    response.writeHead(202).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/triton`,
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      const running = await triton?.catch(() => undefined);
      await running?.stop();
    },
  };
}
