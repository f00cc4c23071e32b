/**
 * Runs one command against a job: load the log, fold it, decide, append with the expected
 * version. When another writer got there first, it re-reads and decides again, so concurrent
 * commands serialise through the store's optimistic check.
 */
import { decide, type EditCommand, type Rejection } from "./decide.js";
import { EVENT_SCHEMAS, validateNewEvent, type RecordedEvent } from "./editEvents.js";
import { ConcurrencyError } from "./errors.js";
import { evolve, foldEvents, type JobState } from "./jobState.js";
import type { Clock } from "./clock.js";
import type { AppendOptions, EventStore } from "./eventStore.js";

export interface CommandOutcome {
  /** The state after the command (unchanged when rejected or when nothing was due). */
  state: JobState | undefined;
  /** What this call appended; empty when it appended nothing. */
  appended: RecordedEvent[];
  rejection?: Rejection;
}

export async function handleCommand(
  deps: { store: EventStore; clock: Clock },
  jobId: string,
  command: EditCommand,
  options: AppendOptions & { maxConflicts?: number } = {},
): Promise<CommandOutcome> {
  const { maxConflicts = 8, ...append } = options;
  for (let round = 0; ; round += 1) {
    const log = await deps.store.load(jobId);
    const state = foldEvents(log);
    const version = log.at(-1)?.seq ?? 0;
    const now = deps.clock.now();
    const decision = decide(command, state, now);
    if (!decision.ok) return { state, appended: [], rejection: decision.rejection };
    if (decision.events.length === 0) return { state, appended: [] };
    const appended = decision.events.map((event, index): RecordedEvent => ({
      ...validateNewEvent(event),
      seq: version + index + 1,
      at: now.toISOString(),
      schemaVersion: EVENT_SCHEMAS[event.type].version,
    }));
    const next = appended.reduce<JobState | undefined>(evolve, state) as JobState;
    try {
      await deps.store.append(jobId, version, appended, next, append);
      return { state: next, appended };
    } catch (error) {
      if (!(error instanceof ConcurrencyError) || round + 1 >= maxConflicts) throw error;
    }
  }
}

/** Rebuilds a job's projection from its log alone. */
export async function rebuildProjection(store: EventStore, jobId: string): Promise<JobState | undefined> {
  return foldEvents(await store.load(jobId));
}
