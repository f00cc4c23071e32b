/**
 * Global setup of the int tier: the real Firestore, Pub/Sub and Cloud Storage emulators, started
 * once per run on free loopback ports and stopped by PID afterwards. Tests read the endpoints
 * with `inject("services")` and make their own names, so they never depend on each other.
 */
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { ensureEmulators, startFirestoreEmulator, startPubsubEmulator, startStorageEmulator } from "../../local/emulators.js";
import { LOCAL_DIR } from "../../local/paths.js";
import { freePort, type RunningProcess } from "../../local/processes.js";

export interface IntServices {
  projectId: string;
  firestoreHost: string;
  pubsubHost: string;
  storageUrl: string;
  /** The bucket whose finalize notifications go to `notificationsTopic`. */
  notifyBucket: string;
  notificationsTopic: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    services: IntServices;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const logDir = join(LOCAL_DIR, "logs", "int");
  await ensureEmulators((line) => console.log(`[int setup] ${line}`));
  const [firestorePort, pubsubPort, storagePort] = [await freePort(), await freePort(), await freePort()];
  const started: RunningProcess[] = [];
  const stop = async () => {
    await Promise.all(started.map((part) => part.stop()));
  };
  try {
    const services: IntServices = {
      projectId: "image-edit-int",
      firestoreHost: `127.0.0.1:${firestorePort}`,
      pubsubHost: `127.0.0.1:${pubsubPort}`,
      storageUrl: `http://127.0.0.1:${storagePort}`,
      notifyBucket: "int-uploads-notified",
      notificationsTopic: "int-uploads-finalized",
    };
    started.push(...(await Promise.all([startFirestoreEmulator(firestorePort, logDir), startPubsubEmulator(pubsubPort, logDir)])));
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
    project.provide("services", services);
    return stop;
  } catch (error) {
    await stop();
    throw error;
  }
}
