/**
 * The local stand-in for Eventarc's Firestore trigger on the Firestore emulator: it polls the
 * last `windowMs` of documents (a listener made the emulator keep every event it ever saw; see
 * local/stack/eventarcBridge.ts), and across the polls every document created is forwarded
 * exactly once, a document committed a while after its `at` included.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { startFirestoreTriggerBridge } from "../../local/stack/eventarcBridge.js";
import { sleep } from "../../local/stack/processes.js";
import { emulatorClients } from "../support/clients.js";

const services = inject("services");
const { firestore } = emulatorClients(services);
const subjects: string[] = [];
let receiver: Server;
let target: string;

beforeAll(async () => {
  receiver = createServer((request, response) => {
    subjects.push(String(request.headers["ce-subject"]));
    request.resume();
    response.end();
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  target = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  await new Promise((resolve) => receiver.close(resolve));
  await firestore.terminate();
});

describe("the Firestore trigger bridge", () => {
  it("forwards every document created exactly once across its polls", async () => {
    const group = `bridge${randomUUID().replaceAll("-", "")}`;
    // From before the first `at` written (a second back).
    const since = new Date(Date.now() - 5_000);
    const bridge = startFirestoreTriggerBridge({ firestore, collectionGroup: group, since, target, projectId: services.projectId, pollMs: 100, windowMs: 2_000 });
    const created: string[] = [];
    try {
      for (let round = 0; round < 12; round += 1) {
        const docs = Array.from({ length: 4 }, (_, i) => firestore.doc(`jobs/${randomUUID()}/${group}/00000${i}`));
        // One of each round's documents committed 1 s after its `at`, as a slow transaction's would be.
        for (const [i, doc] of docs.entries()) await doc.create({ at: new Date(Date.now() - (i === 0 ? 1_000 : 0)).toISOString() });
        created.push(...docs.map((doc) => `documents/${doc.path}`));
        await sleep(150);
      }
      const until = Date.now() + 10_000;
      while (subjects.filter((subject) => subject.includes(group)).length < created.length && Date.now() < until) await sleep(100);
      // Polls after the last create must not forward anything again.
      await sleep(700);
    } finally {
      await bridge.stop();
    }
    const forwarded = subjects.filter((subject) => subject.includes(group));
    expect(forwarded.length).toBe(created.length);
    expect(new Set(forwarded)).toEqual(new Set(created));
  });
});
