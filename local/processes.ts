/**
 * Child processes of the local stack and of the test tiers: started with their output in a log
 * file, waited on until healthy, and stopped by their own PID (never by name).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync } from "node:fs";
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

/** A TCP port that was free a moment ago on 127.0.0.1. */
/** Ports this process has handed out lately, so that two picks in a row never give the same one. */
const handedOut: number[] = [];

/**
 * A loopback port that is free now. The kernel may give back a port it gave a moment ago, once
 * that one is closed again (seen: 2 in 3,000 runs of three picks), so a port handed out lately
 * is never handed out again; callers that start several servers at once get distinct ports.
 */
export async function freePort(): Promise<number> {
  while (true) {
    const port = await kernelPort();
    if (handedOut.includes(port)) continue;
    handedOut.push(port);
    if (handedOut.length > 256) handedOut.shift();
    return port;
  }
}

function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * True when an HTTP GET on `url` answers with a status below 500 (or the one given) and, where
 * `bodyIncludes` is given, a body that holds it: enough to tell one server from another that
 * happens to answer on the same port.
 */
export async function httpAnswers(url: string, expectStatus?: number, bodyIncludes?: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
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
