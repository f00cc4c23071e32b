/**
 * The image store on Cloud Storage. Upload URLs are V4 signed for one object, one content type,
 * a maximum size (`x-goog-content-length-range`) and one write (`x-goog-if-generation-match: 0`),
 * and expire at the given instant.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Storage } from "@google-cloud/storage";
import { ImageStoreError } from "../../events/errors.js";
import type { ImageStore } from "../../events/imageStore.js";

export function createGcsImageStore(storage: Storage): ImageStore {
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
        try {
          await file(ref).save(body, options);
        } catch (error) {
          throw translate(error, ref.object);
        }
        return;
      }
      // The body's own failure (an edit that broke off) is passed on as it is; the aborted
      // upload never completes, so no partial object appears.
      let bodyError: unknown;
      const source = Readable.from(
        (async function* () {
          try {
            yield* body;
          } catch (error) {
            bodyError = error;
            throw error;
          }
        })(),
      );
      try {
        await pipeline(source, file(ref).createWriteStream(options));
      } catch (error) {
        if (bodyError !== undefined) throw bodyError;
        throw translate(error, ref.object);
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
