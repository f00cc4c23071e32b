/**
 * The web app in the local stack: builds `web/` with Vite when its output is missing or older
 * than its sources, then serves it on 127.0.0.1 with one local-only extra: `GET /config.json`,
 * where the API and the Firestore and Auth emulators are, for the app to read.
 * It answers only requests addressed to it by its loopback name (`Host`), and from its own page
 * (`Origin`, when sent), so that a page elsewhere cannot read it through DNS rebinding; and it
 * sends a Content-Security-Policy that keeps the app out of frames and runs only its own scripts.
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
  /** The Firebase web API key (the emulator takes any). */
  apiKey: string;
  firestoreEmulatorHost: string;
  /** The Firebase Auth emulator's URL, for `connectAuthEmulator`. */
  authEmulatorUrl: string;
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

/**
 * The app's Content-Security-Policy: its own scripts only, never framed. It talks to the API, the
 * Firestore emulator and the Storage emulator, all on loopback ports of their own.
 */
export const WEB_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob: http://127.0.0.1:* http://localhost:*",
  "connect-src 'self' http://127.0.0.1:* http://localhost:* ws://127.0.0.1:* ws://localhost:*",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

const json = (status: number, code: string, message: string) => ({ status, type: TYPES[".json"]!, body: JSON.stringify({ error: { code, message } }) });

export async function startWebServer(options: { port: number; config: WebConfig }): Promise<WebServer> {
  const hosts = [`127.0.0.1:${options.port}`, `localhost:${options.port}`];
  const origins = hosts.map((host) => `http://${host}`);
  const server = createServer((request, response) => {
    void answer(request).then(
      ({ status, type, body }) => {
        response.writeHead(status, {
          "content-type": type,
          "cache-control": "no-store",
          "x-content-type-options": "nosniff",
          "content-security-policy": WEB_CSP,
          "x-frame-options": "DENY",
        });
        response.end(body);
      },
      (error: unknown) => {
        response.writeHead(500, { "content-type": "text/plain" });
        response.end(String(error));
      },
    );
  });

  async function answer(request: IncomingMessage): Promise<{ status: number; type: string; body: string | Buffer }> {
    if (!hosts.includes(request.headers.host ?? "")) return json(421, "misdirected_request", `this server answers only as ${hosts.join(" or ")}`);
    const origin = request.headers.origin;
    if (origin !== undefined && !origins.includes(origin)) return json(403, "forbidden_origin", "requests from other origins are refused");
    let path: string;
    try {
      path = decodeURIComponent(new URL(request.url ?? "/", "http://local").pathname);
    } catch {
      return json(400, "bad_request", "the URL is malformed");
    }
    if (path === "/config.json") return { status: 200, type: TYPES[".json"]!, body: JSON.stringify(options.config) };
    if (request.method !== "GET" && request.method !== "HEAD") return { status: 405, type: "text/plain", body: "use GET" };
    const file = normalize(join(WEB_DIST, path));
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
