/**
 * The contract every ImageStore adapter keeps, as one suite run against each of them (Cloud
 * Storage on fake-gcs-server in the int tier, the in-memory double in the unit tier): whole
 * objects in and out, streamed writes that leave nothing when their body fails, size limits and
 * missing objects as `ImageStoreError`s, and deletes that do not mind absent objects.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ImageStoreError } from "../../events/errors.js";
import type { ImageStore } from "../../events/imageStore.js";

/** `make` gives a store and a bucket that exists in it. */
export function imageStoreContract(adapter: string, make: () => Promise<{ images: ImageStore; bucket: string }>): void {
  describe(`ImageStore contract: ${adapter}`, () => {
    const refIn = (bucket: string) => ({ bucket, object: `results/${randomUUID()}/output.png` });
    const failure = async (work: Promise<unknown>) => {
      const error = await work.then(() => undefined, (caught: unknown) => caught);
      expect(error).toBeInstanceOf(ImageStoreError);
      return error as ImageStoreError;
    };

    it("reads back the bytes it was given", async () => {
      const { images, bucket } = await make();
      const ref = refIn(bucket);
      const bytes = Buffer.from(randomUUID().repeat(20));
      await images.write(ref, bytes, "image/png", { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" });
      expect((await images.read(ref, 10_000)).equals(bytes)).toBe(true);
    });

    it("writes a streamed body whole", async () => {
      const { images, bucket } = await make();
      const ref = refIn(bucket);
      const parts = ["first ", "second ", "third"].map((part) => Buffer.from(part));
      await images.write(ref, (async function* () { yield* parts; })(), "image/png");
      expect((await images.read(ref, 10_000)).toString()).toBe("first second third");
    });

    it("fails a streamed write with its body's own error, leaving no object", async () => {
      const { images, bucket } = await make();
      const ref = refIn(bucket);
      const broken = new Error(`edit broke off ${randomUUID()}`);
      const body = (async function* () {
        yield Buffer.from("the start of a result");
        throw broken;
      })();
      await expect(images.write(ref, body, "image/png")).rejects.toBe(broken);
      expect((await failure(images.read(ref, 10_000))).code).toBe("not_found");
    });

    it("says not_found for a missing object and too_large for one over the limit", async () => {
      const { images, bucket } = await make();
      expect((await failure(images.read(refIn(bucket), 10_000))).code).toBe("not_found");
      const ref = refIn(bucket);
      await images.write(ref, Buffer.alloc(2_000, 7), "image/png");
      const tooLarge = await failure(images.read(ref, 1_999));
      expect(tooLarge.code).toBe("too_large");
      expect(tooLarge.message).toMatch(/2000 bytes/);
      expect((await images.read(ref, 2_000)).length).toBe(2_000);
    });

    it("deletes an object, and takes the delete of an absent one in its stride", async () => {
      const { images, bucket } = await make();
      const ref = refIn(bucket);
      await images.write(ref, Buffer.from("soon gone"), "image/png");
      await images.delete(ref);
      expect((await failure(images.read(ref, 10_000))).code).toBe("not_found");
      await expect(images.delete(ref)).resolves.toBeUndefined();
    });
  });
}
