/**
 * Toxiproxy (Shopify), the fault-injecting TCP proxy the faults tier and the soak put between the
 * worker and the API and each thing they call. Built with `go install` into .local/bin, as
 * fake-gcs-server is, started on 127.0.0.1 and stopped by PID, and driven over its HTTP API:
 * proxies are created and enabled or disabled, and toxics (latency, bandwidth, reset_peer,
 * limit_data, timeout, slow_close) are added to and removed from them while jobs flow.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { LOCAL_DIR } from "./paths.js";
import { freePort, httpAnswers, startProcess, type RunningProcess } from "./processes.js";

const run = promisify(execFile);

/** Toxiproxy's server, pinned; `go install` builds it from the Go module proxy. */
export const TOXIPROXY_MODULE = "github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0";
const TOXIPROXY_BIN = join(LOCAL_DIR, "bin", "toxiproxy-server");
const TOXIPROXY_STAMP = join(LOCAL_DIR, "bin", "toxiproxy-server.version");

/** Builds the server once (its binary is named `server`; it is kept as `toxiproxy-server`). */
export async function ensureToxiproxy(log: (line: string) => void = () => {}): Promise<void> {
  const stamped = existsSync(TOXIPROXY_STAMP) ? readFileSync(TOXIPROXY_STAMP, "utf8") : "";
  if (existsSync(TOXIPROXY_BIN) && stamped === TOXIPROXY_MODULE) return;
  log(`building ${TOXIPROXY_MODULE} with go install (about a minute, once)`);
  mkdirSync(join(LOCAL_DIR, "bin"), { recursive: true });
  const gobin = mkdtempSync(join(LOCAL_DIR, "bin", ".toxiproxy-"));
  try {
    await run("go", ["install", TOXIPROXY_MODULE], { env: { ...process.env, GOBIN: gobin }, maxBuffer: 16 * 1024 * 1024 });
    renameSync(join(gobin, "server"), TOXIPROXY_BIN);
  } finally {
    rmSync(gobin, { recursive: true, force: true });
  }
  writeFileSync(TOXIPROXY_STAMP, TOXIPROXY_MODULE);
}

/** The toxics Toxiproxy offers, with their attributes (times in ms, rates in KB/s). */
export type Toxic =
  | { type: "latency"; attributes: { latency: number; jitter?: number } }
  | { type: "bandwidth"; attributes: { rate: number } }
  | { type: "slow_close"; attributes: { delay: number } }
  /** Holds all data and closes the connection after `timeout` ms; 0 holds it until the toxic goes. */
  | { type: "timeout"; attributes: { timeout: number } }
  /** Resets the connection (TCP RST) after `timeout` ms. */
  | { type: "reset_peer"; attributes: { timeout: number } }
  /** Closes the connection once `bytes` have passed. */
  | { type: "limit_data"; attributes: { bytes: number } };

export type ToxicSpec = Toxic & {
  /** `downstream`: from the upstream server to the client (the default); `upstream`: the other way. */
  stream?: "upstream" | "downstream";
  /** The share of connections it applies to, 0..1 (default 1). */
  toxicity?: number;
};

export interface ProxyRef {
  name: string;
  /** host:port the client connects to. */
  listen: string;
  /** host:port of the real server. */
  upstream: string;
}

export interface Toxiproxy {
  readonly apiUrl: string;
  /** Creates a proxy on a free 127.0.0.1 port in front of `upstream` (host:port). */
  createProxy(name: string, upstream: string): Promise<ProxyRef>;
  /** Adds a toxic; answers its name, for `removeToxic`. */
  addToxic(proxy: string, toxic: ToxicSpec): Promise<string>;
  removeToxic(proxy: string, toxicName: string): Promise<void>;
  /** A disabled proxy closes its connections and refuses new ones: the server is unreachable. */
  setEnabled(proxy: string, enabled: boolean): Promise<void>;
  /** Every proxy enabled and every toxic removed. */
  reset(): Promise<void>;
  deleteProxy(proxy: string): Promise<void>;
}

let toxicCount = 0;

/** A client of Toxiproxy's HTTP API at `apiUrl`. */
export function toxiproxyClient(apiUrl: string): Toxiproxy {
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const response = await fetch(`${apiUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`toxiproxy ${method} ${path}: ${response.status} ${text}`);
    return text === "" ? undefined : JSON.parse(text);
  };
  return {
    apiUrl,
    async createProxy(name, upstream) {
      const listen = `127.0.0.1:${await freePort()}`;
      await call("POST", "/proxies", { name, listen, upstream, enabled: true });
      return { name, listen, upstream };
    },
    async addToxic(proxy, toxic) {
      const name = `${toxic.type}-${++toxicCount}`;
      await call("POST", `/proxies/${proxy}/toxics`, {
        name,
        type: toxic.type,
        stream: toxic.stream ?? "downstream",
        toxicity: toxic.toxicity ?? 1,
        attributes: toxic.attributes,
      });
      return name;
    },
    async removeToxic(proxy, toxicName) {
      await call("DELETE", `/proxies/${proxy}/toxics/${toxicName}`);
    },
    async setEnabled(proxy, enabled) {
      await call("POST", `/proxies/${proxy}`, { enabled });
    },
    async reset() {
      await call("POST", "/reset");
    },
    async deleteProxy(proxy) {
      await call("DELETE", `/proxies/${proxy}`);
    },
  };
}

export interface RunningToxiproxy extends RunningProcess {
  client: Toxiproxy;
}

/** Starts Toxiproxy's server on 127.0.0.1 (`port`, or a free one); its log goes to `logDir`. */
export async function startToxiproxy(logDir: string, port?: number): Promise<RunningToxiproxy> {
  await ensureToxiproxy();
  const apiPort = port ?? (await freePort());
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const server = await startProcess({
    name: "toxiproxy",
    command: TOXIPROXY_BIN,
    args: ["-host", "127.0.0.1", "-port", String(apiPort)],
    // Its access log at info level is one line per connection; warnings are what matter here.
    env: { ...process.env, LOG_LEVEL: "warn" },
    logFile: join(logDir, "toxiproxy.log"),
    ready: () => httpAnswers(`${apiUrl}/version`, 200),
    timeoutMs: 30_000,
  });
  return Object.assign(server, { client: toxiproxyClient(apiUrl) });
}
