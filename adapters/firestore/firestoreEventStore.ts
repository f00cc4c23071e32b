/**
 * The event store on Firestore: `jobs/{jobId}/events/{seq}` is the append-only log (one
 * document per event, zero-padded seq as its id) and `jobs/{jobId}` the projection clients
 * watch. An append creates the next seq documents with `create()` and sets the projection in one
 * batch, so a second writer at the same version fails with ALREADY_EXISTS and nothing of its
 * write lands. `inFlight/{ownerId}` counts each owner's jobs that have not ended, changed in that
 * same batch; an append that starts a job under a limit writes it on the condition that the count
 * is still the one it read (`lastUpdateTime`), so that the limit check and the admission are one
 * atomic step. What clients must not see of a job (its worker, its input's bucket
 * and object, its idempotency key and request fingerprint) is kept beside the projection, in
 * `jobs/{jobId}/server/state`, written in the same batch. Clients read only the projection
 * (infra/firestore.rules); the log, the server state and the counts are the server's.
 */
import { FieldValue, type Firestore, type Timestamp, type WriteBatch } from "@google-cloud/firestore";
import { parseEvent, type RecordedEvent } from "../../events/editEvents.js";
import { ConcurrencyError, InFlightLimitError } from "../../events/errors.js";
import { inFlightChange, type JobState } from "../../events/jobState.js";
import { cacheEntryOf, type EventStore } from "../../events/eventStore.js";
import { withStoreDeadlines } from "./storeDeadline.js";

const JOBS = "jobs";
const EVENTS = "events";
const IN_FLIGHT_COUNTS = "inFlight";
const SERVER = "server";
const SERVER_STATE = "state";
/** The result cache's index: one document per cache key (which is per owner), written with the EditSucceeded that carries it. */
const RESULT_CACHE = "resultCache";
/** Tries of an admission whose owner's count changed between its read and its write. */
const COUNTED_ATTEMPTS = 20;
/** gRPC ALREADY_EXISTS and FAILED_PRECONDITION, as the Firestore client reports them. */
const ALREADY_EXISTS = 6;
const FAILED_PRECONDITION = 9;

export function seqId(seq: number): string {
  return String(seq).padStart(10, "0");
}

/** The longest one store call may take before it fails as unavailable, unless told otherwise. */
export const DEFAULT_STORE_DEADLINE_MS = 20_000;

export function createFirestoreEventStore(db: Firestore, options: { deadlineMs?: number } = {}): EventStore {
  return withStoreDeadlines(firestoreEventStore(db), options.deadlineMs ?? DEFAULT_STORE_DEADLINE_MS);
}

function firestoreEventStore(db: Firestore): EventStore {
  const job = (jobId: string) => db.collection(JOBS).doc(jobId);
  const serverState = (jobId: string) => job(jobId).collection(SERVER).doc(SERVER_STATE);
  /** The jobs of a query's projections, each joined with its server state. */
  const withServerState = async (docs: ReadonlyArray<{ id: string; data(): unknown }>): Promise<JobState[]> => {
    if (docs.length === 0) return [];
    const hidden = await db.getAll(...docs.map((doc) => serverState(doc.id)));
    return docs.map((doc, index) => fromDocuments(doc.data() as ProjectionDocument, hidden[index]?.data() as ServerDocument | undefined));
  };
  return {
    async load(jobId) {
      const snapshot = await job(jobId).collection(EVENTS).orderBy("seq").get();
      return snapshot.docs.map((doc) => parseEvent(doc.data() as Parameters<typeof parseEvent>[0]));
    },

    async append(jobId, expectedVersion, events, projection, options = {}) {
      const first = events[0];
      if (!first || first.seq !== expectedVersion + 1) {
        throw new Error(`events for ${jobId} must start at seq ${expectedVersion + 1}`);
      }
      const change = inFlightChange(events);
      const counter = db.collection(IN_FLIGHT_COUNTS).doc(projection.ownerId);
      const writeJob = (batch: WriteBatch) => {
        for (const event of events) batch.create(job(jobId).collection(EVENTS).doc(seqId(event.seq)), toEventDocument(event));
        batch.set(job(jobId), toProjectionDocument(projection));
        batch.set(serverState(jobId), toServerDocument(projection));
        const entry = cacheEntryOf(events, projection);
        if (entry) batch.set(db.collection(RESULT_CACHE).doc(entry.cacheKey), { ownerId: entry.ownerId, jobId: entry.jobId, succeededAt: entry.succeededAt });
      };
      if (change <= 0 || options.maxInFlight === undefined) {
        const batch = db.batch();
        writeJob(batch);
        if (change !== 0) batch.set(counter, { count: FieldValue.increment(change) }, { merge: true });
        try {
          await batch.commit();
        } catch (error) {
          if (isGrpcCode(error, ALREADY_EXISTS)) throw new ConcurrencyError(jobId, expectedVersion);
          throw error;
        }
        return;
      }
      // Admission: read the owner's count, then write the job and the raised count in one batch on
      // the condition that the count has not changed since (optimistic, so parallel creates of one
      // user wait on no lock); when it has, read again and retry.
      const limit = options.maxInFlight;
      for (let attempt = 1; ; attempt += 1) {
        const seen = await counter.get();
        const inFlight = Number(seen.get("count") ?? 0);
        if (inFlight + change > limit) throw new InFlightLimitError(inFlight, limit);
        const batch = db.batch();
        writeJob(batch);
        if (seen.exists) batch.update(counter, { count: inFlight + change }, { lastUpdateTime: seen.updateTime as Timestamp });
        else batch.create(counter, { count: inFlight + change });
        try {
          await batch.commit();
          return;
        } catch (error) {
          const raced = isGrpcCode(error, FAILED_PRECONDITION) || (isGrpcCode(error, ALREADY_EXISTS) && !seen.exists && !(await job(jobId).collection(EVENTS).doc(seqId(first.seq)).get()).exists);
          if (!raced) {
            if (isGrpcCode(error, ALREADY_EXISTS)) throw new ConcurrencyError(jobId, expectedVersion);
            throw error;
          }
          if (attempt >= COUNTED_ATTEMPTS) throw error;
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 20 * attempt));
        }
      }
    },

    async getProjection(jobId) {
      const [visible, hidden] = await db.getAll(job(jobId), serverState(jobId));
      return visible?.exists ? fromDocuments(visible.data() as ProjectionDocument, hidden?.data() as ServerDocument | undefined) : undefined;
    },

    async putProjection(state) {
      const batch = db.batch();
      batch.set(job(state.jobId), toProjectionDocument(state));
      batch.set(serverState(state.jobId), toServerDocument(state));
      await batch.commit();
    },

    async listByOwner(ownerId, limit) {
      const snapshot = await db.collection(JOBS).where("ownerId", "==", ownerId).orderBy("createdAt", "desc").limit(limit).get();
      return withServerState(snapshot.docs);
    },

    async countInFlight(ownerId) {
      const snapshot = await db.collection(IN_FLIGHT_COUNTS).doc(ownerId).get();
      return Number(snapshot.get("count") ?? 0);
    },

    async listAwaitingUploadSince(before, limit) {
      // A job awaiting its upload has one event, so its updatedAt is its createdAt; this uses the
      // same (status, updatedAt) index as listStaleQueued.
      const snapshot = await db
        .collection(JOBS)
        .where("status", "==", "awaiting_upload")
        .where("updatedAt", "<", before.toISOString())
        .orderBy("updatedAt")
        .limit(limit)
        .get();
      return withServerState(snapshot.docs);
    },

    async listLapsedLeases(now, limit) {
      // ISO-8601 instants in UTC compare as strings in time order.
      const snapshot = await db
        .collection(JOBS)
        .where("status", "==", "running")
        .where("leaseExpiresAt", "<", now.toISOString())
        .orderBy("leaseExpiresAt")
        .limit(limit)
        .get();
      return withServerState(snapshot.docs);
    },

    async listStartedBefore(before, limit) {
      const snapshot = await db
        .collection(JOBS)
        .where("status", "in", ["queued", "running"])
        .where("firstStartedAt", "<", before.toISOString())
        .orderBy("firstStartedAt")
        .limit(limit)
        .get();
      return withServerState(snapshot.docs);
    },

    async findCachedResult(ownerId, cacheKey) {
      const snapshot = await db.collection(RESULT_CACHE).doc(cacheKey).get();
      const entry = snapshot.data() as { ownerId?: string; jobId?: string; succeededAt?: string } | undefined;
      if (!entry || entry.ownerId !== ownerId || !entry.jobId || !entry.succeededAt) return undefined;
      return { jobId: entry.jobId, succeededAt: entry.succeededAt };
    },

    async listStaleQueued(before, limit) {
      const snapshot = await db
        .collection(JOBS)
        .where("status", "==", "queued")
        .where("updatedAt", "<", before.toISOString())
        .orderBy("updatedAt")
        .limit(limit)
        .get();
      return withServerState(snapshot.docs);
    },
  };
}

function toEventDocument(event: RecordedEvent) {
  return { seq: event.seq, type: event.type, at: event.at, schemaVersion: event.schemaVersion, data: event.data };
}

/** What of a job only the server reads. */
type ServerDocument = Pick<JobState, "input" | "workerId" | "idempotencyKey" | "requestFingerprint" | "cacheDigest" | "cacheKey">;

/**
 * The projection as stored, as clients see it: the job's state without the server's fields, with
 * the output's `gs://` address beside its bucket and object, so that a listener sees where the
 * result is without asking the API.
 */
type ProjectionDocument = Omit<JobState, "output" | keyof ServerDocument> & { output?: NonNullable<JobState["output"]> & { url: string } };

function toProjectionDocument(state: JobState): ProjectionDocument {
  const { output, input: _input, workerId: _workerId, idempotencyKey: _key, requestFingerprint: _fingerprint, cacheDigest: _digest, cacheKey: _cacheKey, ...rest } = state;
  if (!output) return rest;
  return { ...rest, output: { ...output, url: `gs://${output.bucket}/${output.object}` } };
}

function toServerDocument(state: JobState): ServerDocument {
  return {
    input: state.input,
    ...(state.workerId === undefined ? {} : { workerId: state.workerId }),
    ...(state.idempotencyKey === undefined ? {} : { idempotencyKey: state.idempotencyKey }),
    ...(state.requestFingerprint === undefined ? {} : { requestFingerprint: state.requestFingerprint }),
    ...(state.cacheDigest === undefined ? {} : { cacheDigest: state.cacheDigest }),
    ...(state.cacheKey === undefined ? {} : { cacheKey: state.cacheKey }),
  };
}

/** Joins a projection with its server state; a projection written before the split carries both. */
function fromDocuments(visible: ProjectionDocument, hidden: ServerDocument | undefined): JobState {
  const joined = { ...visible, ...hidden } as JobState & { output?: { url?: string } };
  if (!joined.output) return joined;
  const { url: _url, ...output } = joined.output as NonNullable<JobState["output"]> & { url: string };
  return { ...joined, output };
}

function isGrpcCode(error: unknown, code: number): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === code;
}
