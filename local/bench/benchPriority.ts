/**
 * The `priority` and `cache` sections of `npm run bench`, on one local stack:
 * - `priority`: interactive jobs' latency (POST to succeeded, seen through the API) while a
 *   backlog of long jobs is kept queued, with the backlog sent as `batch` (priorities at work:
 *   its own Pub/Sub lane, a worker slot kept for interactive work, Triton priority 2) and as
 *   `interactive` (no priorities: one queue, first come first served);
 * - `cache`: a repeated request answered from the result cache, against the same request with
 *   `cache=false`, end to end.
 */
import { join } from "node:path";
import sharp from "sharp";
import { emulatorIdToken } from "../auth/emulatorUsers.js";
import { startLocalStack } from "../stack/localStack.js";
import { ensurePhotos } from "./photos.js";

export interface LatencyStats {
  samples: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
}

export interface PriorityFigures {
  backlogJobs: number;
  probes: number;
  withPriorities: LatencyStats;
  withoutPriorities: LatencyStats;
}

export interface CacheFigures {
  hit: LatencyStats;
  miss: LatencyStats;
}

const ENDED = ["succeeded", "failed", "canceled"];

export async function benchPriorityAndCache(options: {
  priority: boolean;
  cache: boolean;
  backlog?: number;
  probes?: number;
  log: (line: string) => void;
}): Promise<{ priority?: PriorityFigures; cache?: CacheFigures }> {
  const stack = await startLocalStack({ log: options.log, functionsEnv: { QUOTA_REQUESTS_PER_MINUTE: "100000", QUOTA_JOBS_IN_FLIGHT: "10000" } });
  try {
    const token = await emulatorIdToken(stack.emulatorEnv.FIREBASE_AUTH_EMULATOR_HOST, `bench-priority-${Date.now()}`);
    const photos = await ensurePhotos();
    const long = await sharp(join(photos, "astronaut.png")).resize(320, 320).jpeg().toBuffer();
    const short = await sharp(join(photos, "coffee.png")).resize(128).jpeg().toBuffer();
    const api = apiOf(stack.apiUrl, token);
    const figures: { priority?: PriorityFigures; cache?: CacheFigures } = {};
    // One warm-up job, not counted: the first call loads the model's sessions and the clients.
    await api.runToEnd(short, "operation=upscale&params.scale=2&cache=false");
    if (options.priority) {
      const backlog = options.backlog ?? 4;
      const probes = options.probes ?? 6;
      const run = async (backlogPriority: "batch" | "interactive") => {
        options.log(`interactive latency with a backlog of ${backlog} sent as ${backlogPriority}`);
        const latencies = await probeUnderBacklog(api, { long, short, backlog, probes, backlogPriority, log: options.log });
        return stats(latencies);
      };
      const withPriorities = await run("batch");
      const withoutPriorities = await run("interactive");
      figures.priority = { backlogJobs: backlog, probes, withPriorities, withoutPriorities };
    }
    if (options.cache) {
      const query = "operation=upscale&params.scale=2";
      await api.runToEnd(short, query);
      const hits: number[] = [];
      const misses: number[] = [];
      for (let run = 0; run < 5; run += 1) {
        const hit = await api.runToEnd(short, query);
        if (!hit.cachedFrom) throw new Error(`job ${hit.jobId} was not answered from the cache`);
        hits.push(hit.ms);
        misses.push((await api.runToEnd(short, `${query}&cache=false`)).ms);
        options.log(`cache run ${run + 1}: hit ${Math.round(hits.at(-1) as number)} ms, miss ${Math.round(misses.at(-1) as number)} ms`);
      }
      figures.cache = { hit: stats(hits), miss: stats(misses) };
    }
    return figures;
  } finally {
    await stack.stop();
  }
}

function apiOf(apiUrl: string, token: string) {
  const headers = { authorization: `Bearer ${token}` };
  async function submit(bytes: Buffer, query: string): Promise<string> {
    const response = await fetch(`${apiUrl}/v1/edits?${query}`, { method: "POST", headers: { ...headers, "content-type": "image/jpeg" }, body: new Uint8Array(bytes) });
    if (response.status !== 202) throw new Error(`POST /v1/edits?${query} answered ${response.status}: ${await response.text()}`);
    return ((await response.json()) as { jobId: string }).jobId;
  }
  async function view(jobId: string): Promise<{ status: string; cachedFrom?: string }> {
    return (await (await fetch(`${apiUrl}/v1/edits/${jobId}`, { headers })).json()) as { status: string; cachedFrom?: string };
  }
  return {
    submit,
    view,
    async cancel(jobId: string): Promise<void> {
      await fetch(`${apiUrl}/v1/edits/${jobId}/cancel`, { method: "POST", headers });
    },
    /** Sends the request and polls the job every 50 ms until it ends: the milliseconds from POST to seeing it succeed. */
    async runToEnd(bytes: Buffer, query: string): Promise<{ jobId: string; ms: number; cachedFrom?: string }> {
      const began = performance.now();
      const jobId = await submit(bytes, query);
      for (;;) {
        const job = await view(jobId);
        if (ENDED.includes(job.status)) {
          if (job.status !== "succeeded") throw new Error(`job ${jobId} ${job.status}`);
          return { jobId, ms: performance.now() - began, ...(job.cachedFrom ? { cachedFrom: job.cachedFrom } : {}) };
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
  };
}

/** Interactive probes, one after another, while `backlog` long jobs are kept waiting or running; the probes' latencies. */
async function probeUnderBacklog(
  api: ReturnType<typeof apiOf>,
  options: { long: Buffer; short: Buffer; backlog: number; probes: number; backlogPriority: "batch" | "interactive"; log: (line: string) => void },
): Promise<number[]> {
  const outstanding = new Set<string>();
  const topUp = async () => {
    for (const jobId of [...outstanding]) if (ENDED.includes((await api.view(jobId)).status)) outstanding.delete(jobId);
    while (outstanding.size < options.backlog) {
      outstanding.add(await api.submit(options.long, `operation=upscale&params.scale=4&cache=false&priority=${options.backlogPriority}`));
    }
  };
  const latencies: number[] = [];
  try {
    await topUp();
    // Let the worker take its share of the backlog first.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    for (let probe = 0; probe < options.probes; probe += 1) {
      await topUp();
      const { ms } = await api.runToEnd(options.short, "operation=upscale&params.scale=2&cache=false");
      latencies.push(ms);
      options.log(`  probe ${probe + 1}: ${Math.round(ms)} ms`);
    }
  } finally {
    for (const jobId of outstanding) await api.cancel(jobId);
    for (const jobId of outstanding) while (!ENDED.includes((await api.view(jobId)).status)) await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return latencies;
}

function stats(values: readonly number[]): LatencyStats {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN);
  return { samples: sorted.length, p50Ms: at(0.5), p95Ms: at(0.95), maxMs: Math.round(sorted.at(-1) ?? Number.NaN) };
}

export function priorityTable(figures: PriorityFigures): string {
  const row = (label: string, s: LatencyStats) => `| ${label} | ${s.samples} | ${s.p50Ms} | ${s.p95Ms} | ${s.maxMs} |`;
  return [
    `Interactive upscale ×2 of a 128-px photo, POST to succeeded, while ${figures.backlogJobs} upscale ×4 jobs of a 320×320 photo stay queued (ms):`,
    "| backlog sent as | probes | p50 | p95 | max |",
    "|---|---:|---:|---:|---:|",
    row("batch (priorities)", figures.withPriorities),
    row("interactive (no priorities)", figures.withoutPriorities),
  ].join("\n");
}

export function cacheTable(figures: CacheFigures): string {
  const row = (label: string, s: LatencyStats) => `| ${label} | ${s.samples} | ${s.p50Ms} | ${s.p95Ms} | ${s.maxMs} |`;
  return [
    "Upscale ×2 of a 128-px photo repeated by its owner, POST to succeeded seen through the API (ms):",
    "| request | runs | p50 | p95 | max |",
    "|---|---:|---:|---:|---:|",
    row("cache hit (no model run)", figures.hit),
    row("cache=false (model run)", figures.miss),
  ].join("\n");
}
