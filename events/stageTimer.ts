/**
 * The stage timer port: the hook through which an edit reports how long its own stages take
 * (decode, inference, encode, and the short CPU pieces inside them), without knowing who
 * listens: metrics and trace spans in the worker, nothing in tests.
 *
 *   const decoded = await timeStage("decode", () => decodeImage(input, options));
 *   timeStage.add("stitching", msSpentPlacingTheBandsTiles);
 */

/**
 * The stages of a job's processing. The worker's port decorators time `download`, `upload` and
 * `events` themselves; an edit times the others through a `StageTimer`.
 */
export type JobStage = "download" | "decode" | "inference" | "encode" | "upload" | "events" | CpuStage;

/** The stages an edit times itself, each as one span. */
export type EditStage = Extract<JobStage, "decode" | "inference" | "encode">;

/**
 * Synchronous work done in many short pieces on the event loop (per tile, per band): cutting
 * tiles, stitching their outputs, the PNG filter. The edit sums the pieces and reports them
 * once per band, as a sample with no span of its own.
 */
export type CpuStage = "tiling" | "stitching" | "filtering";

export interface StageTimer {
  /** Runs `work` as the named stage and returns its result; the time counts whether it succeeds or not. */
  <T>(stage: EditStage, work: () => Promise<T>): Promise<T>;
  /** Adds `ms` of work already done to a CPU stage. */
  add(stage: CpuStage, ms: number): void;
}

/** The timer to fall back on when no one listens. */
export const untimedStages: StageTimer = Object.assign(<T>(_stage: EditStage, work: () => Promise<T>) => work(), { add: () => {} });
