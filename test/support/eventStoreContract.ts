/**
 * The contract every EventStore adapter keeps, as one suite run against each of them: ordered
 * logs, atomic append-with-projection, exactly one winner among concurrent writers, and a
 * projection that the log alone rebuilds.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { EditCommand } from "../../events/decide.js";
import { ConcurrencyError, InFlightLimitError } from "../../events/errors.js";
import { handleCommand, rebuildProjection } from "../../events/handleCommand.js";
import { evolve, type JobState } from "../../events/jobState.js";
import type { EventStore } from "../../events/eventStore.js";

function tickingClock(start = Date.parse("2026-11-22T10:00:00.000Z")) {
  let now = start;
  return { now: () => new Date((now += 1000)) };
}

export function requestEdit(jobId: string, ownerId: string): EditCommand {
  return {
    type: "RequestEdit",
    jobId,
    ownerId,
    operation: "upscale",
    params: { scale: 4 },
    flow: "signed_upload",
    input: { bucket: "uploads", object: `uploads/${jobId}`, contentType: "image/jpeg" },
  };
}

export function recordUpload(jobId: string): EditCommand {
  return { type: "RecordUpload", bucket: "uploads", object: `uploads/${jobId}`, contentType: "image/jpeg", sizeBytes: 1234 };
}

export function eventStoreContract(adapter: string, makeStore: () => EventStore): void {
  describe(`EventStore contract: ${adapter}`, () => {
    it("knows nothing of a job that was never written", async () => {
      const store = makeStore();
      const jobId = randomUUID();
      expect(await store.load(jobId)).toEqual([]);
      expect(await store.getProjection(jobId)).toBeUndefined();
    });

    it("appends in order and writes the projection beside the events", async () => {
      const store = makeStore();
      const deps = { store, clock: tickingClock() };
      const jobId = randomUUID();
      await handleCommand(deps, jobId, requestEdit(jobId, "owner-a"));
      const outcome = await handleCommand(deps, jobId, recordUpload(jobId));
      const log = await store.load(jobId);
      expect(log.map((event) => [event.seq, event.type])).toEqual([
        [1, "EditRequested"],
        [2, "ImageUploaded"],
        [3, "EditQueued"],
      ]);
      expect(await store.getProjection(jobId)).toEqual(outcome.state);
      expect(outcome.state).toMatchObject({ status: "queued", version: 3 });
    });

    it("lets exactly one of two writers at the same version win; the loser writes nothing", async () => {
      const store = makeStore();
      const deps = { store, clock: tickingClock() };
      const jobId = randomUUID();
      const created = await handleCommand(deps, jobId, requestEdit(jobId, "owner-a"));
      const state = created.state as JobState;
      const at = new Date().toISOString();
      const cancelA = { type: "EditCanceled" as const, data: { by: "writer-a" }, seq: 2, at, schemaVersion: 1 };
      const cancelB = { type: "EditCanceled" as const, data: { by: "writer-b" }, seq: 2, at, schemaVersion: 1 };
      const results = await Promise.allSettled([
        store.append(jobId, 1, [cancelA], evolve(state, cancelA)),
        store.append(jobId, 1, [cancelB], evolve(state, cancelB)),
      ]);
      expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(1);
      const rejected = results.filter((result): result is PromiseRejectedResult => result.status === "rejected");
      expect(rejected).toHaveLength(1);
      expect(rejected[0]?.reason).toBeInstanceOf(ConcurrencyError);
      const log = await store.load(jobId);
      expect(log).toHaveLength(2);
      const winner = (log[1]?.data as { by: string }).by;
      expect(await store.getProjection(jobId)).toEqual(await rebuildProjection(store, jobId));
      expect(["writer-a", "writer-b"]).toContain(winner);
    });

    it("serialises concurrent commands: five cancels make one EditCanceled", async () => {
      const store = makeStore();
      const deps = { store, clock: tickingClock() };
      const jobId = randomUUID();
      await handleCommand(deps, jobId, requestEdit(jobId, "owner-a"));
      await handleCommand(deps, jobId, recordUpload(jobId));
      const outcomes = await Promise.all(
        Array.from({ length: 5 }, (_, i) => handleCommand(deps, jobId, { type: "CancelEdit", by: `caller-${i}` })),
      );
      expect(outcomes.filter((outcome) => outcome.appended.length === 1)).toHaveLength(1);
      expect(outcomes.filter((outcome) => outcome.rejection?.code === "already_ended")).toHaveLength(4);
      const types = (await store.load(jobId)).map((event) => event.type);
      expect(types.filter((type) => type === "EditCanceled")).toHaveLength(1);
    });

    it("serialises concurrent upload notifications: one ImageUploaded, one EditQueued", async () => {
      const store = makeStore();
      const deps = { store, clock: tickingClock() };
      const jobId = randomUUID();
      await handleCommand(deps, jobId, requestEdit(jobId, "owner-a"));
      await Promise.all(Array.from({ length: 4 }, () => handleCommand(deps, jobId, recordUpload(jobId))));
      expect((await store.load(jobId)).map((event) => event.type)).toEqual(["EditRequested", "ImageUploaded", "EditQueued"]);
    });

    it("rebuilds the stored projection from the log alone", async () => {
      const store = makeStore();
      const deps = { store, clock: tickingClock() };
      const jobId = randomUUID();
      await handleCommand(deps, jobId, requestEdit(jobId, "owner-a"));
      await handleCommand(deps, jobId, recordUpload(jobId));
      await handleCommand(deps, jobId, { type: "StartEdit", workerId: "w1", leaseMs: 60_000 });
      await handleCommand(deps, jobId, {
        type: "CompleteEdit",
        workerId: "w1",
        output: { bucket: "results", object: `results/${jobId}/output.png`, contentType: "image/png", width: 8, height: 8, sizeBytes: 99 },
        processingMs: 12,
        inferenceMs: 7,
      });
      const stored = await store.getProjection(jobId);
      expect(stored).toMatchObject({ status: "succeeded", version: 5, attempts: 1 });
      expect(await rebuildProjection(store, jobId)).toEqual(stored);
    });

    it("lists a user's jobs, newest first, and nobody else's", async () => {
      const store = makeStore();
      const deps = { store, clock: tickingClock() };
      const owner = `owner-${randomUUID()}`;
      const ids = [randomUUID(), randomUUID(), randomUUID()];
      for (const jobId of ids) await handleCommand(deps, jobId, requestEdit(jobId, owner));
      const stranger = randomUUID();
      await handleCommand(deps, stranger, requestEdit(stranger, `other-${randomUUID()}`));
      const listed = await store.listByOwner(owner, 10);
      expect(listed.map((job) => job.jobId)).toEqual([...ids].reverse());
    });

    it("counts a user's jobs that have not ended, and nobody else's", async () => {
      const store = makeStore();
      const deps = { store, clock: tickingClock() };
      const owner = `owner-${randomUUID()}`;
      const [awaiting, queued, canceled] = [randomUUID(), randomUUID(), randomUUID()];
      for (const jobId of [awaiting, queued, canceled]) await handleCommand(deps, jobId, requestEdit(jobId, owner));
      await handleCommand(deps, queued, recordUpload(queued));
      await handleCommand(deps, canceled, { type: "CancelEdit", by: owner });
      const stranger = randomUUID();
      await handleCommand(deps, stranger, requestEdit(stranger, `other-${randomUUID()}`));
      expect(await store.countInFlight(owner)).toBe(2);
    });

    it("refuses to start a job past the owner's in-flight limit, atomically, and frees a slot when one ends", async () => {
      const store = makeStore();
      const deps = { store, clock: tickingClock() };
      const owner = `owner-${randomUUID()}`;
      const ids = Array.from({ length: 6 }, () => randomUUID());
      const outcomes = await Promise.allSettled(ids.map((jobId) => handleCommand(deps, jobId, requestEdit(jobId, owner), { maxInFlight: 3 })));
      const refused = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === "rejected");
      expect(refused).toHaveLength(3);
      for (const outcome of refused) expect(outcome.reason).toBeInstanceOf(InFlightLimitError);
      expect(await store.countInFlight(owner)).toBe(3);
      const admitted = ids.filter((_, index) => outcomes[index]?.status === "fulfilled");
      const refusedId = ids.find((_, index) => outcomes[index]?.status === "rejected") as string;
      // Nothing of a refused job was written.
      expect(await store.load(refusedId)).toEqual([]);
      expect(await store.getProjection(refusedId)).toBeUndefined();
      await handleCommand(deps, admitted[0] as string, { type: "CancelEdit", by: owner });
      expect(await store.countInFlight(owner)).toBe(2);
      const next = randomUUID();
      await handleCommand(deps, next, requestEdit(next, owner), { maxInFlight: 3 });
      expect(await store.countInFlight(owner)).toBe(3);
    });

    it("lists jobs still awaiting their upload since before an instant, and not later or uploaded ones", async () => {
      const store = makeStore();
      const deps = { store, clock: tickingClock(Date.parse("2018-03-01T00:00:00.000Z")) };
      const [abandoned, uploaded] = [randomUUID(), randomUUID()];
      for (const jobId of [abandoned, uploaded]) await handleCommand(deps, jobId, requestEdit(jobId, "owner-a"));
      await handleCommand(deps, uploaded, recordUpload(uploaded));
      const recent = randomUUID();
      await handleCommand({ store, clock: tickingClock(Date.parse("2018-03-02T00:00:00.000Z")) }, recent, requestEdit(recent, "owner-a"));
      const found = (await store.listAwaitingUploadSince(new Date("2018-03-01T12:00:00.000Z"), 1000)).map((job) => job.jobId);
      expect(found).toContain(abandoned);
      expect(found).not.toContain(uploaded);
      expect(found).not.toContain(recent);
    });

    it("lists jobs queued since before an instant, and not those queued later or running", async () => {
      const store = makeStore();
      const deps = { store, clock: tickingClock(Date.parse("2019-06-01T00:00:00.000Z")) };
      const [old, running] = [randomUUID(), randomUUID()];
      for (const jobId of [old, running]) {
        await handleCommand(deps, jobId, requestEdit(jobId, "owner-a"));
        await handleCommand(deps, jobId, recordUpload(jobId));
      }
      await handleCommand(deps, running, { type: "StartEdit", workerId: "w1", leaseMs: 1_000 });
      const recent = randomUUID();
      const later = { store, clock: tickingClock(Date.parse("2019-06-02T00:00:00.000Z")) };
      await handleCommand(later, recent, requestEdit(recent, "owner-a"));
      await handleCommand(later, recent, recordUpload(recent));
      const found = (await store.listStaleQueued(new Date("2019-06-01T12:00:00.000Z"), 1000)).map((job) => job.jobId);
      expect(found).toContain(old);
      expect(found).not.toContain(running);
      expect(found).not.toContain(recent);
    });

    it("lists running jobs whose lease lapsed, and not those still held", async () => {
      const store = makeStore();
      const clock = tickingClock(Date.parse("2020-01-01T00:00:00.000Z"));
      const deps = { store, clock };
      const [lapsed, held] = [randomUUID(), randomUUID()];
      for (const [jobId, leaseMs] of [[lapsed, 5_000], [held, 3_600_000]] as const) {
        await handleCommand(deps, jobId, requestEdit(jobId, "owner-a"));
        await handleCommand(deps, jobId, recordUpload(jobId));
        await handleCommand(deps, jobId, { type: "StartEdit", workerId: "w1", leaseMs });
      }
      // Other tests' jobs share the store; only these two are ours.
      const found = (await store.listLapsedLeases(new Date("2020-01-01T00:10:00.000Z"), 1000)).map((job) => job.jobId);
      expect(found).toContain(lapsed);
      expect(found).not.toContain(held);
    });

    it("lists jobs not ended that first started before an instant, and not ended or later ones", async () => {
      const store = makeStore();
      const deps = { store, clock: tickingClock(Date.parse("2017-01-01T00:00:00.000Z")) };
      const [overdue, done, later] = [randomUUID(), randomUUID(), randomUUID()];
      for (const jobId of [overdue, done, later]) {
        await handleCommand(deps, jobId, requestEdit(jobId, "owner-a"));
        await handleCommand(deps, jobId, recordUpload(jobId));
      }
      await handleCommand(deps, overdue, { type: "StartEdit", workerId: "w1", leaseMs: 5_000 });
      await handleCommand(deps, done, { type: "StartEdit", workerId: "w1", leaseMs: 5_000 });
      await handleCommand(deps, done, { type: "CancelEdit", by: "owner-a" });
      const cutoff = deps.clock.now();
      await handleCommand(deps, later, { type: "StartEdit", workerId: "w1", leaseMs: 5_000 });
      const found = (await store.listStartedBefore(cutoff, 1000)).map((job) => job.jobId);
      expect(found).toContain(overdue);
      expect(found).not.toContain(done);
      expect(found).not.toContain(later);
    });

    it("finds a result by its cache key for its owner only, written with the EditSucceeded that carries the key", async () => {
      const store = makeStore();
      const deps = { store, clock: tickingClock() };
      const [jobId, cacheKey] = [randomUUID(), randomUUID()];
      await handleCommand(deps, jobId, requestEdit(jobId, "owner-a"));
      await handleCommand(deps, jobId, recordUpload(jobId));
      await handleCommand(deps, jobId, { type: "StartEdit", workerId: "w1", leaseMs: 60_000 });
      expect(await store.findCachedResult("owner-a", cacheKey)).toBeUndefined();
      const output = { bucket: "results", object: `results/${jobId}/output.png`, contentType: "image/png", width: 2, height: 2, sizeBytes: 10 };
      const done = await handleCommand(deps, jobId, { type: "CompleteEdit", workerId: "w1", output, processingMs: 1, inferenceMs: 1, cacheKey });
      expect(await store.findCachedResult("owner-a", cacheKey)).toEqual({ jobId, succeededAt: done.appended[0]?.at });
      expect(await store.findCachedResult("owner-b", cacheKey)).toBeUndefined();
      expect((await store.getProjection(jobId))?.cacheKey).toBe(cacheKey);
    });
  });
}
