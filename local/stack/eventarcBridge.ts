/**
 * The local stand-in for Eventarc. In production Eventarc turns a Cloud Storage
 * object-finalized notification into a CloudEvent POSTed to the `uploadFinalized` function. Here
 * fake-gcs-server publishes the notification to the Pub/Sub emulator, and this bridge pulls it
 * and POSTs the same CloudEvent (binary content mode) to the function under the Functions
 * Framework. A failed POST nacks the message, so the event is delivered again, as Eventarc would.
 */
import type { Firestore } from "@google-cloud/firestore";
import type { Message, PubSub } from "@google-cloud/pubsub";

export interface EventarcBridge {
  stop(): Promise<void>;
}

export function startEventarcBridge(options: { pubsub: PubSub; subscription: string; target: string; projectId: string }): EventarcBridge {
  const subscription = options.pubsub.subscription(options.subscription, { flowControl: { maxMessages: 16 } });
  subscription.on("message", (message: Message) => {
    void forward(message).then(
      (ok) => (ok ? message.ack() : message.nack()),
      () => message.nack(),
    );
  });
  subscription.on("error", (error) => console.error(`[eventarc-bridge] ${error.message}`));

  async function forward(message: Message): Promise<boolean> {
    if (message.attributes.eventType !== "OBJECT_FINALIZE") return true;
    const bucket = message.attributes.bucketId ?? "";
    const object = message.attributes.objectId ?? "";
    const response = await fetch(options.target, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": message.id,
        "ce-type": "google.cloud.storage.object.v1.finalized",
        "ce-source": `//storage.googleapis.com/projects/_/buckets/${bucket}`,
        "ce-subject": `objects/${object}`,
        "ce-time": message.publishTime.toISOString(),
      },
      body: new Uint8Array(message.data),
      signal: AbortSignal.timeout(60_000),
    });
    await response.arrayBuffer();
    return response.ok;
  }

  return {
    async stop() {
      subscription.removeAllListeners("message");
      await subscription.close();
    },
  };
}

/**
 * The local stand-in for an Eventarc Pub/Sub trigger: pulls a subscription and POSTs each message
 * as the `google.cloud.pubsub.topic.v1.messagePublished` CloudEvent (data
 * `{message:{data,attributes,messageId,publishTime},subscription}`) to a function. A failed POST
 * nacks the message, so it is delivered again, as Eventarc would.
 */
export function startPubsubTriggerBridge(options: { pubsub: PubSub; subscription: string; topic: string; target: string; projectId: string }): EventarcBridge {
  const subscription = options.pubsub.subscription(options.subscription, { flowControl: { maxMessages: 16 } });
  subscription.on("message", (message: Message) => {
    void forward(message).then(
      (ok) => (ok ? message.ack() : message.nack()),
      () => message.nack(),
    );
  });
  subscription.on("error", (error) => console.error(`[pubsub-trigger-bridge] ${error.message}`));

  async function forward(message: Message): Promise<boolean> {
    const response = await fetch(options.target, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": message.id,
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-source": `//pubsub.googleapis.com/projects/${options.projectId}/topics/${options.topic}`,
        "ce-time": message.publishTime.toISOString(),
      },
      body: JSON.stringify({
        message: {
          data: message.data.toString("base64"),
          attributes: message.attributes,
          messageId: message.id,
          publishTime: message.publishTime.toISOString(),
        },
        subscription: `projects/${options.projectId}/subscriptions/${options.subscription}`,
      }),
      signal: AbortSignal.timeout(60_000),
    });
    await response.arrayBuffer();
    return response.ok;
  }

  return {
    async stop() {
      subscription.removeAllListeners("message");
      await subscription.close();
    },
  };
}

/**
 * The local stand-in for an Eventarc Firestore trigger (`google.cloud.firestore.document.v1.created`):
 * polls a collection group for documents recorded from `since` on, by their `at` field, and
 * POSTs each new document's CloudEvent (binary mode, the document's name as `ce-subject`) to a
 * function. Eventarc sends the document as protobuf data; our function reads only the subject,
 * so the data here is an empty JSON object. A failed POST is tried again with backoff, as
 * Eventarc does for a trigger with retries on.
 *
 * Each poll reads the documents from `windowMs` before the previous poll began, and a document
 * already forwarded is skipped by its path. Not a listener: the Firestore emulator keeps what a listener has seen until
 * it is closed, growing with the square of its result set (one listener on every event since
 * start took the emulator to 1.2 GB of RSS after 1,000 events and 4.4 GB after 2,000, 0.3 GB
 * without it, and to 11.8 GB in the soak's load phase), and closing listeners to bound that fails
 * commits that race the close (the emulator's "CANCELLED: call already cancelled", seen in
 * test/int/firestoreTriggerBridge.int.test.ts). The window must cover the time between an
 * event's `at` and its commit: the stores' deadlines are 5 to 10 s.
 */
export function startFirestoreTriggerBridge(options: {
  firestore: Firestore;
  collectionGroup: string;
  since: Date;
  target: string;
  projectId: string;
  /** Tries per document (default 8); the waits between them double from 500 ms. */
  maxTries?: number;
  /**
   * The wait between two polls (default 2 s). The emulator answers the window's query by reading
   * every document of the collection group: with 3,000 events, 60 ms of its CPU a poll.
   */
  pollMs?: number;
  /** How far back, by `at`, a poll looks (default 30 s). */
  windowMs?: number;
}): EventarcBridge {
  const pending = new Set<Promise<void>>();
  const pollMs = options.pollMs ?? 2_000;
  const windowMs = options.windowMs ?? 30_000;
  const start = options.since.toISOString();
  /** Paths forwarded (or being forwarded), with their `at`; dropped once out of the window. */
  const seen = new Map<string, string>();
  let stopped = false;
  /** Ends the wait between two polls early, on stop. */
  let wake = () => {};

  /** When the last poll that answered began: what committed after it is read by the next. */
  let lastPollAt: number | undefined;

  async function poll(): Promise<void> {
    const began = Date.now();
    // Back from the last poll's start, not from now, so that a slow poll widens the next one.
    const candidate = new Date((lastPollAt ?? began) - windowMs).toISOString();
    const since = candidate > start ? candidate : start;
    const snapshot = await options.firestore.collectionGroup(options.collectionGroup).where("at", ">=", since).get();
    lastPollAt = began;
    for (const doc of snapshot.docs) {
      const path = doc.ref.path;
      if (seen.has(path)) continue;
      seen.set(path, String(doc.get("at")));
      const task = forward(path, doc.createTime.toDate()).finally(() => pending.delete(task));
      pending.add(task);
    }
    for (const [path, at] of seen) if (at < since) seen.delete(path);
  }

  const polling = (async () => {
    while (!stopped) {
      await poll().catch((error: Error) => console.error(`[firestore-trigger-bridge] ${error.message}`));
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pollMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  })();

  async function forward(path: string, time: Date): Promise<void> {
    const tries = options.maxTries ?? 8;
    for (let attempt = 1; attempt <= tries && !stopped; attempt++) {
      try {
        const response = await fetch(options.target, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "ce-specversion": "1.0",
            "ce-id": `${path}@${time.toISOString()}`,
            "ce-type": "google.cloud.firestore.document.v1.created",
            "ce-source": `//firestore.googleapis.com/projects/${options.projectId}/databases/(default)`,
            "ce-subject": `documents/${path}`,
            "ce-time": time.toISOString(),
          },
          body: "{}",
          signal: AbortSignal.timeout(60_000),
        });
        await response.arrayBuffer();
        if (response.ok) return;
      } catch (error) {
        console.error(`[firestore-trigger-bridge] ${path}: ${(error as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** (attempt - 1)));
    }
    console.error(`[firestore-trigger-bridge] gave up on ${path}`);
  }

  return {
    async stop() {
      stopped = true;
      wake();
      await polling;
      await Promise.allSettled([...pending]);
    },
  };
}
