/** The Cloud Storage image store against fake-gcs-server, held to the port's contract. */
import { randomUUID } from "node:crypto";
import { beforeAll, inject } from "vitest";
import { createGcsImageStore } from "../../adapters/storage/gcsImageStore.js";
import { emulatorClients } from "../support/clients.js";
import { imageStoreContract } from "../support/imageStoreContract.js";

const { storage } = emulatorClients(inject("services"));
const bucket = `contract-${randomUUID()}`;
beforeAll(async () => {
  await storage.createBucket(bucket);
});

imageStoreContract("Cloud Storage (fake-gcs-server)", async () => ({ images: createGcsImageStore(storage), bucket }));
