/**
 * The job's events: one per state change, in the past tense, each with a versioned schema.
 * Stored events are parsed through `parseEvent`, which upcasts older schema versions, so the
 * fold only ever sees the current shapes.
 */
import { z } from "zod";
import { OPERATIONS } from "./operations.js";
import { PRIORITIES } from "./priority.js";
import { WEBHOOK_EVENTS } from "./webhookEvents.js";
import { BACKGROUND_PATTERN, OUTPUT_FORMATS } from "./outputFormat.js";

const objectRef = z.object({ bucket: z.string().min(1), object: z.string().min(1) });
export type ObjectRef = z.infer<typeof objectRef>;

const params = z.record(z.string(), z.union([z.number(), z.string(), z.boolean()]));

const editRequested = z.object({
  jobId: z.string().min(1),
  ownerId: z.string().min(1),
  operation: z.enum(OPERATIONS),
  params,
  /** `signed_upload`: the person PUTs to a signed URL; `direct`: the API received the bytes. */
  flow: z.enum(["signed_upload", "direct"]),
  /** Where the upload lands, fixed when the job is created. */
  input: objectRef.extend({ contentType: z.string().min(1) }),
  idempotencyKey: z.string().optional(),
  /** A digest of the request, to tell a replay from a reuse of the key for another request. */
  requestFingerprint: z.string().optional(),
  /** `interactive` or `batch`; absent in events older than priorities, which were interactive. */
  priority: z.enum(PRIORITIES).optional(),
  /** The request's semantic digest (events/resultCache.ts); absent when the caller opted out of the result cache. */
  cacheDigest: z.string().optional(),
  /** Where to POST the job's events, signed (functions/webhookDelivery.ts), and which ones. */
  webhook: z.object({ url: z.string().min(1), events: z.array(z.enum(WEBHOOK_EVENTS)).min(1) }).optional(),
  /** The result's file format; absent (every event before formats existed), PNG. Added without a version bump: optional. */
  output: z
    .object({
      format: z.enum(OUTPUT_FORMATS),
      quality: z.number().int().min(1).max(100).optional(),
      background: z.string().regex(BACKGROUND_PATTERN).optional(),
    })
    .optional(),
});

const imageUploaded = objectRef.extend({
  contentType: z.string().min(1),
  sizeBytes: z.number().int().nonnegative(),
});

const editQueued = z.object({ attempt: z.number().int().positive() });

const editStarted = z.object({
  attempt: z.number().int().positive(),
  workerId: z.string().min(1),
  /** Past this instant, with no heartbeat, the worker counts as dead and another may take over. */
  leaseExpiresAt: z.string(),
});

/** The holder's heartbeat: it is alive and keeps the job until the new instant. */
const leaseRenewed = z.object({ workerId: z.string().min(1), leaseExpiresAt: z.string() });
/** Tiles done over tiles total, recorded by the worker at most once a second while it runs. */
const editProgressed = z
  .object({
    workerId: z.string().min(1),
    tilesDone: z.number().int().nonnegative(),
    tilesTotal: z.number().int().positive(),
  })
  .refine((data) => data.tilesDone <= data.tilesTotal, { message: "tilesDone must not exceed tilesTotal" });

const outputRef = objectRef.extend({
  contentType: z.string(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  sizeBytes: z.number().int().nonnegative(),
});
export type OutputRef = z.infer<typeof outputRef>;

const editSucceeded = z.object({
  workerId: z.string().min(1),
  output: outputRef,
  /** Milliseconds from EditStarted to the output being written. */
  processingMs: z.number().nonnegative(),
  /** Milliseconds of that spent waiting on inference calls. */
  inferenceMs: z.number().nonnegative(),
  /** The earlier job of the same user whose result this is, when it came from the result cache. */
  cachedFrom: z.string().min(1).optional(),
  /** The result's cache key (events/resultCache.ts), under which a later request may find it. */
  cacheKey: z.string().min(1).optional(),
});

const failure = z.object({
  code: z.string().min(1),
  /** A sentence a person can read. */
  message: z.string().min(1),
});
export type Failure = z.infer<typeof failure>;

/** A retryable failure of one attempt: the job goes back to the queue. */
const editAttemptFailed = failure.extend({ attempt: z.number().int().positive(), workerId: z.string().optional() });

/** The job failed for good. */
const editFailed = failure.extend({ attempt: z.number().int().nonnegative() });

const editCanceled = z.object({ by: z.string().min(1), reason: z.string().optional() });

/** Every event type with its schema, by version. Version 1 is the first shape of each. */
export const EVENT_SCHEMAS = {
  EditRequested: { version: 1, schema: editRequested },
  ImageUploaded: { version: 1, schema: imageUploaded },
  EditQueued: { version: 1, schema: editQueued },
  EditStarted: { version: 1, schema: editStarted },
  LeaseRenewed: { version: 1, schema: leaseRenewed },
  EditProgressed: { version: 1, schema: editProgressed },
  EditAttemptFailed: { version: 1, schema: editAttemptFailed },
  EditSucceeded: { version: 1, schema: editSucceeded },
  EditFailed: { version: 1, schema: editFailed },
  EditCanceled: { version: 1, schema: editCanceled },
} as const;

type Schemas = typeof EVENT_SCHEMAS;
export type EventType = keyof Schemas;

/** An event as the core makes it, before it has a place in the log. */
export type EditEvent = {
  [K in EventType]: { type: K; data: z.infer<Schemas[K]["schema"]> };
}[EventType];

export type EventOf<K extends EventType> = Extract<EditEvent, { type: K }>;

/** An event as stored: with its position in the job's log and the instant it was recorded. */
export type RecordedEvent = EditEvent & { seq: number; at: string; schemaVersion: number };

export const EVENT_TYPES = Object.keys(EVENT_SCHEMAS) as EventType[];

export class EventSchemaError extends Error {
  override readonly name = "EventSchemaError";
}

/**
 * Validates a stored event and brings it to the current schema version. Later versions add their
 * upcasters here, keyed by type and the version they lift from.
 */
export function parseEvent(raw: { seq: number; at: string; type: string; schemaVersion?: number; data: unknown }): RecordedEvent {
  if (!Object.hasOwn(EVENT_SCHEMAS, raw.type)) {
    throw new EventSchemaError(`unknown event type ${raw.type} at seq ${raw.seq}`);
  }
  const type = raw.type as EventType;
  const entry = EVENT_SCHEMAS[type];
  const version = raw.schemaVersion ?? 1;
  if (version > entry.version) {
    throw new EventSchemaError(`${type} v${version} at seq ${raw.seq} is newer than this code (v${entry.version})`);
  }
  const parsed = entry.schema.safeParse(raw.data);
  if (!parsed.success) {
    throw new EventSchemaError(`${type} at seq ${raw.seq} does not match its schema: ${parsed.error.message}`);
  }
  return { type, data: parsed.data, seq: raw.seq, at: raw.at, schemaVersion: entry.version } as RecordedEvent;
}

/** Checks an event the core is about to append; a mismatch is a bug, not a user error. */
export function validateNewEvent(event: EditEvent): EditEvent {
  const parsed = EVENT_SCHEMAS[event.type].schema.safeParse(event.data);
  if (!parsed.success) {
    throw new EventSchemaError(`${event.type} does not match its schema: ${parsed.error.message}`);
  }
  return event;
}
