/**
 * The door in front of the Functions Framework. The framework parses every body with
 * body-parser (up to 1024 MB, gzip and deflate inflated) before a function runs, so by itself it
 * would buffer and inflate whatever a stranger sends before our handler could look at a token.
 * This guard runs first, on the framework's own HTTP server, and reads the body itself:
 * - a compressed body (`Content-Encoding` other than `identity`) is refused with 415, unread;
 * - on the API's routes (`/v1/...`), a body is read only after the bearer token is verified;
 * - the size is checked on `Content-Length` before reading, and counted again while streaming:
 *   a direct upload (`POST /v1/edits?operation=...`) may be `maxDirectUploadBytes`, any other
 *   API body `maxJsonBodyBytes`, and a body on any other path (the CloudEvents Eventarc sends)
 *   `EVENT_BODY_BYTES`;
 * - all bodies being read or handled in the process together stay within
 *   `bodyMemoryBudgetBytes`; past it a request is answered 503 with `Retry-After`, unread.
 * A body read to its end leaves the request finished, so the framework's body parsers skip it;
 * the guard sets `rawBody` (and `body`, parsed, for JSON) as they would have. Refusals use the
 * API's `{"error":{"code","message"}}` envelope and log one JSON line.
 */
import http, { type IncomingMessage, type RequestListener, type Server, type ServerOptions, type ServerResponse } from "node:http";
import type { TokenVerifier } from "../events/tokenVerifier.js";
import type { Logger } from "../events/logger.js";
import { toErrorResponse, ApiError } from "./apiError.js";
import type { FunctionsConfig } from "./config.js";

/** The largest body on a path outside the API: the CloudEvents of Eventarc are a few KB. */
export const EVENT_BODY_BYTES = 64 * 1024;

/** How long after refusing a body, unread, its connection is cut. */
const DRAIN_MS = 2_000;

export type BodyGuardConfig = Pick<
  FunctionsConfig,
  "maxDirectUploadBytes" | "maxJsonBodyBytes" | "bodyMemoryBudgetBytes" | "requestTimeoutSeconds" | "headersTimeoutSeconds"
>;

/** A request handler that either answers the request itself or calls `next` with its body read. */
export type BodyGuard = (request: IncomingMessage & { rawBody?: Buffer; body?: unknown }, response: ServerResponse, next: () => void) => void;

export function createBodyGuard(deps: { verifier: TokenVerifier; config: BodyGuardConfig; log?: Logger }): BodyGuard {
  const log = deps.log ?? (() => {});
  const { config } = deps;
  let reserved = 0;

  function refuse(request: IncomingMessage, response: ServerResponse, error: unknown): void {
    const answer = toErrorResponse(error);
    log({
      severity: answer.status >= 500 ? "ERROR" : "WARNING",
      message: "request refused before its body was read",
      code: answer.body.error.code,
      status: answer.status,
      method: request.method,
      path: pathOf(request),
    });
    if (!request.complete) {
      // The rest of the body is not read at all: the request stays paused (marked as consumed, so
      // that Node does not drain it after the answer), TCP stops the sender, and the connection is
      // cut once the answer has had time to arrive. Closing at once, with unread bytes, would reset
      // the connection and could lose the answer, so it stays open (keep-alive) until then.
      request.pause();
      request.read(0);
      response.shouldKeepAlive = true;
      setTimeout(() => request.socket.destroy(), DRAIN_MS).unref();
    }
    response.writeHead(answer.status, { ...securityHeaders(), "Content-Type": "application/json; charset=utf-8", ...answer.headers });
    response.end(JSON.stringify(answer.body));
  }

  return (request, response, next) => {
    void (async () => {
      const encoding = (request.headers["content-encoding"] ?? "identity").trim().toLowerCase();
      if (encoding !== "identity" && encoding !== "") {
        throw new ApiError("unsupported_media_type", `Content-Encoding ${encoding} is not accepted; send the body uncompressed`);
      }
      if (!hasBody(request)) return next();
      const path = pathOf(request);
      const api = path.startsWith("/v1/");
      const direct = api && request.method === "POST" && path === "/v1/edits" && new URLSearchParams(queryOf(request)).has("operation");
      const limit = direct ? config.maxDirectUploadBytes : api ? config.maxJsonBodyBytes : EVENT_BODY_BYTES;
      const declared = request.headers["content-length"] === undefined ? undefined : Number(request.headers["content-length"]);
      if (declared !== undefined && declared > limit) throw tooLarge(limit, direct);
      if (api) {
        const match = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? "");
        await deps.verifier.verify(match?.[1] ?? "");
      }
      const size = declared ?? limit;
      if (reserved + size > config.bodyMemoryBudgetBytes) {
        throw new ApiError("unavailable", "the server is busy receiving other uploads; try again shortly", 2);
      }
      // Held from the first byte read until the answer is sent, while the handler has the body.
      reserved += size;
      response.once("close", () => (reserved -= size));
      const body = await readBody(request, limit, declared, () => tooLarge(limit, direct));
      request.rawBody = body;
      if (!api && isJson(request)) {
        try {
          request.body = JSON.parse(body.toString("utf8")) as unknown;
        } catch {
          throw new ApiError("invalid_json", "the body is not valid JSON");
        }
      } else {
        request.body = body;
      }
      next();
    })().catch((error: unknown) => {
      // Too late for an answer (it started, or the client went away): just end the connection.
      if (response.headersSent || request.socket.destroyed) {
        request.socket.destroy();
        return;
      }
      refuse(request, response, error);
    });
  };
}

/** Headers every API answer carries: never sniffed as another type, never cached. */
export function securityHeaders(): Record<string, string> {
  return { "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store" };
}

/**
 * Puts `guard` in front of the request listener of every HTTP server this process creates from
 * now on (the Functions Framework's among them: it creates its server after loading our module),
 * with request and headers timeouts, so that a slow body cannot hold a connection for Node's
 * default 300 s.
 */
export function installBodyGuard(guard: BodyGuard, config: Pick<BodyGuardConfig, "requestTimeoutSeconds" | "headersTimeoutSeconds">): void {
  const original = http.createServer;
  const timeouts: ServerOptions = {
    requestTimeout: config.requestTimeoutSeconds * 1000,
    headersTimeout: config.headersTimeoutSeconds * 1000,
    // How often Node checks those timeouts (default 30 s, longer than a short timeout).
    connectionsCheckingInterval: Math.min(config.headersTimeoutSeconds * 1000, 5_000),
  };
  const guarded = (...args: [ServerOptions, RequestListener?] | [RequestListener?]): Server => {
    const [options, listener] = typeof args[0] === "function" || args[0] === undefined ? [{}, args[0]] : [args[0], args[1]];
    const guardedListener: RequestListener | undefined =
      listener === undefined ? undefined : (request, response) => guard(request, response, () => listener(request, response));
    return original({ ...timeouts, ...options }, guardedListener);
  };
  http.createServer = guarded as typeof http.createServer;
}

function tooLarge(limit: number, direct: boolean): ApiError {
  return new ApiError(
    "payload_too_large",
    direct ? `a direct upload may be at most ${limit} bytes; use a signed upload` : `the body may be at most ${limit} bytes`,
  );
}

function hasBody(request: IncomingMessage): boolean {
  return request.headers["transfer-encoding"] !== undefined || Number(request.headers["content-length"] ?? 0) > 0;
}

function isJson(request: IncomingMessage): boolean {
  const type = (request.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  return type === "application/json" || type.endsWith("+json");
}

function pathOf(request: IncomingMessage): string {
  return (request.url ?? "/").split("?")[0] ?? "/";
}

function queryOf(request: IncomingMessage): string {
  const url = request.url ?? "";
  const at = url.indexOf("?");
  return at < 0 ? "" : url.slice(at + 1);
}

/**
 * Reads the body into one buffer, sized up front when its length is declared (Node's parser never
 * delivers more than that). Over `limit`, stops reading and rejects with `tooLarge()`.
 */
function readBody(request: IncomingMessage, limit: number, declared: number | undefined, tooLarge: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const whole = declared === undefined ? undefined : Buffer.allocUnsafe(declared);
    const chunks: Buffer[] = [];
    let length = 0;
    const stop = (error: Error) => {
      request.off("data", onData).off("end", onEnd).off("error", stop).off("close", onClose);
      request.pause();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      if (length + chunk.length > (declared ?? limit)) return stop(tooLarge());
      if (whole) chunk.copy(whole, length);
      else chunks.push(chunk);
      length += chunk.length;
    };
    const onEnd = () => resolve(whole ? whole.subarray(0, length) : Buffer.concat(chunks, length));
    const onClose = () => {
      if (!request.complete) stop(new Error("the client closed the request before its body ended"));
    };
    request.on("data", onData).on("end", onEnd).on("error", stop).once("close", onClose);
  });
}
