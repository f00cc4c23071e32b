/**
 * `Prefer: wait=N` (RFC 7240) on the direct flow: the request stays open up to N seconds for the
 * job to end. The wait reads the job's projection through the event store port, at growing
 * intervals (`firstPollMs`, doubling up to `maxPollMs`), and holds nothing between reads: no
 * Firestore listener, so no stream per waiting request, and nothing left behind at N seconds.
 * A listener would see the end a few hundred milliseconds sooner, at the cost of a stream per
 * request on an instance that serves many at once (docs/api.md, "Waiting for the result").
 */
import { isTerminal, type JobState } from "../events/jobState.js";
import type { Clock } from "../events/clock.js";
import type { EventStore } from "../events/eventStore.js";

export const MIN_WAIT_SECONDS = 1;
export const MAX_WAIT_SECONDS = 60;

export interface SyncWaitOptions {
  /** The first pause between reads (default 100 ms); each next one doubles, up to `maxPollMs`. */
  firstPollMs?: number;
  /** The longest pause between reads (default 1000 ms). */
  maxPollMs?: number;
  /** Pauses `ms`; the entry file passes a timer, unit tests move a manual clock. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * The seconds a `Prefer` header asks to wait, or undefined when it asks for none, or for a number
 * outside 1..60, which is ignored as RFC 7240 lets a server ignore a preference it will not honour.
 */
export function preferredWaitSeconds(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  for (const preference of header.split(",")) {
    const match = /^\s*wait\s*=\s*"?(\d{1,6})"?\s*(;.*)?$/i.exec(preference);
    if (!match) continue;
    const seconds = Number(match[1]);
    return seconds >= MIN_WAIT_SECONDS && seconds <= MAX_WAIT_SECONDS ? seconds : undefined;
  }
  return undefined;
}

/** The job once it has ended, or undefined if it has not within `seconds`. */
export async function waitForEnd(
  deps: { store: EventStore; clock: Clock },
  jobId: string,
  seconds: number,
  options: SyncWaitOptions = {},
): Promise<JobState | undefined> {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const maxPollMs = options.maxPollMs ?? 1000;
  const deadline = deps.clock.now().getTime() + seconds * 1000;
  let pause = options.firstPollMs ?? 100;
  for (;;) {
    const job = await deps.store.getProjection(jobId);
    if (job && isTerminal(job.status)) return job;
    const left = deadline - deps.clock.now().getTime();
    if (left <= 0) return undefined;
    await sleep(Math.min(pause, left));
    pause = Math.min(pause * 2, maxPollMs);
  }
}
