/**
 * The image store on Cloud Storage. Upload URLs are V4 signed for one object, one content type,
 * a maximum size (`x-goog-content-length-range`) and one write (`x-goog-if-generation-match: 0`),
 * and expire at the given instant.
 *
 * Writes are restartable: a streamed body (an edit's output as it is encoded) is first spooled to
 * a local file, and then uploaded whole, as one non-resumable request. A connection cut halfway
 * leaves no object (a non-resumable upload is all or nothing) and the upload is made again from
 * the file, up to `uploadAttempts` times with backoff and jitter, without running the edit again.
 * Writing a whole object under a fixed name is idempotent, so the retry is safe.
 */
import { randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Storage } from "@google-cloud/storage";
import { ImageStoreError } from "../../events/errors.js";
import type { ImageStore } from "../../events/imageStore.js";

export interface GcsImageStoreOptions {
  /** Where streamed bodies are spooled before their upload (default the system's temp folder). */
  spoolDir?: string;
  /** Tries of one upload before it fails as unavailable (default 4). */
  uploadAttempts?: number;
  /** The first retry's delay; each next one doubles, with ±50% jitter (default 250 ms). */
  retryBaseMs?: number;
}

export function createGcsImageStore(storage: Storage, storeOptions: GcsImageStoreOptions = {}): ImageStore {
  const spoolDir = storeOptions.spoolDir ?? tmpdir();
  const uploadAttempts = storeOptions.uploadAttempts ?? 4;
  const retryBaseMs = storeOptions.retryBaseMs ?? 250;
  /** Runs `upload` until it succeeds, retrying only on storage being unavailable. */
  async function withRetries(object: string, upload: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await upload();
        return;
      } catch (error) {
        const translated = translate(error, object);
        if (!(translated instanceof ImageStoreError) || translated.code !== "unavailable" || attempt >= uploadAttempts) throw translated;
        const delay = retryBaseMs * 2 ** (attempt - 1) * (0.5 + Math.random());
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
  const file = (ref: { bucket: string; object: string }) => storage.bucket(ref.bucket).file(ref.object);
  return {
    async createUploadUrl(ref, { contentType, maxBytes, expiresAt, metadata = {} }) {
      // Custom metadata travels as x-goog-meta-* headers, signed like the length range. The
      // generation match of 0 makes the URL write the object once: a second PUT (within the
      // TTL, or after a cancel) cannot replace it.
      const extensionHeaders: Record<string, string> = { "x-goog-content-length-range": `0,${maxBytes}`, "x-goog-if-generation-match": "0" };
      for (const [name, value] of Object.entries(metadata)) extensionHeaders[`x-goog-meta-${name}`] = value;
      const [url] = await file(ref).getSignedUrl({ version: "v4", action: "write", expires: expiresAt, contentType, extensionHeaders });
      return { url, headers: { "Content-Type": contentType, ...extensionHeaders } };
    },

    async createDownloadUrl(ref, expiresAt) {
      const [url] = await file(ref).getSignedUrl({ version: "v4", action: "read", expires: expiresAt });
      return url;
    },

    async read(ref, maxBytes) {
      try {
        const [metadata] = await file(ref).getMetadata();
        if (Number(metadata.size) > maxBytes) {
          throw new ImageStoreError("too_large", `${ref.object} is ${metadata.size} bytes, over the limit of ${maxBytes}`);
        }
        const [bytes] = await file(ref).download();
        return bytes;
      } catch (error) {
        throw translate(error, ref.object);
      }
    },

    async readHead(ref, length) {
      try {
        const [bytes] = await file(ref).download({ start: 0, end: length - 1 });
        return bytes.subarray(0, length);
      } catch (error) {
        throw translate(error, ref.object);
      }
    },

    async write(ref, body, contentType, metadata) {
      const options = {
        contentType,
        resumable: false,
        // The upload is still checked end to end, against the MD5 the server computed (an upload
        // whose hash differs, or that comes back without one, fails and is deleted): MD5 runs in
        // OpenSSL, where the client's CRC32C runs in JavaScript, byte by byte, about 3 of the
        // worker's CPU ms per output MP (docs/benchmarks.md, the worker's ceiling).
        validation: "md5" as const,
        metadata: { cacheControl: "private, max-age=0", ...(metadata === undefined ? {} : { metadata }) },
      };
      if (Buffer.isBuffer(body)) {
        await withRetries(ref.object, () => file(ref).save(body, options));
        return;
      }
      // The body's own failure (an edit that broke off) is passed on as it is, before any upload
      // began: no object appears.
      const spool = join(spoolDir, `upload-${randomUUID()}`);
      try {
        await pipeline(Readable.from(body), createWriteStream(spool));
        await withRetries(ref.object, () => pipeline(createReadStream(spool), file(ref).createWriteStream(options)));
      } finally {
        await rm(spool, { force: true });
      }
    },

    async delete(ref) {
      try {
        await file(ref).delete({ ignoreNotFound: true });
      } catch (error) {
        throw translate(error, ref.object);
      }
    },
  };
}

function translate(error: unknown, object: string): Error {
  if (error instanceof ImageStoreError) return error;
  const code = (error as { code?: unknown }).code;
  if (code === 404) return new ImageStoreError("not_found", `${object} does not exist`);
  return new ImageStoreError("unavailable", `storage failed on ${object}: ${(error as Error).message}`);
}
