/**
 * infra/firestore.rules against the official Firestore emulator, with real users of the Auth
 * emulator (email and password, and a guest's anonymous sign-in): a signed-in user reads their own
 * jobs' projections and nothing else (not the event log, which names workers and objects, nor the
 * job's server state, nor the in-flight counts); no client can write anything. Data is seeded as the admin,
 * the way the API and the workers write it.
 */
import { randomUUID } from "node:crypto";

import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";

import { signInAnonymously, signUp } from "../../local/auth/emulatorUsers.js";
import { startRulesEmulator, type Caller, type FirestoreRest, type RulesEmulator } from "../support/rulesEmulator.js";

const admin: Caller = { kind: "admin" };
const anonymous: Caller = { kind: "anonymous" };

const services = inject("services");
let emulator: RulesEmulator;
let db: FirestoreRest;
// Signed up in beforeAll; the uids are the Auth emulator's.
const alice = { kind: "user", uid: "", idToken: "" } satisfies Caller;
const bob = { kind: "user", uid: "", idToken: "" } satisfies Caller;
const guest = { kind: "user", uid: "", idToken: "" } satisfies Caller;
let aliceUid: string;
let bobUid: string;
const aliceJob = `job-${randomUUID()}`;
const bobJob = `job-${randomUUID()}`;
const idempotencyKey = `key-${randomUUID()}`;

const job = (jobId: string, ownerId: string) => ({
  jobId,
  ownerId,
  status: "queued",
  operation: "upscale",
  version: 1,
  attempts: 0,
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:00.000Z",
});
const event = (seq: string) => ({ seq, type: "EditRequested", at: "2026-01-01T00:00:00.000Z", schemaVersion: 1 });

beforeAll(async () => {
  process.env.METADATA_SERVER_DETECTION = "none";
  const password = `pw-${randomUUID()}`;
  const users = await Promise.all([
    signUp(services.authHost, `alice-${randomUUID()}@example.com`, password),
    signUp(services.authHost, `bob-${randomUUID()}@example.com`, password),
    signInAnonymously(services.authHost),
  ]);
  for (const [caller, user] of [[alice, users[0]], [bob, users[1]], [guest, users[2]]] as const) Object.assign(caller, { uid: user.userId, idToken: user.idToken });
  [aliceUid, bobUid] = [alice.uid, bob.uid];
  // An emulator of its own (the rules loaded), for the project the Auth emulator's tokens name.
  emulator = await startRulesEmulator(services.authHost);
  db = emulator.client(services.projectId);
  const seeded = await Promise.all([
    db.create(admin, "jobs", aliceJob, job(aliceJob, aliceUid)),
    db.create(admin, "jobs", bobJob, job(bobJob, bobUid)),
    db.create(admin, `jobs/${aliceJob}/events`, "0000000001", event("0000000001")),
    db.create(admin, `jobs/${bobJob}/events`, "0000000001", event("0000000001")),
    db.create(admin, "idempotency", idempotencyKey, { jobId: aliceJob, ownerId: aliceUid }),
    db.create(admin, `jobs/${aliceJob}/server`, "state", { workerId: "host-1234", idempotencyKey }),
    db.create(admin, "inFlight", aliceUid, { count: 1 }),
    db.create(admin, "webhookSecrets", aliceUid, { secret: "whsec_c2VjcmV0" }),
    db.create(admin, "webhookDeliveries", `msg_${aliceJob}_1`, { jobId: aliceJob, ownerId: aliceUid, state: "pending" }),
  ]);
  expect(seeded.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200]);
}, 120_000);

afterAll(async () => {
  await emulator?.process.stop();
});

const denied = (result: { status: number; body: any }) => {
  expect(result.status).toBe(403);
  expect(result.body.error.status).toBe("PERMISSION_DENIED");
};

describe("reads", () => {
  it("lets the owner read their job's projection", async () => {
    const jobDoc = await db.get(alice, `jobs/${aliceJob}`);
    expect(jobDoc.status).toBe(200);
    expect(jobDoc.body.fields.ownerId.stringValue).toBe(aliceUid);
  });

  it("keeps the event log, the job's server state, the in-flight count and the webhook secret and records server-only, even from the owner", async () => {
    denied(await db.get(alice, `jobs/${aliceJob}/events/0000000001`));
    denied(await db.list(alice, `jobs/${aliceJob}/events`));
    denied(await db.get(alice, `jobs/${aliceJob}/server/state`));
    denied(await db.get(alice, `inFlight/${aliceUid}`));
    denied(await db.get(alice, `webhookSecrets/${aliceUid}`));
    denied(await db.get(alice, `webhookDeliveries/msg_${aliceJob}_1`));
    expect((await db.get(admin, `jobs/${aliceJob}/server/state`)).status).toBe(200);
  });

  it("lets the owner list their jobs with the ownerId query the app runs", async () => {
    const result = await db.queryEqual(alice, "jobs", "ownerId", aliceUid);
    expect(result.status).toBe(200);
    const names = (result.body as Array<{ document?: { name: string } }>).flatMap((r) => (r.document ? [r.document.name] : []));
    expect(names).toEqual([expect.stringMatching(new RegExp(`/jobs/${aliceJob}$`))]);
  });

  it("denies another user's job, its events, and an unfiltered list", async () => {
    denied(await db.get(bob, `jobs/${aliceJob}`));
    denied(await db.get(bob, `jobs/${aliceJob}/events/0000000001`));
    denied(await db.list(bob, `jobs/${aliceJob}/events`));
    denied(await db.list(alice, "jobs"));
    denied(await db.queryEqual(bob, "jobs", "ownerId", aliceUid));
  });

  it("denies a guest (anonymous sign-in) another user's job and list", async () => {
    denied(await db.get(guest, `jobs/${aliceJob}`));
    denied(await db.queryEqual(guest, "jobs", "ownerId", aliceUid));
    const own = await db.queryEqual(guest, "jobs", "ownerId", guest.uid);
    expect(own.status).toBe(200);
    expect((own.body as Array<{ document?: unknown }>).filter((r) => r.document)).toEqual([]);
  });

  it("denies reads without sign-in", async () => {
    denied(await db.get(anonymous, `jobs/${aliceJob}`));
    denied(await db.get(anonymous, `jobs/${aliceJob}/events/0000000001`));
    denied(await db.queryEqual(anonymous, "jobs", "ownerId", aliceUid));
  });

  it("keeps idempotency records server-only, even from the job's owner", async () => {
    denied(await db.get(alice, `idempotency/${idempotencyKey}`));
    expect((await db.get(admin, `idempotency/${idempotencyKey}`)).status).toBe(200);
  });
});

describe("writes", () => {
  const callers: Array<[string, Caller]> = [
    ["the owner", alice],
    ["another user", bob],
    ["a guest (anonymous sign-in)", guest],
    ["an anonymous caller", anonymous],
  ];

  it.each(callers)("denies %s creating, updating or deleting a job", async (_who, caller) => {
    denied(await db.create(caller, "jobs", `job-${randomUUID()}`, job("x", aliceUid)));
    denied(await db.update(caller, `jobs/${aliceJob}`, { ...job(aliceJob, aliceUid), status: "succeeded" }));
    denied(await db.delete(caller, `jobs/${aliceJob}`));
  });

  it.each(callers)("denies %s appending, changing or deleting events", async (_who, caller) => {
    denied(await db.create(caller, `jobs/${aliceJob}/events`, "0000000002", event("0000000002")));
    denied(await db.update(caller, `jobs/${aliceJob}/events/0000000001`, event("0000000001")));
    denied(await db.delete(caller, `jobs/${aliceJob}/events/0000000001`));
  });

  it.each(callers)("denies %s touching idempotency records", async (_who, caller) => {
    denied(await db.create(caller, "idempotency", `key-${randomUUID()}`, { jobId: aliceJob }));
    denied(await db.update(caller, `idempotency/${idempotencyKey}`, { jobId: bobJob }));
    denied(await db.delete(caller, `idempotency/${idempotencyKey}`));
  });

  it("left every seeded document as the server wrote it", async () => {
    const jobDoc = await db.get(admin, `jobs/${aliceJob}`);
    expect(jobDoc.body.fields.status.stringValue).toBe("queued");
    const events = await db.list(admin, `jobs/${aliceJob}/events`);
    expect(events.body.documents).toHaveLength(1);
    expect((await db.get(admin, `idempotency/${idempotencyKey}`)).body.fields.jobId.stringValue).toBe(aliceJob);
  });
});
