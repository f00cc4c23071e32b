/**
 * The webhook sender over real sockets: receivers on 127.0.0.1 (the local stack's switch on),
 * a redirect that must not be followed, a receiver too slow to answer, and the production guard,
 * which refuses the same loopback receivers before any byte leaves.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpWebhookSender } from "../../adapters/webhooks/httpWebhookSender.js";
import { createWebhookGuard } from "../../adapters/webhooks/webhookGuard.js";
import { WebhookSendError } from "../../events/webhookSender.js";

const servers: Server[] = [];
const hits: Array<{ server: string; headers: IncomingMessage["headers"]; body: string }> = [];

async function serve(name: string, answer: (response: ServerResponse) => void): Promise<string> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      hits.push({ server: name, headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
      answer(response);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return `http://127.0.0.1:${address.port}`;
}

let ok: string;
let target: string;
let redirect: string;
let slow: string;

beforeAll(async () => {
  ok = await serve("ok", (response) => response.writeHead(204).end());
  target = await serve("target", (response) => response.writeHead(200).end("secret inside"));
  redirect = await serve("redirect", (response) => response.writeHead(302, { location: `${target}/internal` }).end());
  slow = await serve("slow", (response) => setTimeout(() => response.writeHead(200).end(), 3000));
});

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

const resolve = async (host: string) => (host === "localhost" ? ["127.0.0.1"] : []);
const local = createHttpWebhookSender(createWebhookGuard({ allowLoopbackHttp: true, resolve }));
const production = createHttpWebhookSender(createWebhookGuard({ allowLoopbackHttp: false, resolve }));

describe("the webhook sender", () => {
  it("POSTs the body and the signature headers, as JSON", async () => {
    const body = JSON.stringify({ type: "edit.succeeded", id: randomUUID() });
    const answer = await local.send(`${ok}/hook`, { "webhook-id": "msg_1", "webhook-timestamp": "1", "webhook-signature": "v1,x" }, body, 2000);
    expect(answer.status).toBe(204);
    const hit = hits.find((entry) => entry.body === body);
    expect(hit?.headers).toMatchObject({ "webhook-id": "msg_1", "webhook-timestamp": "1", "webhook-signature": "v1,x", "content-type": "application/json" });
  });

  it("connects to the pinned address of a name that resolves to loopback", async () => {
    const body = JSON.stringify({ id: randomUUID() });
    const answer = await local.send(`${ok.replace("127.0.0.1", "localhost")}/hook`, {}, body, 2000);
    expect(answer.status).toBe(204);
    expect(hits.some((entry) => entry.body === body && entry.server === "ok")).toBe(true);
  });

  it("answers a redirect's status and never follows it", async () => {
    const body = JSON.stringify({ id: randomUUID() });
    const answer = await local.send(`${redirect}/hook`, {}, body, 2000);
    expect(answer.status).toBe(302);
    expect(hits.filter((entry) => entry.body === body).map((entry) => entry.server)).toEqual(["redirect"]);
  });

  it("gives up on a receiver slower than the timeout", async () => {
    const started = Date.now();
    await expect(local.send(`${slow}/hook`, {}, "{}", 500)).rejects.toThrow(/no answer within 500 ms/);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it("refuses loopback in production before sending anything, as a refusal no retry mends", async () => {
    const body = JSON.stringify({ id: randomUUID() });
    for (const url of [`${ok}/hook`, `${ok.replace("http:", "https:")}/hook`, `${ok.replace("127.0.0.1", "localhost").replace("http:", "https:")}/hook`]) {
      const refused = await production.send(url, {}, body, 2000).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(WebhookSendError);
      expect((refused as WebhookSendError).refused).toBe(true);
    }
    expect(hits.some((entry) => entry.body === body)).toBe(false);
  });

  it("says so when nothing listens", async () => {
    const closed = await serve("closed", () => {});
    const server = servers.at(-1) as Server;
    await new Promise((resolve) => server.close(resolve));
    await expect(local.send(`${closed}/hook`, {}, "{}", 2000)).rejects.toThrow(/could not reach the receiver/);
  });
});
