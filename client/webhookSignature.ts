/**
 * Checks a webhook the edit service sent, as the Standard Webhooks specification says: the
 * `webhook-signature` header holds one or more space-separated `v1,<base64>` signatures, each an
 * HMAC-SHA256 of `<webhook-id>.<webhook-timestamp>.<body>` keyed by the base64-decoded secret
 * (`whsec_` stripped); the timestamp, in seconds, must be within `toleranceSeconds` of now, so
 * that an old message cannot be replayed. Web Crypto only, so it runs in Node, browsers and
 * React Native runtimes that have `crypto.subtle`. Pass the body exactly as received, before any
 * JSON parsing.
 */

export class WebhookVerificationError extends Error {
  override readonly name = "WebhookVerificationError";
}

export interface VerifyWebhookOptions {
  /** The secret from GET /v1/webhooks/secret, `whsec_…`. */
  secret: string;
  /** The request's headers, by lower-case name. */
  headers: Record<string, string | string[] | undefined>;
  /** The raw body. */
  body: string;
  /** Default: the clock. */
  now?: Date;
  /** How far the timestamp may be from now (default 300 s, the specification's). */
  toleranceSeconds?: number;
}

/** The verified message's id, type and data; throws `WebhookVerificationError` when it is not genuine. */
export async function verifyWebhook<T = unknown>(options: VerifyWebhookOptions): Promise<{ id: string; type: string; timestamp: string; data: T }> {
  const header = (name: string) => {
    const value = options.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const id = header("webhook-id");
  const timestamp = header("webhook-timestamp");
  const signatures = header("webhook-signature");
  if (!id || !timestamp || !signatures) throw new WebhookVerificationError("the webhook-id, webhook-timestamp and webhook-signature headers are required");
  if (!/^\d+$/.test(timestamp)) throw new WebhookVerificationError("webhook-timestamp is not a number of seconds");
  const nowSeconds = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const tolerance = options.toleranceSeconds ?? 300;
  if (Math.abs(nowSeconds - Number(timestamp)) > tolerance) throw new WebhookVerificationError("webhook-timestamp is too far from now");
  const expected = await computeSignature(options.secret, `${id}.${timestamp}.${options.body}`);
  const genuine = signatures
    .split(" ")
    .filter((entry) => entry.startsWith("v1,"))
    .some((entry) => constantTimeEqual(entry.slice(3), expected));
  if (!genuine) throw new WebhookVerificationError("no signature matches");
  const parsed = JSON.parse(options.body) as { type: string; timestamp: string; data: T };
  return { id, type: parsed.type, timestamp: parsed.timestamp, data: parsed.data };
}

async function computeSignature(secret: string, content: string): Promise<string> {
  const encoded = secret.startsWith("whsec_") ? secret.slice("whsec_".length) : secret;
  const key = await crypto.subtle.importKey("raw", base64ToBytes(encoded), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(content)));
  return bytesToBase64(mac);
}

function base64ToBytes(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index++) bytes[index] = binary.charCodeAt(index);
  return bytes;
}

function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let index = 0; index < a.length; index++) difference |= a.charCodeAt(index) ^ b.charCodeAt(index);
  return difference === 0;
}
