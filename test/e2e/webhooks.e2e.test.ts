/**
 * Webhooks on the whole local stack: a receiver on 127.0.0.1 (allowed by the local stack's
 * switch, WEBHOOK_ALLOW_LOOPBACK_HTTP) checks every message's Standard Webhooks signature with
 * the client's verifier, answers 500 to the first `edit.succeeded`, and sees it again under the
 * same `webhook-id`, retried by the sweeper; the attempts are on `GET /v1/edits/{id}/webhooks`.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createEditClient, type EditClient } from "../../client/editClient.js";
import { EditApiError } from "../../client/editErrors.js";
import { verifyWebhook } from "../../client/webhookSignature.js";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { sleep } from "../../local/stack/processes.js";

const stack = inject("stack");

interface Received {
  id: string;
  type: string;
  status: number;
  verified: boolean;
  data: { jobId?: string; status?: string };
}

let client: EditClient;
let secret: string;
let photo: Buffer;
let receiver: Server;
let receiverUrl: string;
const received: Received[] = [];
/** Message ids already answered 500 once. */
const failedOnce = new Set<string>();

beforeAll(async () => {
  const token = await emulatorIdToken(stack.authHost, `hooks-${randomUUID()}`);
  client = createEditClient({ apiUrl: stack.apiUrl, getToken: () => token });
  secret = await client.webhookSecret();
  photo = await sharp(join(await ensurePhotos(), "chelsea.png")).resize(64).jpeg({ quality: 90 }).toBuffer();
  receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      void verifyWebhook<{ jobId?: string; status?: string }>({ secret, headers: request.headers as Record<string, string>, body }).then(
        (message) => {
          const status = message.type === "edit.succeeded" && !failedOnce.has(message.id) ? 500 : 204;
          if (status === 500) failedOnce.add(message.id);
          received.push({ id: message.id, type: message.type, status, verified: true, data: message.data });
          response.writeHead(status).end();
        },
        () => {
          received.push({ id: String(request.headers["webhook-id"]), type: "?", status: 401, verified: false, data: {} });
          response.writeHead(401).end();
        },
      );
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  const address = receiver.address();
  if (address === null || typeof address === "string") throw new Error("the receiver has no port");
  receiverUrl = `http://127.0.0.1:${address.port}/hooks/${randomUUID()}`;
});

afterAll(async () => {
  await new Promise((resolve) => receiver.close(resolve));
});

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; received ${JSON.stringify(received)}`);
    await sleep(200);
  }
}

describe("webhooks on the local stack", () => {
  it("delivers running and succeeded, signed, and retries the 500 under the same webhook-id", async () => {
    const created = await client.createEdit({
      operation: "upscale",
      params: { scale: 2 },
      image: photo,
      contentType: "image/jpeg",
      flow: "direct",
      webhook: { url: receiverUrl, events: ["running", "succeeded"] },
    });
    const ofJob = () => received.filter((message) => message.data.jobId === created.jobId);
    const succeeded = await until("the retried edit.succeeded", () => {
      const messages = ofJob().filter((message) => message.type === "edit.succeeded");
      return messages.length >= 2 ? messages : undefined;
    });
    expect(succeeded.map((message) => message.status).slice(0, 2)).toEqual([500, 204]);
    expect(new Set(succeeded.map((message) => message.id)).size).toBe(1);
    expect(succeeded[0]?.data.status).toBe("succeeded");
    const running = ofJob().filter((message) => message.type === "edit.running");
    expect(running.length).toBeGreaterThanOrEqual(1);
    expect(running[0]?.data.status).toBe("running");
    expect(ofJob().every((message) => message.verified)).toBe(true);
    // Only the events asked for: no progress.
    expect(ofJob().map((message) => message.type).filter((type) => type !== "edit.running" && type !== "edit.succeeded")).toEqual([]);

    const listed = await client.webhookDeliveries(created.jobId);
    const record = listed.find((delivery) => delivery.type === "edit.succeeded");
    expect(record).toMatchObject({ id: succeeded[0]?.id, state: "delivered", url: receiverUrl });
    expect(record?.attempts.map((attempt) => attempt.status)).toEqual([500, 204]);
    expect(record?.attempts[0]?.error).toBe("the receiver answered 500");
  });

  it("refuses, at request time, a webhook to a private address even on the local stack", async () => {
    const refused = client.createEdit({
      operation: "upscale",
      params: { scale: 2 },
      image: photo,
      contentType: "image/jpeg",
      flow: "direct",
      webhook: { url: "http://169.254.169.254/computeMetadata/v1/" },
    });
    await expect(refused).rejects.toBeInstanceOf(EditApiError);
    await expect(refused).rejects.toMatchObject({ status: 400, code: "invalid_webhook" });
  });

  it("rotates the secret: a new one, answered from then on", async () => {
    const rotated = await client.rotateWebhookSecret();
    expect(rotated).toMatch(/^whsec_/);
    expect(rotated).not.toBe(secret);
    expect(await client.webhookSecret()).toBe(rotated);
    secret = rotated;
  });
});
