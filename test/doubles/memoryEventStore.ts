/**
 * An in-memory EventStore for the pure core's unit tests. It passes the same contract suite as
 * the Firestore adapter (test/support/eventStoreContract.ts), which keeps it honest.
 */
import { ConcurrencyError, InFlightLimitError } from "../../events/errors.js";
import type { RecordedEvent } from "../../events/editEvents.js";
import { inFlightChange, type JobState } from "../../events/jobState.js";
import { cacheEntryOf, type CachedResult, type EventStore } from "../../events/eventStore.js";

export function createMemoryEventStore(): EventStore {
  const logs = new Map<string, RecordedEvent[]>();
  const projections = new Map<string, JobState>();
  const inFlight = new Map<string, number>();
  const cache = new Map<string, CachedResult & { ownerId: string }>();
  const copy = <T>(value: T): T => structuredClone(value);
  return {
    async load(jobId) {
      return copy(logs.get(jobId) ?? []);
    },
    async append(jobId, expectedVersion, events, projection, options = {}) {
      const log = logs.get(jobId) ?? [];
      if (events[0]?.seq !== expectedVersion + 1) throw new Error(`events for ${jobId} must start at seq ${expectedVersion + 1}`);
      if (log.some((event) => events.some((next) => next.seq === event.seq))) throw new ConcurrencyError(jobId, expectedVersion);
      const change = inFlightChange(events);
      const count = inFlight.get(projection.ownerId) ?? 0;
      if (change > 0 && options.maxInFlight !== undefined && count + change > options.maxInFlight) {
        throw new InFlightLimitError(count, options.maxInFlight);
      }
      inFlight.set(projection.ownerId, count + change);
      logs.set(jobId, [...log, ...copy(events)]);
      projections.set(jobId, copy(projection));
      const entry = cacheEntryOf(events, projection);
      if (entry) cache.set(entry.cacheKey, { ownerId: entry.ownerId, jobId: entry.jobId, succeededAt: entry.succeededAt });
    },
    async getProjection(jobId) {
      const state = projections.get(jobId);
      return state && copy(state);
    },
    async putProjection(state) {
      projections.set(state.jobId, copy(state));
    },
    async listByOwner(ownerId, limit) {
      return [...projections.values()]
        .filter((state) => state.ownerId === ownerId)
        .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
        .slice(0, limit)
        .map(copy);
    },
    async countInFlight(ownerId) {
      return inFlight.get(ownerId) ?? 0;
    },
    async listAwaitingUploadSince(before, limit) {
      return [...projections.values()]
        .filter((state) => state.status === "awaiting_upload" && state.createdAt < before.toISOString())
        .sort((a, b) => a.createdAt.localeCompare(b.createdAt))
        .slice(0, limit)
        .map(copy);
    },
    async listStaleQueued(before, limit) {
      return [...projections.values()]
        .filter((state) => state.status === "queued" && state.updatedAt < before.toISOString())
        .sort((a, b) => a.updatedAt.localeCompare(b.updatedAt))
        .slice(0, limit)
        .map(copy);
    },
    async listStartedBefore(before, limit) {
      return [...projections.values()]
        .filter((state) => (state.status === "queued" || state.status === "running") && state.firstStartedAt !== undefined && state.firstStartedAt < before.toISOString())
        .sort((a, b) => (a.firstStartedAt ?? "").localeCompare(b.firstStartedAt ?? ""))
        .slice(0, limit)
        .map(copy);
    },
    async findCachedResult(ownerId, cacheKey) {
      const entry = cache.get(cacheKey);
      return entry && entry.ownerId === ownerId ? { jobId: entry.jobId, succeededAt: entry.succeededAt } : undefined;
    },
    async listLapsedLeases(now, limit) {
      return [...projections.values()]
        .filter((state) => state.status === "running" && state.leaseExpiresAt !== undefined && state.leaseExpiresAt < now.toISOString())
        .sort((a, b) => (a.leaseExpiresAt ?? "").localeCompare(b.leaseExpiresAt ?? ""))
        .slice(0, limit)
        .map(copy);
    },
  };
}
