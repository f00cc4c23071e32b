/**
 * Webhook delivery, at least once, driven by the job's events. A trigger on each new event
 * (`jobs/{jobId}/events/{seq}`; Eventarc in the cloud, a Firestore listener in the local stack)
 * calls `enqueue`: when the job's webhook asks for that event, it adds one outbox record with
 * the message's body (the job's view as of that event) and a fixed id, so that a repeated trigger
 * adds nothing, and attempts it at once. An attempt that fails (not 2xx, a timeout, a network
 * error) is retried by the sweeper with exponential backoff until the retry window (24 h)
 * closes. Every attempt is recorded on the record, which the owner reads through
 * `GET /v1/edits/{jobId}/webhooks`.
 */
import type { Clock } from "../events/clock.js";
import type { EventStore } from "../events/eventStore.js";
import { evolve, type JobState } from "../events/jobState.js";
import type { Logger } from "../events/logger.js";
import { webhookEventOf } from "../events/webhookEvents.js";
import type { WebhookAttempt, WebhookDelivery, WebhookOutbox, WebhookOutcome } from "../events/webhookOutbox.js";
import type { WebhookSecrets } from "../events/webhookSecrets.js";
import { WebhookSendError, type WebhookSender } from "../events/webhookSender.js";
import type { FunctionsConfig } from "./config.js";
import type { JobView } from "./jobView.js";
import { webhookHeaders } from "./webhookSignature.js";

export type WebhookConfig = Pick<
  FunctionsConfig,
  "webhookTimeoutSeconds" | "webhookRetryBaseSeconds" | "webhookRetryMaxSeconds" | "webhookRetryWindowSeconds"
>;

/**
 * The wait before the attempt after the `attempts`-th failed one: the base, doubled each time,
 * at most the maximum. With the defaults (5 s, at most 1 h) that is 5 s, 10 s, 20 s, … 1 h, then
 * hourly until the window closes. The sweeper's schedule (every minute) rounds the short ones up.
 */
export function retryDelayMs(attempts: number, config: Pick<WebhookConfig, "webhookRetryBaseSeconds" | "webhookRetryMaxSeconds">): number {
  const exponent = Math.max(0, attempts - 1);
  return Math.min(config.webhookRetryBaseSeconds * 2 ** exponent, config.webhookRetryMaxSeconds) * 1000;
}

/** What follows an attempt: delivered on 2xx; otherwise another attempt, unless the window would close first or the address was refused. */
export function nextOutcome(
  delivery: Pick<WebhookDelivery, "createdAt" | "attempts">,
  attempt: WebhookAttempt,
  refused: boolean,
  now: Date,
  config: Pick<WebhookConfig, "webhookRetryBaseSeconds" | "webhookRetryMaxSeconds" | "webhookRetryWindowSeconds">,
): WebhookOutcome {
  if (attempt.error === undefined) return { state: "delivered" };
  if (refused) return { state: "failed" };
  const next = now.getTime() + retryDelayMs(delivery.attempts.length + 1, config);
  const closes = Date.parse(delivery.createdAt) + config.webhookRetryWindowSeconds * 1000;
  return next > closes ? { state: "failed" } : { state: "pending", nextAttemptAt: new Date(next).toISOString() };
}

/** A delivery's message id, fixed by the job and the event's place in its log. */
export function webhookMessageId(jobId: string, seq: number): string {
  return `msg_${jobId}_${seq}`;
}

export interface WebhookDeliveryDeps {
  store: EventStore;
  outbox: WebhookOutbox;
  secrets: WebhookSecrets;
  sender: WebhookSender;
  clock: Clock;
  /** The job's view as clients see it (with a fresh output URL). */
  view: (job: JobState) => Promise<JobView>;
  /** A new secret, for an owner who never read theirs. */
  newSecret: () => string;
  config: WebhookConfig;
  log?: Logger;
}

export interface WebhookDeliverer {
  /** Adds the message the event at `seq` owes, if any, and attempts it; answers its id. */
  enqueue(jobId: string, seq: number): Promise<string | undefined>;
  /** Attempts one delivery if it is due, answering what followed; undefined when it was not due (delivered, given up, or claimed by another). */
  attempt(id: string): Promise<WebhookOutcome["state"] | undefined>;
  /** Attempts every due delivery, up to `limit`; the sweeper's part. */
  deliverDue(limit?: number): Promise<{ attempted: number; delivered: number }>;
}

export function createWebhookDeliverer(deps: WebhookDeliveryDeps): WebhookDeliverer {
  const log = deps.log ?? (() => {});
  const timeoutMs = deps.config.webhookTimeoutSeconds * 1000;

  async function enqueue(jobId: string, seq: number): Promise<string | undefined> {
    // Most jobs have no webhook, and heartbeats are most events: the projection says so in one read.
    const current = await deps.store.getProjection(jobId);
    if (!current?.webhook) return undefined;
    const events = await deps.store.load(jobId);
    const recorded = events.find((event) => event.seq === seq);
    if (!recorded) return undefined;
    const kind = webhookEventOf(recorded);
    if (kind === undefined) return undefined;
    let job: JobState | undefined;
    for (const event of events) {
      if (event.seq > seq) break;
      job = evolve(job, event);
    }
    if (!job?.webhook || !job.webhook.events.includes(kind)) return undefined;
    const id = webhookMessageId(jobId, seq);
    const body = JSON.stringify({ type: `edit.${kind}`, timestamp: recorded.at, data: await deps.view(job) });
    const added = await deps.outbox.add({
      id,
      jobId,
      ownerId: job.ownerId,
      url: job.webhook.url,
      type: `edit.${kind}`,
      body,
      createdAt: deps.clock.now().toISOString(),
      state: "pending",
      nextAttemptAt: deps.clock.now().toISOString(),
      attempts: [],
    });
    if (added) await attempt(id);
    return id;
  }

  async function attempt(id: string): Promise<WebhookOutcome["state"] | undefined> {
    const now = deps.clock.now();
    // The claim outlasts the attempt, so that only a claimant that died lets another in.
    const delivery = await deps.outbox.claim(id, now, new Date(now.getTime() + timeoutMs + 30_000));
    if (!delivery) return undefined;
    const secret = await deps.secrets.get(delivery.ownerId, deps.newSecret());
    const started = deps.clock.now();
    const headers = webhookHeaders(secret, delivery.id, started, delivery.body);
    let status: number | undefined;
    let error: string | undefined;
    let refused = false;
    try {
      status = (await deps.sender.send(delivery.url, headers, delivery.body, timeoutMs)).status;
      if (status < 200 || status > 299) error = `the receiver answered ${status}`;
    } catch (failure) {
      error = failure instanceof Error ? failure.message : String(failure);
      refused = failure instanceof WebhookSendError && failure.refused;
    }
    const ended = deps.clock.now();
    const record: WebhookAttempt = {
      at: started.toISOString(),
      durationMs: ended.getTime() - started.getTime(),
      ...(status === undefined ? {} : { status }),
      ...(error === undefined ? {} : { error }),
    };
    const outcome = nextOutcome(delivery, record, refused, ended, deps.config);
    await deps.outbox.record(id, record, outcome);
    log({
      severity: outcome.state === "failed" ? "WARNING" : "INFO",
      message: outcome.state === "delivered" ? "webhook delivered" : outcome.state === "failed" ? "webhook given up" : "webhook attempt failed",
      jobId: delivery.jobId,
      webhookId: id,
      attempt: delivery.attempts.length + 1,
      ...(status === undefined ? {} : { status }),
      ...(error === undefined ? {} : { error }),
    });
    return outcome.state;
  }

  return {
    enqueue,
    attempt,
    async deliverDue(limit = 100) {
      const due = await deps.outbox.listDue(deps.clock.now(), limit);
      let attempted = 0;
      let delivered = 0;
      // A few at once: a slow receiver must not hold up the others for its whole timeout each.
      const queue = [...due];
      const lane = async () => {
        for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
          const state = await attempt(id);
          if (state === undefined) continue;
          attempted += 1;
          if (state === "delivered") delivered += 1;
        }
      };
      await Promise.all(Array.from({ length: 8 }, lane));
      return { attempted, delivered };
    },
  };
}
