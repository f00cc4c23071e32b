/**
 * Request counts per user and minute in Firestore, `quotaWindows/{digest of key and window}`,
 * incremented in a transaction so that concurrent instances count exactly. Each document carries
 * `expiresAt`, for a Firestore TTL policy to remove old windows.
 */
import { createHash } from "node:crypto";
import type { Firestore } from "@google-cloud/firestore";
import type { RequestCounter } from "../../functions/quota.js";

const COLLECTION = "quotaWindows";

export function createFirestoreRequestCounter(db: Firestore): RequestCounter {
  return {
    async hit(key, windowStart) {
      // The id is a digest, so a user id never appears in a document name.
      const id = createHash("sha256").update(`${key}\n${windowStart.toISOString()}`).digest("hex");
      const ref = db.collection(COLLECTION).doc(id);
      return db.runTransaction(
        async (tx) => {
          const snapshot = await tx.get(ref);
          const count = ((snapshot.get("count") as number | undefined) ?? 0) + 1;
          tx.set(ref, { count, windowStart: windowStart.toISOString(), expiresAt: new Date(windowStart.getTime() + 10 * 60_000) });
          return count;
        },
        { maxAttempts: 20 },
      );
    },
  };
}
