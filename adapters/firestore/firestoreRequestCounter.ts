/**
 * Request counts per user and minute in Firestore. Each request creates its own document under
 * `quotaWindows/{digest of key and window}/hits`, and the window is counted with an aggregation
 * query: no document is written twice, so a busy user never contends on one counter document
 * (Firestore sustains about one write per second per document). Every hit carries `expiresAt`,
 * for a Firestore TTL policy to remove old windows.
 */
import { createHash, randomUUID } from "node:crypto";
import type { Firestore } from "@google-cloud/firestore";
import type { RequestCounter } from "../../events/requestCounter.js";
import { DEFAULT_STORE_DEADLINE_MS } from "./firestoreEventStore.js";
import { withStoreDeadlines } from "./storeDeadline.js";

const COLLECTION = "quotaWindows";

export function createFirestoreRequestCounter(db: Firestore, options: { deadlineMs?: number } = {}): RequestCounter {
  return withStoreDeadlines<RequestCounter>({
    async hit(key, windowStart) {
      // The id is a digest, so a user id never appears in a document name.
      const id = createHash("sha256").update(`${key}\n${windowStart.toISOString()}`).digest("hex");
      const hits = db.collection(COLLECTION).doc(id).collection("hits");
      await hits.doc(randomUUID()).create({ expiresAt: new Date(windowStart.getTime() + 10 * 60_000) });
      const snapshot = await hits.count().get();
      return snapshot.data().count;
    },
  }, options.deadlineMs ?? DEFAULT_STORE_DEADLINE_MS);
}
