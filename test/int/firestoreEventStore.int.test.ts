import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, inject, it } from "vitest";
import { createFirestoreEventStore, seqId } from "../../adapters/firestore/firestoreEventStore.js";
import { createFirestoreRequestCounter } from "../../adapters/firestore/firestoreRequestCounter.js";
import { requestCounterContract } from "../support/requestCounterContract.js";
import { createFirestoreWebhookOutbox } from "../../adapters/firestore/firestoreWebhookOutbox.js";
import { createFirestoreWebhookSecrets } from "../../adapters/firestore/firestoreWebhookSecrets.js";
import { webhookOutboxContract, webhookSecretsContract } from "../support/webhookOutboxContract.js";
import { handleCommand } from "../../events/handleCommand.js";
import { emulatorClients } from "../support/clients.js";
import { eventStoreContract, recordUpload, requestEdit } from "../support/eventStoreContract.js";

const { firestore } = emulatorClients(inject("services"));
afterAll(() => firestore.terminate());

eventStoreContract("Firestore (official emulator)", () => createFirestoreEventStore(firestore));
requestCounterContract("Firestore (official emulator)", () => createFirestoreRequestCounter(firestore));
webhookOutboxContract("Firestore (official emulator)", () => createFirestoreWebhookOutbox(firestore));
webhookSecretsContract("Firestore (official emulator)", () => createFirestoreWebhookSecrets(firestore));

describe("Firestore event store layout", () => {
  it("keeps one document per event under jobs/{jobId}/events, named by zero-padded seq", async () => {
    const store = createFirestoreEventStore(firestore);
    const jobId = randomUUID();
    const deps = { store, clock: { now: () => new Date() } };
    await handleCommand(deps, jobId, requestEdit(jobId, "owner-a"));
    await handleCommand(deps, jobId, recordUpload(jobId));
    const docs = await firestore.collection(`jobs/${jobId}/events`).listDocuments();
    expect(docs.map((doc) => doc.id).sort()).toEqual([seqId(1), seqId(2), seqId(3)]);
    expect(seqId(12)).toBe("0000000012");
    const projection = (await firestore.doc(`jobs/${jobId}`).get()).data();
    expect(projection).toMatchObject({ jobId, ownerId: "owner-a", status: "queued", version: 3, operation: "upscale" });
  });
});
