/**
 * The API under load, through the in-memory doubles: a user past their requests per minute is
 * answered 429 by what the instance already knows, with no store call, even while the store
 * hangs; the shared count stays the authority across instances; and an instance with every place
 * taken answers 503 with `Retry-After` at once instead of queueing, while over-quota callers still
 * get 429.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { EventStore } from "../../events/eventStore.js";
import type { RequestCounter } from "../../events/requestCounter.js";
import { createAdmission, type UserTurns } from "../../functions/admission.js";
import { parseConfig } from "../../functions/config.js";
import { createEditApi, type ApiRequest, type ApiResponse } from "../../functions/editApi.js";
import { createQuota } from "../../functions/quota.js";
import { createFixedTokenVerifier } from "../doubles/fixedTokenVerifier.js";
import { createMemoryRequestCounter } from "../doubles/memoryRequestCounter.js";
import { memoryCore, type MemoryCore } from "../support/coreFixtures.js";

const config = {
  uploadsBucket: "uploads",
  signedUrlTtlSeconds: 300,
  resultUrlTtlSeconds: 300,
  maxDirectUploadBytes: 200_000,
  maxUploadBytes: 1_000_000,
};
const signedEdit = Buffer.from(JSON.stringify({ operation: "comic", contentType: "image/jpeg" }));

/** A request counter that counts its calls and can be made to hang. */
function watchedCounter(inner: RequestCounter = createMemoryRequestCounter()) {
  let hanging = false;
  const watched = {
    calls: 0,
    hang() {
      hanging = true;
    },
    counter: {
      async hit(key: string, windowStart: Date) {
        watched.calls += 1;
        if (hanging) return new Promise<number>(() => {});
        return inner.hit(key, windowStart);
      },
    } satisfies RequestCounter,
  };
  return watched;
}

/** The memory store with its writes held until `release()`. */
function heldStore(store: EventStore) {
  let release: () => void = () => {};
  let gate = Promise.resolve();
  return {
    hold() {
      gate = new Promise<void>((resolve) => (release = resolve));
    },
    release: () => release(),
    store: { ...store, append: async (...args: Parameters<EventStore["append"]>) => (await gate, store.append(...args)) } as EventStore,
  };
}

function instance(
  core: MemoryCore,
  options: {
    counter: RequestCounter;
    perMinute: number;
    maxInProgress?: number;
    maxInProgressPerUser?: number;
    turns?: UserTurns;
    store?: EventStore;
    users?: { alice: string; bob: string; carol?: string };
  },
) {
  const users = options.users ?? { alice: `alice-${randomUUID()}`, bob: `bob-${randomUUID()}`, carol: `carol-${randomUUID()}` };
  const api = createEditApi({
    store: options.store ?? core.store,
    images: core.images,
    queue: core.queue,
    clock: core.clock,
    verifier: createFixedTokenVerifier({ "alice-token": users.alice, "bob-token": users.bob, "carol-token": users.carol ?? "carol" }),
    newJobId: randomUUID,
    config,
    quota: createQuota({ counter: options.counter, clock: core.clock, config: { quotaRequestsPerMinute: options.perMinute, quotaJobsInFlight: 1000 } }),
    ...(options.maxInProgress === undefined
      ? {}
      : {
          admission: createAdmission(
            { maxRequestsInProgress: options.maxInProgress, maxRequestsInProgressPerUser: options.maxInProgressPerUser ?? options.maxInProgress },
            options.turns,
          ),
        }),
  });
  const post = (token = "alice-token", rawBody = signedEdit): Promise<ApiResponse> =>
    api({ method: "POST", path: "/v1/edits", query: {}, headers: { authorization: `Bearer ${token}` }, rawBody } satisfies ApiRequest);
  return { post, users };
}

describe("a user past their requests per minute", () => {
  it("is answered 429 with Retry-After from what the instance knows, without a store call", async () => {
    const core = memoryCore();
    const watched = watchedCounter();
    const { post } = instance(core, { counter: watched.counter, perMinute: 3 });
    for (let i = 0; i < 3; i += 1) expect((await post()).status).toBe(202);
    expect(watched.calls).toBe(3);
    for (let i = 0; i < 20; i += 1) {
      const refused = await post();
      expect(refused).toMatchObject({ status: 429, body: { error: { code: "rate_limited" } } });
      expect(Number(refused.headers?.["Retry-After"])).toBeGreaterThanOrEqual(1);
    }
    expect(watched.calls).toBe(3);
    // Another user is counted in the store as before.
    expect((await post("bob-token")).status).toBe(202);
    expect(watched.calls).toBe(4);
  });

  it("is answered 429 even while the store hangs", async () => {
    const core = memoryCore();
    const watched = watchedCounter();
    const { post } = instance(core, { counter: watched.counter, perMinute: 2 });
    await post();
    await post();
    watched.hang();
    const began = performance.now();
    expect((await post()).status).toBe(429);
    expect(performance.now() - began).toBeLessThan(1_000);
  });

  it("says how long until the minute turns, and is admitted again when it has", async () => {
    const core = memoryCore();
    const { post } = instance(core, { counter: createMemoryRequestCounter(), perMinute: 1 });
    expect((await post()).status).toBe(202);
    core.clock.advance(15_000);
    expect((await post()).headers?.["Retry-After"]).toBe("45");
    core.clock.advance(45_000);
    expect((await post()).status).toBe(202);
  });

  it("is refused by the shared count across instances, which each then remember", async () => {
    const core = memoryCore();
    const shared = createMemoryRequestCounter();
    const first = watchedCounter(shared);
    const second = watchedCounter(shared);
    const a = instance(core, { counter: first.counter, perMinute: 4 });
    // The same tokens name the same users on both instances.
    const b = instance(core, { counter: second.counter, perMinute: 4, users: a.users });
    for (let i = 0; i < 2; i += 1) expect((await a.post()).status).toBe(202);
    for (let i = 0; i < 2; i += 1) expect((await b.post()).status).toBe(202);
    // a knows of its own 2 only: it asks the store, which counts 5 > 4.
    expect((await a.post()).status).toBe(429);
    expect(first.calls).toBe(3);
    expect((await a.post()).status).toBe(429);
    expect(first.calls).toBe(3);
    // b knew 4 (its own second hit was the 4th): at the limit, it refuses by itself.
    expect((await b.post()).status).toBe(429);
    expect(second.calls).toBe(2);
  });

  it("is never refused by the instance where the shared count would admit them", async () => {
    const core = memoryCore();
    const watched = watchedCounter();
    const { post } = instance(core, { counter: watched.counter, perMinute: 5 });
    for (let i = 0; i < 5; i += 1) expect((await post()).status).toBe(202);
    expect(watched.calls).toBe(5);
  });
});

describe("an instance with every place taken", () => {
  it("answers 503 with Retry-After at once, still 429 to a user past their quota, and admits again once a place is free", async () => {
    const core = memoryCore();
    const held = heldStore(core.store);
    const { post } = instance(core, { counter: createMemoryRequestCounter(), perMinute: 3, maxInProgress: 2, maxInProgressPerUser: 10, store: held.store });
    // Bob uses up his minute first.
    for (let i = 0; i < 3; i += 1) expect((await post("bob-token")).status).toBe(202);
    expect((await post("bob-token")).status).toBe(429);
    held.hold();
    const waiting = [post(), post()];
    const began = performance.now();
    const shed = await post();
    expect(performance.now() - began).toBeLessThan(1_000);
    expect(shed).toMatchObject({ status: 503, headers: { "Retry-After": "1" }, body: { error: { code: "unavailable" } } });
    expect((await post("bob-token")).status).toBe(429);
    held.release();
    expect((await Promise.all(waiting)).map((response) => response.status)).toEqual([202, 202]);
    core.clock.advance(60_000);
    expect((await post()).status).toBe(202);
  });

  it("lets a user past their places wait their turn, in order, while other users are still admitted", async () => {
    const core = memoryCore();
    const held = heldStore(core.store);
    const { post } = instance(core, { counter: createMemoryRequestCounter(), perMinute: 100, maxInProgress: 4, maxInProgressPerUser: 2, store: held.store });
    held.hold();
    const alices = [post(), post(), post(), post()];
    const others = [post("bob-token"), post("carol-token")];
    // Four places taken, two of Alice's waiting for hers: a request of anyone else is overload.
    expect((await post("bob-token")).status).toBe(503);
    held.release();
    expect((await Promise.all([...alices, ...others])).map((response) => response.status)).toEqual([202, 202, 202, 202, 202, 202]);
    expect((await post()).status).toBe(202);
  });

  it("answers 429 to a user with too many requests waiting, and to one whose turn does not come in time", async () => {
    const core = memoryCore();
    const held = heldStore(core.store);
    const turns = { maxTurnWaitMs: 100, maxWaitingPerUser: 1 };
    const { post } = instance(core, { counter: createMemoryRequestCounter(), perMinute: 100, maxInProgress: 4, maxInProgressPerUser: 2, turns, store: held.store });
    held.hold();
    const running = [post(), post()];
    const waiting = post();
    const burst = await post();
    expect(burst).toMatchObject({ status: 429, headers: { "Retry-After": "1" }, body: { error: { code: "rate_limited" } } });
    expect(await waiting).toMatchObject({ status: 429, body: { error: { code: "rate_limited" } } });
    held.release();
    expect((await Promise.all(running)).map((response) => response.status)).toEqual([202, 202]);
    expect((await post()).status).toBe(202);
  });

  it("gives a place back whatever the answer", async () => {
    const core = memoryCore();
    const { post } = instance(core, { counter: createMemoryRequestCounter(), perMinute: 100, maxInProgress: 1 });
    for (let i = 0; i < 5; i += 1) expect((await post("alice-token", Buffer.from("{not json"))).status).toBe(400);
    expect((await post("nobody-token")).status).toBe(401);
    expect((await post()).status).toBe(202);
  });
});

describe("the admission settings", () => {
  const env = { GCP_PROJECT: "p", UPLOADS_BUCKET: "u", RESULTS_BUCKET: "r", JOBS_TOPIC: "t" };

  it("default to the deployed concurrency per instance, and 4 per user", () => {
    expect(parseConfig(env)).toMatchObject({ maxRequestsInProgress: 40, maxRequestsInProgressPerUser: 4 });
    expect(parseConfig({ ...env, MAX_REQUESTS_IN_PROGRESS: "100", MAX_REQUESTS_IN_PROGRESS_PER_USER: "10" })).toMatchObject({ maxRequestsInProgress: 100, maxRequestsInProgressPerUser: 10 });
  });

  it.each([
    [{ MAX_REQUESTS_IN_PROGRESS: "0" }, /MAX_REQUESTS_IN_PROGRESS must be an integer from 1/],
    [{ MAX_REQUESTS_IN_PROGRESS_PER_USER: "many" }, /MAX_REQUESTS_IN_PROGRESS_PER_USER/],
  ])("refuses %j", (bad, message) => {
    expect(() => parseConfig({ ...env, ...bad })).toThrow(message);
  });
});
