/**
 * The webhook outbox port: one record per message owed to a job's webhook, with every attempt
 * made to deliver it. A trigger on the job's events adds records; the trigger and the sweeper
 * claim and attempt them. Adapters: Firestore (adapters/firestore/firestoreWebhookOutbox.ts); the
 * unit tests' double is test/doubles/memoryWebhookOutbox.ts. Both pass
 * test/support/webhookOutboxContract.ts.
 */

/** One try at delivering a message. */
export interface WebhookAttempt {
  /** When it started (ISO 8601). */
  at: string;
  durationMs: number;
  /** The receiver's HTTP status, when it answered. */
  status?: number;
  /** Why it failed, when it did: a timeout, a refused address, a status that is not 2xx. */
  error?: string;
}

export type WebhookDeliveryState = "pending" | "delivered" | "failed";

/** A message owed to a webhook. */
export interface WebhookDelivery {
  /** The message's id, sent as `webhook-id` on every attempt. */
  id: string;
  jobId: string;
  ownerId: string;
  url: string;
  /** `edit.<event>`. */
  type: string;
  /** The exact JSON body every attempt sends. */
  body: string;
  createdAt: string;
  state: WebhookDeliveryState;
  /** While pending: when the next attempt is due (or when a claimed attempt's claim lapses). */
  nextAttemptAt?: string;
  attempts: WebhookAttempt[];
}

/** What an attempt leads to: another attempt at an instant, or an end. */
export type WebhookOutcome = { state: "pending"; nextAttemptAt: string } | { state: "delivered" | "failed" };

export interface WebhookOutbox {
  /** Adds the delivery unless one with its id exists (a repeated trigger). True when it was added. */
  add(delivery: WebhookDelivery): Promise<boolean>;
  /**
   * Claims a pending delivery that is due at `now`: moves its `nextAttemptAt` to `claimUntil`,
   * atomically, so that one caller attempts it; a claimant that dies lets the claim lapse.
   * Undefined when the delivery is not pending or not due (someone else claimed it).
   */
  claim(id: string, now: Date, claimUntil: Date): Promise<WebhookDelivery | undefined>;
  /** Records an attempt and what follows it. */
  record(id: string, attempt: WebhookAttempt, outcome: WebhookOutcome): Promise<void>;
  /** Ids of pending deliveries due at `now`, most overdue first. */
  listDue(now: Date, limit: number): Promise<string[]>;
  /** A job's deliveries, oldest first. */
  listByJob(jobId: string): Promise<WebhookDelivery[]>;
}
