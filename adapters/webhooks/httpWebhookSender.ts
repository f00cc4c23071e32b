/**
 * Sends webhooks over node:http(s). The host is resolved through the SSRF guard and the
 * connection is made to an address the guard passed, through the socket's `lookup`, so that a
 * second DNS answer (rebinding) cannot slip a private address in between the check and the
 * connection. Redirects are answers like any other: never followed.
 */
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP, type LookupFunction } from "node:net";
import type { WebhookSender } from "../../events/webhookSender.js";
import { WebhookSendError } from "../../events/webhookSender.js";
import { WebhookUrlError, type WebhookGuard } from "./webhookGuard.js";

export function createHttpWebhookSender(guard: WebhookGuard, userAgent = "image-edit-webhooks/1"): WebhookSender {
  return {
    async send(rawUrl, headers, body, timeoutMs) {
      let url: URL;
      let addresses: string[];
      try {
        url = guard.checkUrl(rawUrl);
        addresses = await guard.resolveAllowed(url);
      } catch (error) {
        if (error instanceof WebhookUrlError) throw new WebhookSendError(`refused: ${error.message}`, true);
        throw error;
      }
      const pinned = addresses[0] as string;
      // Called by the socket for a host name; an IP literal needs no lookup and was checked above.
      const lookup: LookupFunction = (_hostname, options, callback) => {
        const family = isIP(pinned);
        if (options.all) (callback as unknown as (error: null, addresses: Array<{ address: string; family: number }>) => void)(null, [{ address: pinned, family }]);
        else callback(null, pinned, family);
      };
      const send = url.protocol === "https:" ? httpsRequest : httpRequest;
      return await new Promise<{ status: number }>((resolve, reject) => {
        const outgoing = send(
          url,
          {
            method: "POST",
            lookup,
            headers: { ...headers, "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), "user-agent": userAgent },
            timeout: timeoutMs,
          },
          (response) => {
            // The answer's body is not ours to keep: drain it.
            response.resume();
            response.on("end", () => resolve({ status: response.statusCode ?? 0 }));
            response.on("error", (error) => reject(new WebhookSendError(`the answer broke off: ${error.message}`)));
          },
        );
        const deadline = setTimeout(() => outgoing.destroy(new WebhookSendError(`no answer within ${timeoutMs} ms`)), timeoutMs);
        outgoing.on("close", () => clearTimeout(deadline));
        outgoing.on("timeout", () => outgoing.destroy(new WebhookSendError(`no answer within ${timeoutMs} ms`)));
        outgoing.on("error", (error) => reject(error instanceof WebhookSendError ? error : new WebhookSendError(`could not reach the receiver: ${error.message}`)));
        outgoing.end(body);
      });
    },
  };
}
