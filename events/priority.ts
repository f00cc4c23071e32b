/**
 * How urgent a job is. `interactive` (the default) is a person waiting for the result;
 * `batch` is bulk work that may wait. Every queue takes interactive work first: Pub/Sub (one
 * topic per priority, the worker draining the interactive one first) and Triton (request
 * priority).
 */
export const PRIORITIES = ["interactive", "batch"] as const;
export type Priority = (typeof PRIORITIES)[number];

export const DEFAULT_PRIORITY: Priority = "interactive";

export function isPriority(value: unknown): value is Priority {
  return typeof value === "string" && (PRIORITIES as readonly string[]).includes(value);
}
