/**
 * The stage timer port: the hook through which an edit reports how long its own stages take (decode, inference,
 * encode), without knowing who listens: metrics and trace spans in the worker, nothing in tests.
 *
 *   const decoded = await timeStage("decode", () => decodeImage(input, options));
 */

/**
 * The stages of a job's processing. The worker's port decorators time `download`, `upload` and
 * `events` themselves; an edit times the other three through a `StageTimer`.
 */
export type JobStage = "download" | "decode" | "inference" | "encode" | "upload" | "events";

/** The stages an edit times itself. */
export type EditStage = Extract<JobStage, "decode" | "inference" | "encode">;

/** Runs `work` as the named stage and returns its result; the time counts whether it succeeds or not. */
export type StageTimer = <T>(stage: EditStage, work: () => Promise<T>) => Promise<T>;

/** The timer to fall back on when no one listens. */
export const untimedStages: StageTimer = (_stage, work) => work();
