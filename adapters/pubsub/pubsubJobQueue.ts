/**
 * The job queue on Pub/Sub. Messages carry only the job's id and operation; the job's state
 * lives in the event store, so a redelivered or stale message can always be checked against it.
 * The job's trace headers (`traceparent`, `tracestate`) ride along as message attributes.
 */
import { Duration, type Message, type PubSub, type Subscription } from "@google-cloud/pubsub";
import { isOperation } from "../../events/operations.js";
import { isPriority } from "../../events/priority.js";
import type { JobDelivery, JobMessage, JobQueue, JobSubscription, TraceHeaders } from "../../events/jobQueue.js";
import { QueueUnavailableError } from "../../events/errors.js";

/**
 * Publishes each job to its priority's topic: interactive jobs to `topicName`, batch jobs to
 * `batchTopicName` (absent: the same topic, where only Triton's request priority orders them).
 * `deadlineMs`: the longest a publish may take (default 10 s); past it the publish fails with
 * `QueueUnavailableError`, though the client may still deliver it. A job's message may be sent
 * twice without harm (every handler is idempotent), so the caller's retry is safe.
 */
export function createPubsubJobQueue(pubsub: PubSub, topicName: string, batchTopicName?: string, options: { deadlineMs?: number } = {}): JobQueue {
  const deadlineMs = options.deadlineMs ?? 10_000;
  const settings = { batching: { maxMessages: 100, maxMilliseconds: 5 }, gaxOpts: { timeout: deadlineMs } };
  const interactive = pubsub.topic(topicName, settings);
  const batch = batchTopicName === undefined || batchTopicName === topicName ? interactive : pubsub.topic(batchTopicName, settings);
  return {
    async publish(message, trace = {}) {
      const topic = message.priority === "batch" ? batch : interactive;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new QueueUnavailableError(`Pub/Sub did not take job ${message.jobId} within ${deadlineMs} ms`)), deadlineMs);
      });
      try {
        return await Promise.race([
          topic.publishMessage({
            json: message,
            attributes: {
              ...pickTraceHeaders(trace),
              jobId: message.jobId,
              operation: message.operation,
              ...(message.priority === undefined ? {} : { priority: message.priority }),
            },
          }),
          late,
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

export interface SubscriptionOptions {
  /** Messages held at once: the worker's concurrency. */
  maxInFlight: number;
  /** How long the client keeps extending a message's ack deadline while work runs. */
  maxExtensionSeconds: number;
  /**
   * The longest ack deadline the client asks for at a time (it sets each from how long messages
   * took to ack). Messages held by a subscriber that died come back once their deadline passes.
   * Default: the client's own (600 s).
   */
  maxAckDeadlineSeconds?: number;
  /** Called for a message that is not a job message; it is acked so it does not loop. */
  onMalformed?: (reason: string) => void;
  /** Called with an error the Pub/Sub client reports from pulling (it retries passing ones itself). */
  onError?: (error: Error) => void;
}

export function createPubsubJobSubscription(pubsub: PubSub, subscriptionName: string, options: SubscriptionOptions): JobSubscription {
  let subscription: Subscription | undefined;
  const inHand = new Set<Promise<void>>();
  return {
    start(handle) {
      subscription = pubsub.subscription(subscriptionName, {
        flowControl: { maxMessages: options.maxInFlight, allowExcessMessages: false },
        // The client extends the ack deadline of held messages until this much time has passed.
        maxExtensionTime: Duration.from({ seconds: options.maxExtensionSeconds }),
        ...(options.maxAckDeadlineSeconds === undefined ? {} : { maxAckDeadline: Duration.from({ seconds: options.maxAckDeadlineSeconds }) }),
      });
      subscription.on("message", (message: Message) => {
        const job = parseJobMessage(message.data);
        if (typeof job === "string") {
          options.onMalformed?.(job);
          message.ack();
          return;
        }
        const trace = pickTraceHeaders(message.attributes ?? {});
        const delivery: JobDelivery = {
          message: job,
          deliveryAttempt: message.deliveryAttempt || 1,
          publishedAt: message.publishTime,
          ...(Object.keys(trace).length > 0 ? { trace } : {}),
          ack: () => message.ack(),
          nack: () => message.nack(),
        };
        const work = handle(delivery).finally(() => inHand.delete(work));
        inHand.add(work);
      });
      subscription.on("error", (error: Error) => options.onError?.(error));
    },

    async stop() {
      if (!subscription) return;
      // Stop pulling first, then let the deliveries in hand settle.
      subscription.removeAllListeners("message");
      await Promise.allSettled([...inHand]);
      await subscription.close();
    },
  };
}

/** The W3C Trace Context headers, and nothing else, as message attributes carry them. */
function pickTraceHeaders(headers: Record<string, string>): TraceHeaders {
  const picked: TraceHeaders = {};
  for (const name of ["traceparent", "tracestate"]) {
    const value = headers[name];
    if (value) picked[name] = value;
  }
  return picked;
}

function parseJobMessage(data: Buffer): JobMessage | string {
  try {
    const parsed = JSON.parse(data.toString("utf8")) as Partial<JobMessage>;
    if (typeof parsed.jobId !== "string" || parsed.jobId === "" || !isOperation(parsed.operation)) {
      return "the message is not a job: it lacks a jobId or a known operation";
    }
    return { jobId: parsed.jobId, operation: parsed.operation, ...(isPriority(parsed.priority) ? { priority: parsed.priority } : {}) };
  } catch {
    return "the message is not JSON";
  }
}
