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
  /**
   * The pull's check. A streaming pull whose connection goes silent (packets dropped, not
   * refused) is not noticed by the client until gRPC's keepalive, minutes later, and Pub/Sub's
   * answers on it wait behind HTTP/2 flow control that never reopens. So whenever nothing has been
   * delivered for `everySeconds`, the subscription's metadata is asked for over the same
   * connection, to be answered within 5 s. With no answer, the pull is dropped, and started again
   * on a client from `reconnect` (which must open a connection of its own) once that client's
   * connection answers the same question: a pull opened on a connection still down would wait in
   * the client's own backoff, up to a minute, after the network came back. A dropped pull's client
   * is closed, so that Pub/Sub sees its connection end and hands out again the messages it had
   * sent on it: with the check, the subscription owns `pubsub` and every client it makes, and
   * closes them; give it a client of its own. The deliveries in hand run on; their acks may be
   * lost with the old connection, and Pub/Sub then delivers them again, which the worker's rules
   * make harmless.
   */
  pullCheck?: { everySeconds: number; reconnect: () => PubSub; onReconnect?: () => void };
}

/** How long the pull's check waits for Pub/Sub to answer. */
const PULL_CHECK_ANSWER_MS = 5_000;

export function createPubsubJobSubscription(pubsub: PubSub, subscriptionName: string, options: SubscriptionOptions): JobSubscription {
  let client = pubsub;
  /** The pull; none while the pull's check waits for a connection that answers. */
  let subscription: Subscription | undefined;
  let handler: ((delivery: JobDelivery) => Promise<void>) | undefined;
  let delivered = false;
  let checking: NodeJS.Timeout | undefined;
  const inHand = new Set<Promise<void>>();
  /** The clients this subscription closes: with the pull's check, `pubsub` and those it made. */
  const ownClients = new Set<PubSub>(options.pullCheck ? [pubsub] : []);

  const open = () => {
    const opened = client.subscription(subscriptionName, {
      flowControl: { maxMessages: options.maxInFlight, allowExcessMessages: false },
      // The client extends the ack deadline of held messages until this much time has passed.
      maxExtensionTime: Duration.from({ seconds: options.maxExtensionSeconds }),
      ...(options.maxAckDeadlineSeconds === undefined ? {} : { maxAckDeadline: Duration.from({ seconds: options.maxAckDeadlineSeconds }) }),
    });
    opened.on("message", (message: Message) => {
      delivered = true;
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
      const work = handler!(delivery).finally(() => inHand.delete(work));
      inHand.add(work);
    });
    opened.on("error", (error: Error) => {
      if (opened === subscription) options.onError?.(error);
    });
    subscription = opened;
  };

  const answers = (on: PubSub) =>
    on
      .subscription(subscriptionName)
      .getMetadata({ timeout: PULL_CHECK_ANSWER_MS, retry: null })
      .then(
        () => undefined,
        (error: Error) => error.message,
      );

  /**
   * The clients of dropped pulls, closed once a new connection answers: closed while the network
   * is still down, their end would be lost with everything else sent, and Pub/Sub would go on
   * holding the messages it sent on them.
   */
  const retiring: PubSub[] = [];
  const retire = () => {
    for (const old of retiring.splice(0)) if (ownClients.delete(old)) void old.close().catch(() => undefined);
  };

  /** One check: the pull's connection answers, or the pull is dropped and a new connection tried. */
  const check = async (pullCheck: NonNullable<SubscriptionOptions["pullCheck"]>) => {
    if (subscription) {
      if (delivered) {
        delivered = false;
        return;
      }
      const silence = await answers(client);
      if (silence === undefined || checking === undefined) return;
      // Without a message listener the library closes the pull (its streams) by itself.
      subscription.removeAllListeners("message");
      subscription = undefined;
      retiring.push(client);
      options.onError?.(new Error(`the pull was dropped: nothing delivered for ${pullCheck.everySeconds} s, and Pub/Sub did not answer on its connection (${silence})`));
    }
    const candidate = pullCheck.reconnect();
    ownClients.add(candidate);
    const silence = await answers(candidate);
    if (silence !== undefined || checking === undefined) {
      ownClients.delete(candidate);
      void candidate.close().catch(() => undefined);
      return;
    }
    client = candidate;
    open();
    retire();
    pullCheck.onReconnect?.();
  };

  return {
    start(handle) {
      handler = handle;
      open();
      const pullCheck = options.pullCheck;
      if (!pullCheck) return;
      let busy = false;
      checking = setInterval(() => {
        if (busy) return;
        busy = true;
        void check(pullCheck).finally(() => {
          busy = false;
        });
      }, pullCheck.everySeconds * 1000);
      checking.unref();
    },

    async stop() {
      clearInterval(checking);
      checking = undefined;
      // Stop pulling first, then let the deliveries in hand settle.
      subscription?.removeAllListeners("message");
      await Promise.allSettled([...inHand]);
      await subscription?.close();
      await Promise.allSettled([...ownClients].map((made) => made.close()));
      ownClients.clear();
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
