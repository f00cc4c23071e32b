/** Real Google client libraries pointed at the emulators of the int tier. */
import { Firestore } from "@google-cloud/firestore";
import { PubSub } from "@google-cloud/pubsub";
import { Storage } from "@google-cloud/storage";
import type { IntServices } from "./intSetup.js";

export function emulatorClients(services: IntServices) {
  process.env.METADATA_SERVER_DETECTION = "none";
  process.env.FIRESTORE_EMULATOR_HOST = services.firestoreHost;
  process.env.PUBSUB_EMULATOR_HOST = services.pubsubHost;
  return {
    firestore: new Firestore({ projectId: services.projectId, ignoreUndefinedProperties: true }),
    pubsub: new PubSub({ projectId: services.projectId }),
    storage: new Storage({ projectId: services.projectId, apiEndpoint: services.storageUrl }),
  };
}
