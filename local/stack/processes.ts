/**
 * Child processes of the local stack and of the test tiers: started with their output in a log
 * file, waited on until healthy, and stopped by their own PID (never by name).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname } from "node:path";

export interface RunningProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves once the process has exited; SIGTERM first, SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** True until the process exits. */
  isRunning(): boolean;
}

export interface StartOptions {
  name: string;
  command: string;
  args: readonly string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  logFile: string;
  /** Polled until it resolves true; the start fails if the process exits or `timeoutMs` passes. */
  ready: () => Promise<boolean>;
  timeoutMs?: number;
}

export async function startProcess(options: StartOptions): Promise<RunningProcess> {
  mkdirSync(dirname(options.logFile), { recursive: true });
  // A fresh log each start, so that readiness read from the log never sees an earlier run.
  const log = createWriteStream(options.logFile, { flags: "w" });
  const child = spawn(options.command, [...options.args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, so that stopping it also stops what it forked (Java, stubs).
    detached: true,
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let running = true;
  void exited.then(() => {
    running = false;
  });
  if (child.pid === undefined) {
    throw new Error(`${options.name}: could not start ${options.command}`);
  }
  const handle = processHandle(options.name, child, exited, () => running, options.logFile);
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  while (true) {
    if (!running) {
      throw new Error(`${options.name} exited during start-up; see ${options.logFile}`);
    }
    if (await options.ready().catch(() => false)) return handle;
    if (Date.now() > deadline) {
      await handle.stop();
      throw new Error(`${options.name} was not ready in ${options.timeoutMs ?? 60_000} ms; see ${options.logFile}`);
    }
    await sleep(250);
  }
}

function processHandle(
  name: string,
  child: ChildProcess,
  exited: Promise<number | null>,
  isRunning: () => boolean,
  logFile: string,
): RunningProcess {
  const pid = child.pid as number;
  return {
    name,
    pid,
    logFile,
    isRunning,
    async stop(graceMs = 5_000) {
      if (!isRunning()) return;
      signalGroup(pid, "SIGTERM");
      const timer = setTimeout(() => signalGroup(pid, "SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
      // Whatever the leader forked and left behind in its group goes too.
      signalGroup(pid, "SIGKILL");
    },
  };
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

/** Ports this process has handed out lately, so that two picks in a row never give the same one. */
const handedOut: number[] = [];

/**
 * A loopback port that is free now, for a server to be started on it soon. It is taken from
 * below the kernel's ephemeral range, which the kernel draws from for every outgoing connection
 * and every bind to port 0: a port from inside that range can be taken, between this pick and
 * the server's bind, by any client connection on the machine (seen: a storage emulator started
 * 20 s after its port was picked could not bind it). A port handed out lately is never handed
 * out again, so callers that start several servers at once get distinct ports.
 */
export async function freePort(): Promise<number> {
  const [ephemeralLow] = ephemeralRange();
  const high = ephemeralLow - 1;
  const low = Math.max(1024, high - 12_000);
  for (let attempt = 0; attempt < 200; attempt += 1) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (handedOut.includes(port) || !(await portIsFree(port))) continue;
    handedOut.push(port);
    if (handedOut.length > 256) handedOut.shift();
    return port;
  }
  throw new Error(`no free loopback port in ${low}-${high}`);
}

/** The kernel's range for ephemeral ports (Linux's default where it cannot be read). */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (low && high && low > 2048) return [low, high];
  } catch {
    // Not Linux: fall through.
  }
  return [32768, 60999];
}

/** True when nothing listens on 127.0.0.1:`port` now (a server could bind it). */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * True when an HTTP GET on `url` answers with a status below 500 (or the one given) and, where
 * `bodyIncludes` is given, a body that holds it: enough to tell one server from another that
 * happens to answer on the same port.
 */
export async function httpAnswers(url: string, expectStatus?: number, bodyIncludes?: string, headers?: Record<string, string>): Promise<boolean> {
  try {
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(2_000) });
    const body = await response.text();
    const statusOk = expectStatus === undefined ? response.status < 500 : response.status === expectStatus;
    return statusOk && (bodyIncludes === undefined || body.includes(bodyIncludes));
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** True once the file holds `text`; for parts that announce their readiness in their log. */
export async function logContains(file: string, text: string): Promise<boolean> {
  const { readFile } = await import("node:fs/promises");
  return (await readFile(file, "utf8").catch(() => "")).includes(text);
}
