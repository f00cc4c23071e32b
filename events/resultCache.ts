/**
 * The per-user result cache's key. A request that names the same input bytes, operation,
 * params, output spec and model version as an earlier succeeded job of the same user may reuse
 * that job's result instead of running a model.
 *
 * The key has two halves, made where each is known:
 * - `requestDigest`, at the API: a digest of the request's semantic fields, which are every
 *   field of the `RequestEdit` command but those that say who, where, how urgently or how to be
 *   told (`NON_SEMANTIC_FIELDS`). A field added to the request later (an output format, say)
 *   joins the digest by itself.
 * - `resultCacheKey`, at the worker, which reads the input's bytes anyway: that digest, the
 *   owner, the input's SHA-256 and the model version the server reports.
 */
import { createHash } from "node:crypto";

/** Fields of a request that do not change its result. */
export const NON_SEMANTIC_FIELDS: readonly string[] = [
  "type",
  "jobId",
  "ownerId",
  "flow",
  "input",
  "idempotencyKey",
  "requestFingerprint",
  "priority",
  "cache",
  "cacheDigest",
  "webhook",
  "wait",
];

/** The digest of a request's semantic fields, independent of the order its keys were written in. */
export function requestDigest(request: Record<string, unknown>): string {
  const semantic = Object.fromEntries(Object.entries(request).filter(([name, value]) => value !== undefined && !NON_SEMANTIC_FIELDS.includes(name)));
  return sha256Hex(canonicalJson(semantic));
}

/** The cache key of one job's result: per owner, so that no result is ever found by another user. */
export function resultCacheKey(parts: { ownerId: string; requestDigest: string; inputSha256: string; modelVersion: string }): string {
  return sha256Hex(canonicalJson(["result-cache-v1", parts.ownerId, parts.requestDigest, parts.inputSha256, parts.modelVersion]));
}

export function sha256Hex(bytes: string | Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** JSON with object keys sorted at every depth. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, inner]) => inner !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([name, inner]) => `${JSON.stringify(name)}:${canonicalJson(inner)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
