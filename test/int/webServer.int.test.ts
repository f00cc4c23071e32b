/**
 * The local stack's web server (local/stack/webServer.ts) on a loopback port: it serves its
 * configuration only to its own page (Host and Origin checked, so DNS rebinding and other sites
 * get nothing), mints no tokens (sign-in is the Auth emulator's), answers a
 * malformed URL with 400, and sends a Content-Security-Policy that forbids framing.
 */
import { randomUUID } from "node:crypto";
import { request as httpRequest } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../local/stack/processes.js";
import { startWebServer, type WebServer } from "../../local/stack/webServer.js";

let server: WebServer;
let port: number;

beforeAll(async () => {
  port = await freePort();
  server = await startWebServer({
    port,
    config: { apiUrl: "http://127.0.0.1:1", projectId: `web-${randomUUID()}`, apiKey: "k", firestoreEmulatorHost: "127.0.0.1:2", authEmulatorUrl: "http://127.0.0.1:3" },
  });
});

afterAll(async () => {
  await server?.stop();
});

/** A raw request, so that Host can be anything (fetch sets it from the URL). */
function send(path: string, headers: Record<string, string>, method = "GET", body?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest({ host: "127.0.0.1", port, path, method, headers, setHost: false }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => (text += chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: text }));
    });
    request.on("error", reject);
    request.end(body);
  });
}

const configRequest = (headers: Record<string, string>) => send("/config.json", headers);

describe("the local web server", () => {
  it("serves its configuration, with the Auth emulator's URL, to its own page; mints no tokens", async () => {
    const own = await configRequest({ host: `127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` });
    expect(own.status).toBe(200);
    expect(JSON.parse(own.body)).toMatchObject({ authEmulatorUrl: "http://127.0.0.1:3" });
    expect((await configRequest({ host: `localhost:${port}` })).status).toBe(200);
    const mint = await send("/local/token", { host: `127.0.0.1:${port}`, "content-type": "application/json" }, "POST", JSON.stringify({ userId: "u" }));
    expect(mint.status).toBe(405);
  });

  it("refuses a request addressed to another name (DNS rebinding) and one from another origin", async () => {
    const rebound = await configRequest({ host: `attacker.example:${port}`, origin: `http://attacker.example:${port}` });
    expect(rebound.status).toBe(421);
    const foreign = await configRequest({ host: `127.0.0.1:${port}`, origin: "https://evil.example" });
    expect(foreign.status).toBe(403);
    const nullOrigin = await configRequest({ host: `127.0.0.1:${port}`, origin: "null" });
    expect(nullOrigin.status).toBe(403);
  });

  it("answers a malformed URL with 400, not 500", async () => {
    const answer = await send("/%E0%A4%A", { host: `127.0.0.1:${port}` });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toEqual({ error: { code: "bad_request", message: "the URL is malformed" } });
  });

  it("sends a Content-Security-Policy that forbids framing and foreign scripts", async () => {
    const answer = await send("/config.json", { host: `127.0.0.1:${port}` });
    expect(answer.status).toBe(200);
    const policy = String(answer.headers["content-security-policy"]);
    expect(policy).toContain("frame-ancestors 'none'");
    expect(policy).toContain("script-src 'self'");
    expect(answer.headers["x-content-type-options"]).toBe("nosniff");
  });
});
