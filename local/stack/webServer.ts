/**
 * The web app in the local stack: builds `web/` with Vite when its output is missing or older
 * than its sources, then serves it on 127.0.0.1 with two local-only extras:
 * - `GET /config.json`: where the API and the Firestore emulator are, for the app to read;
 * - `POST /local/token` `{"userId"}`: an ID token from the local issuer, the local stand-in for
 *   signing in with Firebase Auth. Only the local stack has it.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage } from "node:http";
import { extname, join, normalize, sep } from "node:path";
import { REPO_ROOT } from "./paths.js";

export const WEB_DIST = join(REPO_ROOT, "web", "dist");
const SOURCES = [join(REPO_ROOT, "web"), join(REPO_ROOT, "client")];

/** What the app reads from /config.json. */
export interface WebConfig {
  apiUrl: string;
  projectId: string;
  firestoreEmulatorHost: string;
}

export interface WebServer {
  url: string;
  stop(): Promise<void>;
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".map": "application/json",
};

/** Builds the app unless `web/dist` is newer than every source file. Returns whether it built. */
export async function ensureWebBuild(log: (line: string) => void = console.log): Promise<boolean> {
  const built = join(WEB_DIST, "index.html");
  if (existsSync(built) && statSync(built).mtimeMs >= Math.max(...SOURCES.map(newestMtime))) return false;
  log("building the web app with Vite");
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, "node_modules", "vite", "bin", "vite.js"), "build", "--config", join(REPO_ROOT, "web", "vite.config.ts"), "--logLevel", "warn"], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "inherit", "inherit"],
    });
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`vite build exited with ${code}`))));
  });
  return true;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "dist" || entry.name === "node_modules") continue;
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

export async function startWebServer(options: { port: number; config: WebConfig; signToken(userId: string): Promise<string> }): Promise<WebServer> {
  const server = createServer((request, response) => {
    void answer(request).then(
      ({ status, type, body }) => {
        response.writeHead(status, { "content-type": type, "cache-control": "no-store", "x-content-type-options": "nosniff" });
        response.end(body);
      },
      (error: unknown) => {
        response.writeHead(500, { "content-type": "text/plain" });
        response.end(String(error));
      },
    );
  });

  async function answer(request: IncomingMessage): Promise<{ status: number; type: string; body: string | Buffer }> {
    const path = new URL(request.url ?? "/", "http://local").pathname;
    if (path === "/config.json") return { status: 200, type: TYPES[".json"]!, body: JSON.stringify(options.config) };
    if (path === "/local/token" && request.method === "POST") {
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      let userId: unknown;
      try {
        userId = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { userId?: unknown }).userId;
      } catch {
        userId = undefined;
      }
      if (typeof userId !== "string" || !/^[A-Za-z0-9._@-]{1,64}$/.test(userId)) {
        return { status: 400, type: TYPES[".json"]!, body: JSON.stringify({ error: { code: "bad_request", message: "a name of 1 to 64 letters, digits, or . _ @ -" } }) };
      }
      return { status: 200, type: TYPES[".json"]!, body: JSON.stringify({ token: await options.signToken(userId) }) };
    }
    if (request.method !== "GET" && request.method !== "HEAD") return { status: 405, type: "text/plain", body: "use GET" };
    const file = normalize(join(WEB_DIST, decodeURIComponent(path)));
    if (!file.startsWith(WEB_DIST + sep) && file !== WEB_DIST) return { status: 404, type: "text/plain", body: "not found" };
    const target = existsSync(file) && statSync(file).isFile() ? file : join(WEB_DIST, "index.html");
    return { status: 200, type: TYPES[extname(target)] ?? "application/octet-stream", body: await readFile(target) };
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, "127.0.0.1", () => resolve());
  });
  return {
    url: `http://127.0.0.1:${options.port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
