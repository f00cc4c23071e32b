/** HTTP requests that get the answer of a server that answers before it has read the whole body. */
import { request as httpRequest } from "node:http";

export interface RawAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  ms: number;
}

/**
 * Sends a request whose body comes from `chunks` (streamed; chunked unless `content-length` is
 * given) and resolves with the answer as soon as it arrives, whether or not the body was taken.
 */
export function sendRaw(url: string, method: string, headers: Record<string, string>, chunks?: AsyncIterable<Buffer> | Buffer[]): Promise<RawAnswer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let answered = false;
    const request = httpRequest(url, { method, headers, agent: false }, (response) => {
      answered = true;
      let body = "";
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        resolve({ status: response.statusCode ?? 0, headers: response.headers, body, ms: performance.now() - started });
        request.destroy();
      };
      response.setEncoding("utf8");
      response.on("data", (text: string) => (body += text));
      response.on("end", finish).on("close", finish).on("error", finish);
    });
    // The server may answer and close before the whole body is sent (EPIPE, ECONNRESET): the
    // answer counts; only an error with no answer at all fails.
    request.on("error", (error) => setTimeout(() => (answered ? undefined : reject(error)), 1_000));
    if (!chunks) {
      request.end();
      return;
    }
    void (async () => {
      request.once("close", () => request.emit("drain"));
      for await (const chunk of chunks) {
        if (request.destroyed) return;
        if (!request.write(chunk)) await new Promise((next) => request.once("drain", next));
      }
      if (!request.destroyed) request.end();
    })().catch(() => request.destroy());
  });
}
