/**
 * The webhook sender port: one POST to a receiver, with no redirect followed. Adapter:
 * adapters/webhooks/httpWebhookSender.ts, which connects only to addresses the SSRF guard allows.
 */
export interface WebhookSender {
  /**
   * POSTs `body` with `headers` to `url` within `timeoutMs`. Answers the receiver's status (any,
   * 3xx included, which is never followed); throws on a refused address, a timeout or a network
   * error, with a message a person can read. `refused` on the error marks a guard refusal, which
   * no retry mends.
   */
  send(url: string, headers: Record<string, string>, body: string, timeoutMs: number): Promise<{ status: number }>;
}

export class WebhookSendError extends Error {
  override readonly name = "WebhookSendError";
  constructor(
    message: string,
    /** True when the address was refused: a retry would be refused too. */
    readonly refused = false,
  ) {
    super(message);
  }
}
