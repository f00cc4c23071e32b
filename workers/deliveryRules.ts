/**
 * The worker's delivery rules: what one delivery of a job message may do, decided by the job's
 * log, whatever running the edit then does.
 *
 * Pub/Sub delivers at least once, so a delivery first tries to start the job: a delivery of an
 * ended job is acked with no change; one of a job another live worker holds waits for that
 * worker (and is handed back if it still holds the job after a whole lease); one of a job whose
 * worker's lease has lapsed takes it over. A failed edit is either retried (the message goes
 * back, while attempts are left) or fails the job for good, as `toEditError` says.
 */
import { handleCommand, type CommandOutcome } from "../events/handleCommand.js";
import { hasLiveLease, isTerminal, type JobState } from "../events/jobState.js";
import type { Clock } from "../events/clock.js";
import type { EventStore } from "../events/eventStore.js";
import type { JobDelivery } from "../events/jobQueue.js";
import type { Logger } from "../events/logger.js";
import { toEditError } from "./editFailure.js";

export interface DeliveryRulesDeps {
  store: EventStore;
  clock: Clock;
  log: Logger;
  workerId: string;
  leaseMs: number;
  maxAttempts: number;
  /** Told when an attempt failed because the model server is unavailable. */
  onInferenceUnavailable?: () => void;
  /** How often a delivery waiting on a live holder looks at the job again (default 1000). */
  holderPollMs?: number;
}

export interface DeliveryRules {
  /**
   * Takes the job, or, while another live worker holds it, waits for that worker (holding this
   * copy, not handing it back: each hand-back spends one of the message's deliveries) until the
   * job ends or the holder's lease lapses and the job can be taken over. Resolves with the
   * `StartEdit` outcome: started, or rejected.
   */
  startOrWait(jobId: string): Promise<CommandOutcome>;
  /** Settles a delivery whose `StartEdit` was rejected: handed back while held, acked otherwise. */
  settleNotStarted(delivery: JobDelivery, rejection: NonNullable<CommandOutcome["rejection"]>): void;
  /** Records a failed attempt, or the job's failure, and settles the delivery accordingly. */
  /** Records the failure; resolves with the job's state after it (undefined when it could not be recorded). */
  settleFailure(delivery: JobDelivery, error: unknown): Promise<JobState | undefined>;
}

export function createDeliveryRules(deps: DeliveryRulesDeps): DeliveryRules {
  const { log, workerId, leaseMs } = deps;
  const pollMs = deps.holderPollMs ?? 1_000;
  const nowMs = () => deps.clock.now().getTime();

  return {
    async startOrWait(jobId) {
      const giveUpAt = nowMs() + leaseMs;
      for (;;) {
        const started = await handleCommand(deps, jobId, { type: "StartEdit", workerId, leaseMs });
        if (started.rejection?.code !== "lease_held" || nowMs() > giveUpAt) return started;
        for (;;) {
          await new Promise((resolve) => setTimeout(resolve, pollMs));
          const state = await deps.store.getProjection(jobId);
          if (!state || isTerminal(state.status) || !hasLiveLease(state, deps.clock.now()) || nowMs() > giveUpAt) break;
        }
      }
    },

    settleNotStarted(delivery, rejection) {
      const { jobId } = delivery.message;
      if (rejection.code === "lease_held") {
        // Held past a whole lease by a worker that still beats: a long job; this copy comes back later.
        log({ message: "job held by another worker; handed back", jobId, reason: rejection.message });
        delivery.nack();
      } else {
        log({ message: "delivery needs no work", jobId, reason: rejection.message });
        delivery.ack();
      }
    },

    async settleFailure(delivery, error) {
      const { jobId } = delivery.message;
      const failure = toEditError(error);
      // Hold the next jobs (this one's redelivery among them) until the model server answers again.
      if (failure.code === "inference_unavailable") deps.onInferenceUnavailable?.();
      try {
        if (failure.retryable) {
          const outcome = await handleCommand(deps, jobId, {
            type: "FailAttempt",
            workerId,
            code: failure.code,
            message: failure.message,
            maxAttempts: deps.maxAttempts,
          });
          const final = outcome.appended.some((event) => event.type === "EditFailed");
          log({ severity: "WARNING", message: final ? "edit failed after its last attempt" : "attempt failed; will retry", jobId, code: failure.code, detail: String(error) });
          if (final || outcome.rejection) delivery.ack();
          else delivery.nack();
          return outcome.state;
        } else {
          const outcome = await handleCommand(deps, jobId, { type: "FailEdit", workerId, code: failure.code, message: failure.message });
          log({ severity: "WARNING", message: "edit failed", jobId, code: failure.code, detail: String(error) });
          delivery.ack();
          return outcome.state;
        }
      } catch (recordError) {
        // Not even the failure could be recorded: hand the message back and let it come again.
        log({ severity: "ERROR", message: "could not record a failure", jobId, error: String(recordError) });
        delivery.nack();
        return undefined;
      }
    },
  };
}
