/**
 * A rig for one network fault of the faults tier: a worker process of its own whose every call
 * (Firestore, Pub/Sub, Cloud Storage, Triton) goes through Toxiproxy proxies of its own, on a job
 * topic of its own, so that the toxics of one fault reach no other suite's worker. Jobs are
 * recorded and published by the test's direct clients (no proxy), and a watcher reads their
 * projections all along: no job may run on a lapsed lease for longer than the sweeper needs to
 * notice, and no job's progress or version may go backwards. At the end every job is checked:
 * exactly one end, a success has one whole output (it decodes, at the expected size), a failure
 * has none and says why.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import sharp from "sharp";
import { createPubsubJobQueue } from "../../adapters/pubsub/pubsubJobQueue.js";
import { createGcsImageStore } from "../../adapters/storage/gcsImageStore.js";
import { handleCommand } from "../../events/handleCommand.js";
import { isTerminal, type JobState } from "../../events/jobState.js";
import type { Operation } from "../../events/operations.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { createStackProxies, type StackProxies } from "../../local/stack/localStack.js";
import type { RunningProcess } from "../../local/stack/processes.js";
import { toxiproxyClient, type Toxiproxy, type ToxicSpec } from "../../local/stack/toxiproxy.js";
import { checkOnce, privateInputsBucket, stackClients, startWorkerProcess, waitForEnd, type OnceVerdict } from "./faultKit.js";
import type { FaultStack } from "./faultsSetup.js";

export interface JobSpec {
  operation: Operation;
  params: Record<string, number | string>;
  width: number;
  height: number;
  /** Output side per input side. */
  scale: number;
}

/** Both directions held: nothing gets through and nothing is answered, until the toxics go. */
export const BLACKOUT: ToxicSpec[] = [
  { type: "timeout", attributes: { timeout: 0 } },
  { type: "timeout", stream: "upstream", attributes: { timeout: 0 } },
];

/**
 * How long a running job's lease may have lapsed before someone must have moved it: the sweeper
 * runs every 2 s, but while the store is blacked out neither the worker's renewal nor the sweeper
 * can write, and on a starved machine (seen: 8 s of grace flagged jobs under three stacks on two
 * cores) the sweeper's own calls lag. A lease lapsed for longer than this is a ghost.
 */
const LAPSED_LEASE_GRACE_MS = 30_000;

export interface Watch {
  /** Running jobs seen with a lease lapsed for longer than the grace. */
  lapsed: string[];
  /** Jobs seen going back: a lower version, or less progress in the same attempt. */
  backwards: string[];
  stop(): Promise<void>;
}

/** Reads the jobs' projections every 250 ms until stopped. */
export function watchJobs(clients: ReturnType<typeof stackClients>, jobIds: () => readonly string[]): Watch {
  const seen = new Map<string, { version: number; attempts: number; tilesDone: number }>();
  const lapsed = new Set<string>();
  const backwards = new Set<string>();
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const ids = jobIds();
      for (let start = 0; start < ids.length; start += 100) {
        const snapshots = await clients.firestore.getAll(...ids.slice(start, start + 100).map((jobId) => clients.firestore.doc(`jobs/${jobId}`)));
        const now = Date.now();
        for (const snapshot of snapshots) {
          if (!snapshot.exists) continue;
          const job = snapshot.data() as JobState;
          if (job.status === "running" && job.leaseExpiresAt !== undefined && Date.parse(job.leaseExpiresAt) + LAPSED_LEASE_GRACE_MS < now) lapsed.add(job.jobId);
          const before = seen.get(job.jobId);
          const tilesDone = job.progress?.tilesDone ?? 0;
          if (before && (job.version < before.version || (job.attempts === before.attempts && job.status === "running" && tilesDone < before.tilesDone))) {
            backwards.add(job.jobId);
          }
          seen.set(job.jobId, { version: job.version, attempts: job.attempts, tilesDone });
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  })();
  return {
    get lapsed() {
      return [...lapsed];
    },
    get backwards() {
      return [...backwards];
    },
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

export interface Settled {
  states: Map<string, JobState | undefined>;
  verdicts: OnceVerdict[];
  /** Jobs whose end is not one of: succeeded with one whole output; failed with a reason and no output. */
  wrong: Array<[string, string]>;
}

/** Waits for every job to end, then checks each one's log and output. */
export async function settle(
  clients: ReturnType<typeof stackClients>,
  resultsBucket: string,
  jobs: ReadonlyMap<string, JobSpec>,
  ms: number,
): Promise<Settled> {
  const ids = [...jobs.keys()];
  const states = await waitForEnd(clients.firestore, ids, ms);
  const verdicts = await Promise.all(ids.map((jobId) => checkOnce(clients, resultsBucket, jobId)));
  const wrong: Array<[string, string]> = [];
  for (const verdict of verdicts) {
    const state = states.get(verdict.jobId);
    const spec = jobs.get(verdict.jobId) as JobSpec;
    if (!state || !isTerminal(state.status)) {
      wrong.push([verdict.jobId, `not settled: ${state?.status}`]);
    } else if (state.status === "succeeded") {
      if (verdict.outputs.length !== 1) {
        wrong.push([verdict.jobId, `succeeded with outputs ${JSON.stringify(verdict.outputs)}`]);
        continue;
      }
      const [bytes] = await clients.storage.bucket(resultsBucket).file(verdict.outputs[0] as string).download();
      const decoded = await sharp(bytes).raw().toBuffer({ resolveWithObject: true }).catch((error: Error) => error);
      if (decoded instanceof Error) wrong.push([verdict.jobId, `output does not decode: ${decoded.message}`]);
      else if (decoded.info.width !== spec.width * spec.scale || decoded.info.height !== spec.height * spec.scale) {
        wrong.push([verdict.jobId, `output is ${decoded.info.width}×${decoded.info.height}`]);
      }
    } else if (state.status === "failed") {
      if (verdict.outputs.length > 0) wrong.push([verdict.jobId, `failed with output ${verdict.outputs.join(", ")}`]);
      if (!state.error?.message) wrong.push([verdict.jobId, "failed without a reason"]);
    } else {
      wrong.push([verdict.jobId, `ended ${state.status}`]);
    }
  }
  return { states, verdicts, wrong };
}

export interface NetworkRig {
  proxies: StackProxies["proxies"];
  toxiproxy: Toxiproxy;
  worker: RunningProcess;
  /** The subscription the rig's worker pulls the rig's jobs from. */
  subscriptionName: string;
  clients: ReturnType<typeof stackClients>;
  jobs: Map<string, JobSpec>;
  /** Records, uploads and publishes `count` jobs of `spec` (straight to the emulators). */
  submit(count: number, spec: JobSpec): Promise<string[]>;
  /** Adds the toxics to a proxy; the returned function removes them. Counts one fault. */
  inject(proxy: string, toxics: readonly ToxicSpec[]): Promise<() => Promise<void>>;
  faultsInjected(): number;
  close(): Promise<void>;
}

/** Starts the rig: proxies `<name>-*`, a topic and subscription, and a worker on them. */
export async function startNetworkRig(stack: FaultStack, name: string, workerEnv: Record<string, string> = {}): Promise<NetworkRig> {
  const clients = stackClients(stack);
  const toxiproxy = toxiproxyClient(stack.network.toxiproxyUrl);
  const proxied = await createStackProxies(toxiproxy, name, stack.network.upstream);
  const topicName = `${name}-jobs`;
  const [topic] = await clients.pubsub.createTopic(topicName);
  await topic.createSubscription(`${topicName}-worker`, {
    ackDeadlineSeconds: 20,
    deadLetterPolicy: { deadLetterTopic: `projects/${stack.names.projectId}/topics/${stack.names.deadLetterTopic}`, maxDeliveryAttempts: 5 },
    retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 5 } },
  });
  const inputsBucket = await privateInputsBucket(clients);
  const worker = await startWorkerProcess(stack, `${name}-worker`, {
    ...proxied.env,
    JOBS_SUBSCRIPTION: `${topicName}-worker`,
    TRITON_TIMEOUT_MS: "20000",
    ...workerEnv,
  });
  const images = createGcsImageStore(clients.storage);
  const queue = createPubsubJobQueue(clients.pubsub, topicName);
  const deps = { store: clients.store, clock: { now: () => new Date() } };
  const photo = join(await ensurePhotos(), "astronaut.png");
  const jobs = new Map<string, JobSpec>();
  let faults = 0;
  return {
    proxies: proxied.proxies,
    toxiproxy,
    worker,
    subscriptionName: `${topicName}-worker`,
    clients,
    jobs,
    async submit(count, spec) {
      const bytes = await sharp(photo).resize(spec.width, spec.height).jpeg().toBuffer();
      return Promise.all(
        Array.from({ length: count }, async () => {
          const jobId = randomUUID();
          const input = { bucket: inputsBucket, object: `uploads/${jobId}`, contentType: "image/jpeg" };
          await handleCommand(deps, jobId, { type: "RequestEdit", jobId, ownerId: `${name}-owner`, operation: spec.operation, params: spec.params, flow: "direct", input });
          await images.write(input, bytes, "image/jpeg");
          await handleCommand(deps, jobId, { type: "RecordUpload", ...input, sizeBytes: bytes.length });
          jobs.set(jobId, spec);
          await queue.publish({ jobId, operation: spec.operation });
          return jobId;
        }),
      );
    },
    async inject(proxy, toxics) {
      const names = await Promise.all(toxics.map((toxic) => toxiproxy.addToxic(proxy, toxic)));
      faults += 1;
      return async () => {
        await Promise.all(names.map((toxic) => toxiproxy.removeToxic(proxy, toxic)));
      };
    },
    faultsInjected: () => faults,
    async close() {
      await worker.stop();
      await Promise.all(Object.values(proxied.proxies).map((proxy) => toxiproxy.deleteProxy(proxy).catch(() => {})));
      await Promise.all([clients.firestore.terminate(), clients.pubsub.close()]);
    },
  };
}

/**
 * Resolves once any of the jobs has tiles in flight: running with progress recorded, or running
 * for 1.5 s (its input read, its first tiles sent: on a starved CPU the first tile may take
 * longer than that to come back), or false after `ms`.
 */
export async function untilTilesInFlight(clients: ReturnType<typeof stackClients>, jobIds: readonly string[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  const runningSince = new Map<string, number>();
  while (Date.now() < deadline) {
    const states = await waitForEnd(clients.firestore, jobIds, 1);
    for (const [jobId, job] of states) {
      if (job?.status !== "running") {
        runningSince.delete(jobId);
        continue;
      }
      if (!runningSince.has(jobId)) runningSince.set(jobId, Date.now());
      if ((job.progress?.tilesDone ?? 0) > 0 || Date.now() - (runningSince.get(jobId) as number) >= 1_500) return true;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

/** Resolves once any of the jobs is running, or after `ms`. */
export async function untilRunning(clients: ReturnType<typeof stackClients>, jobIds: readonly string[], ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const states = await waitForEnd(clients.firestore, jobIds, 1);
    if ([...states.values()].some((job) => job?.status === "running")) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}
