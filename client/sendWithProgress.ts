/**
 * Sends a request body and reports how much of it has gone. In a browser and in React Native it
 * uses XMLHttpRequest, whose upload events are the only upload progress those platforms give;
 * elsewhere (Node) it streams the body through `fetch` in chunks, counting each chunk as the
 * connection takes it.
 */
import { ServiceUnreachableError } from "./editErrors.js";

export type ProgressListener = (sentBytes: number, totalBytes: number) => void;

export interface BodyRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: Uint8Array | Blob;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

export interface BodyResponse {
  status: number;
  text: string;
}

const CHUNK_BYTES = 64 * 1024;

export function sendWithProgress(request: BodyRequest): Promise<BodyResponse> {
  return typeof XMLHttpRequest === "function" ? sendWithXhr(request) : sendWithFetch(request);
}

function sendWithXhr(request: BodyRequest): Promise<BodyResponse> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(request.method, request.url);
    for (const [name, value] of Object.entries(request.headers)) xhr.setRequestHeader(name, value);
    const total = request.body instanceof Uint8Array ? request.body.byteLength : request.body.size;
    xhr.upload.onprogress = (event) => request.onProgress?.(event.loaded, event.lengthComputable ? event.total : total);
    xhr.onload = () => {
      request.onProgress?.(total, total);
      resolve({ status: xhr.status, text: xhr.responseText });
    };
    xhr.onerror = () => reject(new ServiceUnreachableError(request.url, "the connection failed"));
    xhr.onabort = () => reject(new DOMException("the upload was stopped", "AbortError"));
    request.signal?.addEventListener("abort", () => xhr.abort(), { once: true });
    xhr.send(request.body as XMLHttpRequestBodyInit);
  });
}

async function sendWithFetch(request: BodyRequest): Promise<BodyResponse> {
  const bytes = request.body instanceof Uint8Array ? request.body : new Uint8Array(await request.body.arrayBuffer());
  const total = bytes.byteLength;
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= total) {
        controller.close();
        return;
      }
      const chunk = bytes.subarray(sent, Math.min(total, sent + CHUNK_BYTES));
      controller.enqueue(chunk);
      sent += chunk.byteLength;
      request.onProgress?.(sent, total);
    },
  });
  let response: Response;
  try {
    response = await fetch(request.url, {
      method: request.method,
      headers: { ...request.headers, "content-length": String(total) },
      body: stream,
      // Node's fetch streams a request body only in half-duplex mode.
      duplex: "half",
      ...(request.signal ? { signal: request.signal } : {}),
    } as RequestInit);
  } catch (error) {
    if ((error as Error).name === "AbortError") throw error;
    throw new ServiceUnreachableError(request.url, causeOf(error));
  }
  return { status: response.status, text: await response.text() };
}

/** Node's fetch hides the reason (ECONNREFUSED, ENOTFOUND) in `cause`. */
export function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message ?? String(error);
}
