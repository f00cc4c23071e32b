/**
 * Network faults, injected with Toxiproxy while jobs flow. Each fault is its own test with its
 * own worker behind proxies of its own (test/support/networkRig.ts), and the tests run side by
 * side, so that the tier pays for the longest one, not the sum. The Firestore blackout is the
 * exception: it takes the store away from the stack's own API, sweeper and worker, through the
 * stack's proxies, to show the API answering 503 with Retry-After, never a 500 or a hang.
 *
 * Every test ends the same way: every job settled (succeeded with one whole output of the right
 * size, or failed with a reason and no output), none lost or doubled, no job seen running on a
 * lapsed lease past the sweeper's grace, and no job's progress or version going backwards.
 * Blackouts last FAULTS_BLACKOUT_SECONDS (10 here; the soak keeps 30).
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import sharp from "sharp";
import { describe, expect, inject, it } from "vitest";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { logContains } from "../../local/stack/processes.js";
import { toxiproxyClient } from "../../local/stack/toxiproxy.js";
import { callApi, recordCounts, stackClients } from "../support/faultKit.js";
import { waitForLogLine } from "../support/stackLogs.js";
import { BLACKOUT, settle, startNetworkRig, untilRunning, untilTilesInFlight, watchJobs, type JobSpec, type NetworkRig } from "../support/networkRig.js";

const stack = inject("faultStack");
const BLACKOUT_MS = stack.network.blackoutSeconds * 1000;
const SMALL: JobSpec = { operation: "upscale", params: { scale: 2 }, width: 64, height: 48, scale: 2 };
const COMIC: JobSpec = { operation: "comic", params: { strength: 0.7 }, width: 96, height: 96, scale: 1 };
/** Four 64-px tiles (with their 8-px overlap): a job that has tiles in flight for a few seconds. */
const TILED: JobSpec = { operation: "enhance", params: { strength: 0.3 }, width: 96, height: 96, scale: 1 };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `fault` on a rig of its own with jobs flowing, then checks every job and records the counts. */
async function underFault(name: string, fault: (rig: NetworkRig) => Promise<void>, env: Record<string, string> = {}): Promise<NetworkRig> {
  const rig = await startNetworkRig(stack, `${name}-${randomUUID().slice(0, 8)}`, env);
  const watch = watchJobs(rig.clients, () => [...rig.jobs.keys()]);
  try {
    await fault(rig);
    const settled = await settle(rig.clients, stack.names.resultsBucket, rig.jobs, 180_000);
    await watch.stop();
    recordCounts(stack, {
      suite: `network-${name}`,
      jobsSubmitted: rig.jobs.size,
      networkFaultsInjected: rig.faultsInjected(),
      lost: settled.verdicts.filter((verdict) => verdict.lost).length,
      doubled: settled.verdicts.filter((verdict) => verdict.doubled).length,
    });
    expect(rig.faultsInjected()).toBeGreaterThan(0);
    expect(settled.verdicts.filter((verdict) => verdict.lost || verdict.doubled).map((verdict) => [verdict.jobId, verdict.terminal, verdict.outputs])).toEqual([]);
    expect(settled.wrong).toEqual([]);
    expect(watch.lapsed).toEqual([]);
    expect(watch.backwards).toEqual([]);
    return rig;
  } finally {
    await watch.stop();
    await rig.close();
  }
}

describe.concurrent("network faults while jobs flow", () => {
  it("latency of 500 ms ± 250 ms on every call of the worker: all jobs succeed", async () => {
    await underFault("latency", async (rig) => {
      const heal = await Promise.all(
        Object.values(rig.proxies).map((proxy) => rig.inject(proxy, [{ type: "latency", attributes: { latency: 500, jitter: 250 } }])),
      );
      await rig.submit(3, SMALL);
      await rig.submit(1, COMIC);
      const settled = await settle(rig.clients, stack.names.resultsBucket, rig.jobs, 120_000);
      await Promise.all(heal.map((undo) => undo()));
      // Slow is not failed: no deadline the worker keeps is within reach of 0.5 s a call.
      expect([...settled.states.values()].map((job) => job?.status)).toEqual(Array(4).fill("succeeded"));
    });
  });

  it("bandwidth of 16 KB/s to storage and 256 KB/s to Triton: all jobs succeed, outputs whole", async () => {
    await underFault("bandwidth", async (rig) => {
      const heal = [
        await rig.inject(rig.proxies.storage, [{ type: "bandwidth", attributes: { rate: 16 } }, { type: "bandwidth", stream: "upstream", attributes: { rate: 16 } }]),
        await rig.inject(rig.proxies.triton, [{ type: "bandwidth", attributes: { rate: 256 } }, { type: "bandwidth", stream: "upstream", attributes: { rate: 256 } }]),
      ];
      await rig.submit(4, SMALL);
      await settle(rig.clients, stack.names.resultsBucket, rig.jobs, 120_000);
      await Promise.all(heal.map((undo) => undo()));
    });
  });

  it("reset_peer on Triton's connections mid-stream: tiles are retried, every job ends once", async () => {
    await underFault("reset-peer", async (rig) => {
      const ids = await rig.submit(2, TILED);
      expect(await untilTilesInFlight(rig.clients, ids, 150_000)).toBe(true);
      const heal = await rig.inject(rig.proxies.triton, [{ type: "reset_peer", attributes: { timeout: 300 } }]);
      await sleep(4_000);
      await heal();
    });
  });

  it("limit_data cuts the output uploads halfway: no half-written object, the upload is made again", async () => {
    await underFault("limit-data", async (rig) => {
      // An upscaled 64×48 PNG is tens of kilobytes; each connection is cut after 8 KB sent.
      const heal = await rig.inject(rig.proxies.storage, [{ type: "limit_data", stream: "upstream", attributes: { bytes: 8_000 } }]);
      const ids = await rig.submit(3, SMALL);
      expect(await untilRunning(rig.clients, ids, 60_000)).toBe(true);
      await sleep(6_000);
      await heal();
    });
  });

  it(`Triton blacked out for ${stack.network.blackoutSeconds} s with tiles in flight: held, then every job succeeds`, async () => {
    const rig = await underFault("triton-blackout", async (rig) => {
      const ids = await rig.submit(2, TILED);
      expect(await untilTilesInFlight(rig.clients, ids, 150_000)).toBe(true);
      const heal = await rig.inject(rig.proxies.triton, BLACKOUT);
      await sleep(BLACKOUT_MS);
      await heal();
    });
    expect(await logContains(rig.worker.logFile, "Triton is not ready; holding new jobs until it is")).toBe(true);
  });

  it("Pub/Sub stalled: pulls and acks hang, the worker pulls again on a new connection, and every job ends exactly once", async () => {
    // The stall drops what is sent, so the worker's streaming pull is left on a silent
    // connection that gRPC's keepalive (the client's 5 minutes) would find only much later. The
    // worker's pull check (PULL_CHECK_SECONDS, 3 here) finds it, and pulls again on a new
    // connection once one answers. What the emulator had sent on the old connection it hands out
    // again when the message's ack deadline passes, or, as seen for some, not at all: those jobs
    // end when the sweeper publishes them again (QUEUED_REPUBLISH_SECONDS), to the stack's topic.
    const afterReconnect: string[] = [];
    const rig = await underFault("pubsub-stall", async (rig) => {
      await rig.submit(2, SMALL);
      const heal = await rig.inject(rig.proxies.pubsub, BLACKOUT);
      // Published while the worker's pulls hang (the test's own client is not behind the proxy).
      await rig.submit(2, SMALL);
      await sleep(BLACKOUT_MS);
      await heal();
      // Without the check there is no new pull: this waits in vain, and the jobs published from
      // here on would be run by the stack's worker after the sweeper's republish.
      await waitForLogLine(rig.worker.logFile, (line) => line.message === "pulling jobs again on a new connection" && line.subscription === rig.subscriptionName, 30_000);
      afterReconnect.push(...(await rig.submit(2, SMALL)));
    });
    for (const jobId of afterReconnect) expect(await logContains(rig.worker.logFile, `"edit started","jobId":"${jobId}"`)).toBe(true);
  });

  it(`Firestore blacked out for ${stack.network.blackoutSeconds} s under the API and the stack's worker: 503 with Retry-After, then every job ends`, async () => {
    const clients = stackClients(stack);
    const toxiproxy = toxiproxyClient(stack.network.toxiproxyUrl);
    const token = await emulatorIdToken(stack.emulatorEnv.FIREBASE_AUTH_EMULATOR_HOST!, `blackout-${randomUUID()}`);
    const photo = await sharp(join(await ensurePhotos(), "chelsea.png")).resize(48, 40).jpeg().toBuffer();
    const create = (key: string) =>
      callApi<{ jobId: string }>(stack, token, "POST", "/v1/edits?operation=upscale&params.scale=2&cache=false", {
        body: photo,
        headers: { "content-type": "image/jpeg", "idempotency-key": key },
      });
    /** As a client does: a 503 is tried again (same key) after its Retry-After, up to `tries` times. */
    const createRetrying = async (key: string, tries: number) => {
      let answer = await create(key);
      for (let tried = 1; answer.status === 503 && tried < tries; tried += 1) {
        await sleep(Number(answer.headers.get("retry-after") ?? "1") * 1000);
        answer = await create(key);
      }
      return answer;
    };
    const jobs = new Map<string, JobSpec>();
    const spec: JobSpec = { ...SMALL, width: 48, height: 40 };
    const watch = watchJobs(clients, () => [...jobs.keys()]);
    let faults = 0;
    const toxics: string[] = [];
    try {
      for (let index = 0; index < 4; index += 1) {
        // On a busy machine the store may miss its deadline before any fault: the client retries.
        const created = await createRetrying(randomUUID(), 5);
        expect(created.status).toBe(202);
        jobs.set(created.body.jobId, spec);
      }
      expect(await untilRunning(clients, [...jobs.keys()], 60_000)).toBe(true);
      toxics.push(...(await Promise.all(BLACKOUT.map((toxic) => toxiproxy.addToxic(stack.network.proxies.firestore, toxic)))));
      faults += 1;
      const downAt = Date.now();
      // While the store is away: a create and a read are answered 503 with Retry-After, within
      // the store's deadline (and some slack for a loaded machine), never a 500 or a hang.
      const key = randomUUID();
      const began = Date.now();
      const during = await create(key);
      const answeredIn = Date.now() - began;
      const read = await callApi(stack, token, "GET", `/v1/edits/${[...jobs.keys()][0]}`);
      expect([during.status, read.status]).toEqual([503, 503]);
      expect(Number(during.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(answeredIn).toBeLessThan(stack.network.storeDeadlineMs * 3 + 2_000);
      await sleep(Math.max(0, BLACKOUT_MS - (Date.now() - downAt)));
      await Promise.all(toxics.splice(0).map((toxic) => toxiproxy.removeToxic(stack.network.proxies.firestore, toxic)));
      // The client retries with the same key once the store is back: one job, not two.
      const retried = await createRetrying(key, 20);
      expect(retried.status).toBe(202);
      jobs.set(retried.body.jobId, spec);
      const settled = await settle(clients, stack.names.resultsBucket, jobs, 180_000);
      await watch.stop();
      recordCounts(stack, {
        suite: "network-firestore-blackout",
        jobsSubmitted: jobs.size,
        networkFaultsInjected: faults,
        lost: settled.verdicts.filter((verdict) => verdict.lost).length,
        doubled: settled.verdicts.filter((verdict) => verdict.doubled).length,
      });
      expect(settled.verdicts.filter((verdict) => verdict.lost || verdict.doubled).map((verdict) => verdict.jobId)).toEqual([]);
      expect(settled.wrong).toEqual([]);
      expect(watch.lapsed).toEqual([]);
      expect(watch.backwards).toEqual([]);
    } finally {
      await watch.stop();
      // Only this test's toxics: the other tests' rigs run on beside it.
      await Promise.all(toxics.map((toxic) => toxiproxy.removeToxic(stack.network.proxies.firestore, toxic).catch(() => {})));
      await Promise.all([clients.firestore.terminate(), clients.pubsub.close()]);
    }
  });
});
