/**
 * What keeps a worker honest about being alive, and about the job still being its own:
 * - `watchRunningJob`: while an edit runs, it renews the job's lease (the heartbeat that tells a
 *   new delivery, and the sweeper, that this worker lives) and watches the projection, aborting
 *   the edit within `checkMs` when the job is canceled or another worker took it over;
 * - `createReadinessGate`: holds new work while Triton is not ready, so that a Triton outage
 *   does not spend the jobs' attempts.
 */
import { handleCommand } from "../events/handleCommand.js";
import type { InferenceClient } from "../events/inferenceClient.js";
import type { Clock } from "../events/clock.js";
import type { EventStore } from "../events/eventStore.js";
import type { Logger } from "../events/logger.js";

/** Why a running edit was stopped from outside. */
export type AbortReason = "canceled" | "lost" | "deadline";

export interface JobWatch {
  signal: AbortSignal;
  /** Set once the signal has fired. */
  reason(): AbortReason | undefined;
  stop(): void;
}

export function watchRunningJob(
  deps: { store: EventStore; clock: Clock; log: Logger },
  job: { jobId: string; workerId: string },
  timing: {
    checkMs: number;
    heartbeatMs: number;
    leaseMs: number;
    /** When the job's deadline passes (epoch ms), and its length: then it fails with `deadline_exceeded` and its work stops. */
    deadline?: { at: number; ms: number };
  },
): JobWatch {
  const controller = new AbortController();
  let reason: AbortReason | undefined;
  let lastBeat = deps.clock.now().getTime();
  let busy = false;
  const abort = (why: AbortReason, detail: string) => {
    if (reason) return;
    reason = why;
    const message = {
      canceled: "edit canceled while running; stopping its work",
      lost: "job no longer held; stopping its work",
      deadline: "edit past its deadline; stopping its work",
    }[why];
    deps.log({ message, jobId: job.jobId, detail });
    controller.abort(new Error(`edit stopped: ${why}`));
  };
  const tick = async () => {
    if (busy || reason) return;
    busy = true;
    try {
      const now = deps.clock.now().getTime();
      if (timing.deadline && now >= timing.deadline.at) {
        const expired = await handleCommand(deps, job.jobId, { type: "ExpireDeadline", deadlineMs: timing.deadline.ms });
        if (expired.rejection) abort(expired.state?.status === "canceled" ? "canceled" : "lost", expired.rejection.message);
        else abort("deadline", `the job started at ${expired.state?.firstStartedAt ?? "?"}`);
        return;
      }
      if (now - lastBeat >= timing.heartbeatMs) {
        const renewed = await handleCommand(deps, job.jobId, { type: "RenewLease", workerId: job.workerId, leaseMs: timing.leaseMs });
        if (renewed.rejection) {
          abort(renewed.state?.status === "canceled" ? "canceled" : "lost", renewed.rejection.message);
          return;
        }
        lastBeat = now;
        return;
      }
      const state = await deps.store.getProjection(job.jobId);
      if (state?.status === "canceled") abort("canceled", "the job was canceled");
      else if (!state || state.status !== "running" || state.workerId !== job.workerId) abort("lost", `the job is ${state?.status ?? "gone"}`);
    } catch (error) {
      // A failed read or renewal is a passing fault; the next tick tries again, and the lease
      // has room for several.
      deps.log({ severity: "WARNING", message: "could not check or renew the job's lease", jobId: job.jobId, error: String(error) });
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void tick(), timing.checkMs);
  return {
    signal: controller.signal,
    reason: () => reason,
    stop: () => clearInterval(timer),
  };
}

export interface ReadinessGate {
  /** Resolves at once while Triton is ready; otherwise once it is ready again. */
  whenReady(): Promise<void>;
  isOpen(): boolean;
  /**
   * An inference call just found Triton unavailable: close at once, before the failed job's
   * message comes back, until a probe finds Triton ready again.
   */
  reportUnavailable(): void;
  start(): void;
  stop(): void;
}

export function createReadinessGate(inference: Pick<InferenceClient, "isReady">, pollMs: number, log: Logger): ReadinessGate {
  let open = true;
  let timer: NodeJS.Timeout | undefined;
  let waiters: Array<() => void> = [];
  const probe = async () => {
    const ready = await Promise.race([
      inference.isReady().catch(() => false),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), Math.max(pollMs, 1_000)).unref()),
    ]);
    if (ready === open) return;
    open = ready;
    log(ready ? { message: "Triton is ready; taking jobs again" } : { severity: "WARNING", message: "Triton is not ready; holding new jobs until it is" });
    if (ready) {
      const release = waiters;
      waiters = [];
      for (const resolve of release) resolve();
    }
  };
  let probing = false;
  let firstProbe: Promise<void> = Promise.resolve();
  return {
    async whenReady() {
      await firstProbe;
      if (!open) await new Promise<void>((resolve) => waiters.push(resolve));
    },
    isOpen: () => open,
    reportUnavailable() {
      if (!open || !timer) return;
      open = false;
      log({ severity: "WARNING", message: "Triton is not ready; holding new jobs until it is" });
    },
    start() {
      if (timer) return;
      firstProbe = probe();
      timer = setInterval(() => {
        if (probing) return;
        probing = true;
        void probe().finally(() => (probing = false));
      }, pollMs);
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
      open = true;
      const release = waiters;
      waiters = [];
      for (const resolve of release) resolve();
    },
  };
}
