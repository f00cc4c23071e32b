/**
 * One unary gRPC call over a bare `node:http2` session: the tiles' `ModelInfer`, whose answers
 * are most of the bytes the worker receives. grpc-js gathers each answer's HTTP/2 chunks and
 * copies them into a fresh buffer; here they are copied once, as they arrive, into a buffer the
 * caller gives (and uses again for later answers). Receiving Triton's answers this way took a
 * quarter less CPU, and the garbage collector sees half the ArrayBuffers (docs/benchmarks.md,
 * the worker's ceiling). Failures carry gRPC status codes, as grpc-js's do, for
 * `inferenceErrorFromGrpc`.
 */
import http2 from "node:http2";
import { status as GrpcStatus } from "@grpc/grpc-js";

export class GrpcCallError extends Error {
  constructor(
    readonly code: number,
    readonly details: string,
  ) {
    super(details);
  }
}

export interface RawCallOptions {
  timeoutMs: number;
  signal?: AbortSignal;
  /** Request headers: gRPC metadata, e.g. W3C trace context. */
  headers?: Record<string, string>;
  /** A buffer of exactly `byteLength` bytes for the answer (default: a new one). */
  allocate?: (byteLength: number) => Uint8Array;
}

export interface RawUnaryChannel {
  /** Sends one serialized request to `path`; resolves with the answer's serialized message. */
  call(path: string, message: Uint8Array, options: RawCallOptions): Promise<Uint8Array>;
  close(): void;
}

/** grpc-timeout holds at most 8 digits. */
const MAX_TIMEOUT_MS = 99_999_999;

/**
 * `url` is host:port; `windowBytes` the HTTP/2 flow-control window, per stream and for the
 * session. One session, opened at the first call and again after it closes.
 */
export function createRawUnaryChannel(url: string, windowBytes: number): RawUnaryChannel {
  let session: http2.ClientHttp2Session | undefined;
  let open = 0;
  let closed = false;

  function connect(): http2.ClientHttp2Session {
    if (session && !session.closed && !session.destroyed) return session;
    const fresh = http2.connect(`http://${url}`, {
      settings: { initialWindowSize: windowBytes },
      // Node's default limit makes the session refuse streams under load; grpc-js lifts it too.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
    });
    fresh.once("connect", () => fresh.setLocalWindowSize(windowBytes));
    // Each open stream reports the failure itself.
    fresh.on("error", () => {});
    const forget = () => {
      if (session === fresh) session = undefined;
    };
    fresh.on("close", forget);
    fresh.on("goaway", forget);
    if (open === 0) fresh.unref();
    session = fresh;
    return fresh;
  }

  function call(path: string, body: Uint8Array, { timeoutMs, signal, headers = {}, allocate }: RawCallOptions): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve, reject) => {
      if (closed) return reject(new GrpcCallError(GrpcStatus.UNAVAILABLE, "the channel is closed"));
      if (signal?.aborted) return reject(new GrpcCallError(GrpcStatus.CANCELLED, "Cancelled on client"));
      const current = connect();
      const stream = current.request({
        ":method": "POST",
        ":path": path,
        "content-type": "application/grpc",
        te: "trailers",
        "grpc-timeout": `${Math.min(MAX_TIMEOUT_MS, Math.max(1, Math.ceil(timeoutMs)))}m`,
        ...headers,
      });
      open += 1;
      current.ref();

      let status: number | undefined;
      let details = "";
      let streamError = "";
      const prefix = Buffer.alloc(5);
      let prefixAt = 0;
      let message: Uint8Array | undefined;
      let size = 0;
      let at = 0;
      let settled = false;

      const finish = (error?: GrpcCallError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        open -= 1;
        if (open === 0 && !current.destroyed) current.unref();
        if (error) {
          if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
          reject(error);
        } else resolve(message as Uint8Array);
      };
      const timer = setTimeout(() => {
        // The connection may be what failed (dropped data, a lost window update): later calls
        // go on a new one, and this one closes once its calls have ended.
        if (session === current) {
          session = undefined;
          current.close();
        }
        finish(new GrpcCallError(GrpcStatus.DEADLINE_EXCEEDED, "Deadline exceeded"));
      }, timeoutMs);
      const onAbort = () => finish(new GrpcCallError(GrpcStatus.CANCELLED, "Cancelled on client"));
      signal?.addEventListener("abort", onAbort, { once: true });

      const readStatus = (fields: http2.IncomingHttpHeaders) => {
        const code = fields["grpc-status"];
        if (code === undefined) return;
        status = Number(code);
        details = decodeMessage(fields["grpc-message"]);
      };
      stream.on("response", (fields) => {
        const httpStatus = fields[":status"];
        if (httpStatus !== 200) {
          status = httpStatus === 503 || httpStatus === 502 || httpStatus === 504 ? GrpcStatus.UNAVAILABLE : GrpcStatus.UNKNOWN;
          details = `HTTP status ${httpStatus}`;
        }
        readStatus(fields); // a trailers-only answer carries its status here
      });
      stream.on("trailers", readStatus);
      stream.on("data", (chunk: Buffer) => {
        let offset = 0;
        while (offset < chunk.length && !settled) {
          if (message === undefined) {
            const take = Math.min(5 - prefixAt, chunk.length - offset);
            chunk.copy(prefix, prefixAt, offset, offset + take);
            prefixAt += take;
            offset += take;
            if (prefixAt < 5) return;
            if (prefix[0] !== 0) return finish(new GrpcCallError(GrpcStatus.INTERNAL, "a compressed answer, which was not asked for"));
            size = prefix.readUInt32BE(1);
            message = allocate ? allocate(size) : new Uint8Array(size);
            if (message.byteLength !== size) return finish(new GrpcCallError(GrpcStatus.INTERNAL, `allocate gave ${message.byteLength} bytes for ${size}`));
          } else if (at < size) {
            const take = Math.min(size - at, chunk.length - offset);
            chunk.copy(message, at, offset, offset + take);
            at += take;
            offset += take;
          } else {
            return finish(new GrpcCallError(GrpcStatus.INTERNAL, "more than one message in a unary answer"));
          }
        }
      });
      stream.on("error", (error: Error) => {
        streamError = error.message;
      });
      stream.on("close", () => {
        if (settled) return;
        if (status === undefined) {
          const why = streamError || (stream.rstCode ? `stream reset with HTTP/2 code ${stream.rstCode}` : "connection closed");
          finish(new GrpcCallError(GrpcStatus.UNAVAILABLE, why));
        } else if (status !== GrpcStatus.OK) finish(new GrpcCallError(status, details));
        else if (message === undefined || at < size) finish(new GrpcCallError(GrpcStatus.INTERNAL, "the answer ended before its message did"));
        else finish();
      });

      // The gRPC frame: not compressed, then the message's length.
      const head = Buffer.alloc(5);
      head.writeUInt32BE(body.byteLength, 1);
      stream.write(head);
      stream.end(body);
    });
  }

  return {
    call,
    close() {
      closed = true;
      session?.close();
      session = undefined;
    },
  };
}

/** grpc-message is percent-encoded. */
function decodeMessage(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value.join(",") : (value ?? "");
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
