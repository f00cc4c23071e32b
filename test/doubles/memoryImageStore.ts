/**
 * An in-memory image store: the `ImageStore` port's double (events/imageStore.ts). It passes the
 * same contract suite as the Cloud Storage adapter (test/support/imageStoreContract.ts). Its
 * URLs use the `memory:` scheme; nothing can fetch them.
 */
import { ImageStoreError } from "../../events/errors.js";
import type { ObjectRef } from "../../events/editEvents.js";
import type { ImageStore } from "../../events/imageStore.js";

interface StoredObject {
  bytes: Buffer;
  contentType: string;
  metadata: Record<string, string>;
}

export interface MemoryImageStore extends ImageStore {
  /** The names of the objects in `bucket` whose names start with `prefix`. */
  list(bucket: string, prefix?: string): string[];
  /** Makes every call fail with `ImageStoreError("unavailable")` while `true`. */
  setUnavailable(unavailable: boolean): void;
}

export function createMemoryImageStore(): MemoryImageStore {
  const objects = new Map<string, StoredObject>();
  const key = (ref: ObjectRef) => `${ref.bucket}/${ref.object}`;
  let unavailable = false;
  const check = (ref: ObjectRef) => {
    if (unavailable) throw new ImageStoreError("unavailable", `storage failed on ${ref.object}: the store is down`);
  };
  return {
    async createUploadUrl(ref, { contentType, maxBytes, expiresAt, metadata = {} }) {
      check(ref);
      const headers: Record<string, string> = { "Content-Type": contentType, "x-goog-content-length-range": `0,${maxBytes}` };
      for (const [name, value] of Object.entries(metadata)) headers[`x-goog-meta-${name}`] = value;
      return { url: `memory://${key(ref)}?action=write&expires=${expiresAt.toISOString()}`, headers };
    },
    async createDownloadUrl(ref, expiresAt) {
      check(ref);
      return `memory://${key(ref)}?action=read&expires=${expiresAt.toISOString()}`;
    },
    async read(ref, maxBytes) {
      check(ref);
      const stored = objects.get(key(ref));
      if (!stored) throw new ImageStoreError("not_found", `${ref.object} does not exist`);
      if (stored.bytes.length > maxBytes) {
        throw new ImageStoreError("too_large", `${ref.object} is ${stored.bytes.length} bytes, over the limit of ${maxBytes}`);
      }
      return Buffer.from(stored.bytes);
    },
    async readHead(ref, length) {
      check(ref);
      const stored = objects.get(key(ref));
      if (!stored) throw new ImageStoreError("not_found", `${ref.object} does not exist`);
      return Buffer.from(stored.bytes.subarray(0, length));
    },
    async write(ref, body, contentType, metadata = {}) {
      check(ref);
      let bytes: Buffer;
      if (Buffer.isBuffer(body)) bytes = Buffer.from(body);
      else {
        // The body's own failure is passed on as it is, and no object appears.
        const chunks: Uint8Array[] = [];
        for await (const chunk of body) chunks.push(chunk);
        bytes = Buffer.concat(chunks);
      }
      objects.set(key(ref), { bytes, contentType, metadata: { ...metadata } });
    },
    async delete(ref) {
      check(ref);
      objects.delete(key(ref));
    },
    list(bucket, prefix = "") {
      return [...objects.keys()]
        .filter((name) => name.startsWith(`${bucket}/${prefix}`))
        .map((name) => name.slice(bucket.length + 1))
        .sort();
    },
    setUnavailable(value) {
      unavailable = value;
    },
  };
}
