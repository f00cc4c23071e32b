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
 * a listener on a collection group (documents recorded from `since` on, by their `at` field) that
 * POSTs each new document's CloudEvent (binary mode, the document's name as `ce-subject`) to a
 * function. Eventarc sends the document as protobuf data; our function reads only the subject,
 * so the data here is an empty JSON object. A failed POST is tried again with backoff, as
 * Eventarc does for a trigger with retries on.
 *
 * The listener rolls: every `rollMs` a new one replaces it, on the documents of the last
 * `windowMs` only, and a document already forwarded is skipped by its path. The Firestore
 * emulator keeps what a listener has seen until it is closed, and that grows with the square of
 * the listener's result set: one listener on every event since start took the emulator to
 * 1.2 GB of RSS after 1,000 events and 4.4 GB after 2,000 (0.3 GB without it), and to 11.8 GB
 * in the soak's load phase. Rolled, it stays at 0.9 GB over 6,000 events. The window must cover
 * the time between an event's `at` and its commit: the stores' deadlines are 5 to 10 s.
 */
export function startFirestoreTriggerBridge(options: {
  firestore: Firestore;
  collectionGroup: string;
  since: Date;
  target: string;
  projectId: string;
  /** Tries per document (default 8); the waits between them double from 500 ms. */
  maxTries?: number;
  /** How often the listener is replaced (default 5 s). */
  rollMs?: number;
  /** How far back, by `at`, a replacement listener looks (default 30 s). */
  windowMs?: number;
}): EventarcBridge {
  const pending = new Set<Promise<void>>();
  const rollMs = options.rollMs ?? 5_000;
  const windowMs = options.windowMs ?? 30_000;
  /** Paths forwarded (or being forwarded), with their `at`; pruned once out of every listener's window. */
  const seen = new Map<string, string>();
  let stopped = false;

  function listen(since: string): () => void {
    return options.firestore
      .collectionGroup(options.collectionGroup)
      .where("at", ">=", since)
      .onSnapshot(
        (snapshot) => {
          for (const change of snapshot.docChanges()) {
            if (change.type !== "added") continue;
            const path = change.doc.ref.path;
            if (seen.has(path)) continue;
            seen.set(path, String(change.doc.get("at")));
            const task = forward(path, change.doc.updateTime.toDate()).finally(() => pending.delete(task));
            pending.add(task);
          }
        },
        (error) => console.error(`[firestore-trigger-bridge] ${error.message}`),
      );
  }

  let unsubscribe = listen(options.since.toISOString());
  let oldestSince = options.since.toISOString();
  const roller = setInterval(() => {
    const candidate = new Date(Date.now() - windowMs).toISOString();
    const since = candidate > options.since.toISOString() ? candidate : options.since.toISOString();
    // The new listener first, so that no document falls between the two.
    const previous = unsubscribe;
    unsubscribe = listen(since);
    previous();
    for (const [path, at] of seen) if (at < oldestSince) seen.delete(path);
    oldestSince = since;
  }, rollMs);
  roller.unref();

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
      clearInterval(roller);
      unsubscribe();
      await Promise.allSettled([...pending]);
    },
  };
}
