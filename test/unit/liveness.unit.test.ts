/**
 * What keeps a worker honest about being alive, through the in-memory doubles: the heartbeat
 * that renews a running job's lease, the watch that stops an edit when its job is canceled or
 * taken over, and the gate that holds new work while the model server is not ready.
 */
import { describe, expect, it } from "vitest";
import { handleCommand } from "../../events/handleCommand.js";
import { createReadinessGate, watchRunningJob } from "../../workers/liveness.js";
import { eventTypes, memoryCore, queuedJob, testJpeg, until } from "../support/coreFixtures.js";

const LEASE_MS = 60_000;
const timing = { checkMs: 5, heartbeatMs: 15_000, leaseMs: LEASE_MS };

async function runningJob(workerId = "w1") {
  const core = memoryCore();
  const jobId = await queuedJob(core, await testJpeg());
  await handleCommand(core, jobId, { type: "StartEdit", workerId, leaseMs: LEASE_MS });
  return { core, jobId };
}

describe("the running job's watch", () => {
  it("renews the lease once a heartbeat is due, and not before", async () => {
    const { core, jobId } = await runningJob();
    const watch = watchRunningJob(core, { jobId, workerId: "w1" }, timing);
    try {
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect(await eventTypes(core, jobId)).not.toContain("LeaseRenewed");
      core.clock.advance(15_000);
      await until("a renewed lease", async () => (await eventTypes(core, jobId)).includes("LeaseRenewed"));
      const job = await core.store.getProjection(jobId);
      expect(Date.parse(job?.leaseExpiresAt ?? "")).toBe(core.clock.now().getTime() + LEASE_MS);
      expect(watch.reason()).toBeUndefined();
    } finally {
      watch.stop();
    }
  });

  it("aborts the edit when the job is canceled", async () => {
    const { core, jobId } = await runningJob();
    const watch = watchRunningJob(core, { jobId, workerId: "w1" }, timing);
    await handleCommand(core, jobId, { type: "CancelEdit", by: "owner" });
    await until("the abort", async () => watch.signal.aborted);
    watch.stop();
    expect(watch.reason()).toBe("canceled");
  });

  it("aborts the edit as lost when another worker took the job over", async () => {
    const { core, jobId } = await runningJob("slow");
    const watch = watchRunningJob(core, { jobId, workerId: "slow" }, { ...timing, heartbeatMs: 120_000 });
    core.clock.advance(LEASE_MS + 1_000);
    await handleCommand(core, jobId, { type: "StartEdit", workerId: "other", leaseMs: LEASE_MS });
    await until("the abort", async () => watch.signal.aborted);
    watch.stop();
    expect(watch.reason()).toBe("lost");
  });

  it("keeps going through a failed read, which the next tick tries again", async () => {
    const { core, jobId } = await runningJob();
    const getProjection = core.store.getProjection;
    let failures = 0;
    core.store.getProjection = async (id) => {
      if (failures++ < 2) throw new Error("Firestore is unavailable");
      return getProjection(id);
    };
    const watch = watchRunningJob(core, { jobId, workerId: "w1" }, timing);
    await until("reads to succeed again", async () => failures > 3);
    watch.stop();
    expect(watch.reason()).toBeUndefined();
    expect(core.logger.messages()).toContain("could not check or renew the job's lease");
  });
});

describe("the readiness gate", () => {
  it("holds work while the model server is not ready, and lets it through once it is", async () => {
    const core = memoryCore();
    core.inference.setAvailable(false);
    const gate = createReadinessGate(core.inference, 5, core.log);
    gate.start();
    try {
      let through = false;
      const waiting = gate.whenReady().then(() => (through = true));
      await new Promise((resolve) => setTimeout(resolve, 30));
      expect([through, gate.isOpen()]).toEqual([false, false]);
      core.inference.setAvailable(true);
      await waiting;
      expect(gate.isOpen()).toBe(true);
    } finally {
      gate.stop();
    }
  });

  it("closes at once when a call finds the server unavailable, until a probe finds it ready", async () => {
    const core = memoryCore();
    const gate = createReadinessGate(core.inference, 5, core.log);
    gate.start();
    try {
      await gate.whenReady();
      core.inference.setAvailable(false);
      gate.reportUnavailable();
      expect(gate.isOpen()).toBe(false);
      core.inference.setAvailable(true);
      await gate.whenReady();
      expect(core.logger.messages()).toEqual(["Triton is not ready; holding new jobs until it is", "Triton is ready; taking jobs again"]);
    } finally {
      gate.stop();
    }
  });
});
