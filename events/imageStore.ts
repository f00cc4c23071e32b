/**
 * The image store port: where uploads and results live. Adapter: Cloud Storage
 * (adapters/storage/gcsImageStore.ts); the unit tests' double is test/doubles/memoryImageStore.ts.
 * Both pass test/support/imageStoreContract.ts.
 */
import type { ObjectRef } from "./editEvents.js";

/** Where images live: uploads and results. Failures are `ImageStoreError`s (events/errors.ts). */
export interface ImageStore {
  /**
   * A URL a client can PUT exactly this object to, with these headers, until `expiresAt`.
   * `metadata` is custom metadata the object must carry (the URL is signed for it, and it is among
   * the headers the client sends), such as the trace headers of the request that asked for it.
   */
  createUploadUrl(
    ref: ObjectRef,
    options: { contentType: string; maxBytes: number; expiresAt: Date; metadata?: Record<string, string> },
  ): Promise<{
    url: string;
    headers: Record<string, string>;
  }>;
  /** A URL a client can GET the object from until `expiresAt`. */
  createDownloadUrl(ref: ObjectRef, expiresAt: Date): Promise<string>;
  /** The object's bytes; throws `ImageStoreError` "not_found" or "too_large" (over `maxBytes`). */
  read(ref: ObjectRef, maxBytes: number): Promise<Buffer>;
  /** The object's first `length` bytes (fewer for a smaller object), to tell its type; throws `ImageStoreError` "not_found". */
  readHead(ref: ObjectRef, length: number): Promise<Buffer>;
  /**
   * Writes the object whole, with `metadata` as its custom metadata: from a buffer, or streamed
   * from `body`. If `body` throws, the write fails with that same error and no object is left.
   */
  write(ref: ObjectRef, body: Buffer | AsyncIterable<Uint8Array>, contentType: string, metadata?: Record<string, string>): Promise<void>;
  /** Deletes the object; absent objects are not an error. */
  delete(ref: ObjectRef): Promise<void>;
}
