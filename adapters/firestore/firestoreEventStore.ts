/**
 * The event store on Firestore: `jobs/{jobId}/events/{seq}` is the append-only log (one
 * document per event, zero-padded seq as its id) and `jobs/{jobId}` the projection clients
 * watch. An append creates the next seq documents with `create()` and sets the projection in one
 * transaction, so a second writer at the same version fails with ALREADY_EXISTS and nothing of
 * its write lands.
 */
import type { Firestore } from "@google-cloud/firestore";
import { parseEvent, type RecordedEvent } from "../../events/editEvents.js";
import { ConcurrencyError } from "../../events/errors.js";
import type { JobState } from "../../events/jobState.js";
import type { EventStore } from "../../events/eventStore.js";

const JOBS = "jobs";
const IN_FLIGHT = ["awaiting_upload", "queued", "running"];
const EVENTS = "events";
/** gRPC ALREADY_EXISTS, as the Firestore client reports it. */
const ALREADY_EXISTS = 6;

export function seqId(seq: number): string {
  return String(seq).padStart(10, "0");
}

export function createFirestoreEventStore(db: Firestore): EventStore {
  const job = (jobId: string) => db.collection(JOBS).doc(jobId);
  return {
    async load(jobId) {
      const snapshot = await job(jobId).collection(EVENTS).orderBy("seq").get();
      return snapshot.docs.map((doc) => parseEvent(doc.data() as Parameters<typeof parseEvent>[0]));
    },

    async append(jobId, expectedVersion, events, projection) {
      const first = events[0];
      if (!first || first.seq !== expectedVersion + 1) {
        throw new Error(`events for ${jobId} must start at seq ${expectedVersion + 1}`);
      }
      try {
        await db.runTransaction(
          async (tx) => {
            for (const event of events) {
              tx.create(job(jobId).collection(EVENTS).doc(seqId(event.seq)), toEventDocument(event));
            }
            tx.set(job(jobId), toProjectionDocument(projection));
          },
          { maxAttempts: 1 },
        );
      } catch (error) {
        if (isAlreadyExists(error)) throw new ConcurrencyError(jobId, expectedVersion);
        throw error;
      }
    },

    async getProjection(jobId) {
      const snapshot = await job(jobId).get();
      return snapshot.exists ? fromProjectionDocument(snapshot.data() as ProjectionDocument) : undefined;
    },

    async putProjection(state) {
      await job(state.jobId).set(toProjectionDocument(state));
    },

    async listByOwner(ownerId, limit) {
      const snapshot = await db.collection(JOBS).where("ownerId", "==", ownerId).orderBy("createdAt", "desc").limit(limit).get();
      return snapshot.docs.map((doc) => fromProjectionDocument(doc.data() as ProjectionDocument));
    },

    async countInFlight(ownerId) {
      const snapshot = await db
        .collection(JOBS)
        .where("ownerId", "==", ownerId)
        .where("status", "in", IN_FLIGHT)
        .count()
        .get();
      return snapshot.data().count;
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
      return snapshot.docs.map((doc) => fromProjectionDocument(doc.data() as ProjectionDocument));
    },

    async listStaleQueued(before, limit) {
      const snapshot = await db
        .collection(JOBS)
        .where("status", "==", "queued")
        .where("updatedAt", "<", before.toISOString())
        .orderBy("updatedAt")
        .limit(limit)
        .get();
      return snapshot.docs.map((doc) => fromProjectionDocument(doc.data() as ProjectionDocument));
    },
  };
}

function toEventDocument(event: RecordedEvent) {
  return { seq: event.seq, type: event.type, at: event.at, schemaVersion: event.schemaVersion, data: event.data };
}

/**
 * The projection as stored: the job's state, with the output's `gs://` address beside its
 * bucket and object, so that a listener sees where the result is without asking the API.
 */
type ProjectionDocument = Omit<JobState, "output"> & { output?: NonNullable<JobState["output"]> & { url: string } };

function toProjectionDocument(state: JobState): ProjectionDocument {
  const { output: _output, ...rest } = state;
  if (!state.output) return rest;
  return { ...state, output: { ...state.output, url: `gs://${state.output.bucket}/${state.output.object}` } };
}

function fromProjectionDocument(document: ProjectionDocument): JobState {
  if (!document.output) return document as JobState;
  const { url: _url, ...output } = document.output;
  return { ...document, output };
}

function isAlreadyExists(error: unknown): boolean {
  return typeof error === "object" && error !== null && (error as { code?: unknown }).code === ALREADY_EXISTS;
}
