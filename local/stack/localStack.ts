/**
 * The whole system on one machine, from real parts: the official Firestore, Pub/Sub and
 * Firebase Auth emulators, fake-gcs-server for Cloud Storage, a real Triton server on the CPU, both functions
 * under the Functions Framework, local stand-ins for Eventarc (upload notifications and the
 * dead-letter topic's trigger) and for Cloud Scheduler (the sweeper's timer), and one worker. `npm start` and the
 * end-to-end tests bring it up through `startLocalStack`.
 */
import { join } from "node:path";
import { Firestore } from "@google-cloud/firestore";
import { PubSub } from "@google-cloud/pubsub";
import { Storage } from "@google-cloud/storage";
import { startEventarcBridge, startFirestoreTriggerBridge, startPubsubTriggerBridge, type EventarcBridge } from "./eventarcBridge.js";
import { ensureEmulators, startAuthEmulator, startFirestoreEmulator, startPubsubEmulator, startStorageEmulator, warmFirestore } from "./emulators.js";
import { EMULATOR_API_KEY } from "../auth/emulatorUsers.js";
import { ensureUrlSignerKey } from "./urlSignerKey.js";
import { LOCAL_DIR, REPO_ROOT } from "./paths.js";
import { freePort, logContains, startProcess, type RunningProcess } from "./processes.js";
import { ensureToxiproxy, startToxiproxy, type RunningToxiproxy, type Toxiproxy } from "./toxiproxy.js";
import { ensureTriton, startTriton } from "./triton.js";
import { ensureWebBuild, startWebServer } from "./webServer.js";

export interface StackPorts {
  api: number;
  uploadFunction: number;
  deadLetterFunction: number;
  sweepFunction: number;
  /** The `webhookEvents` function (the job events' Firestore trigger). */
  webhookFunction: number;
  firestore: number;
  pubsub: number;
  /** The Firebase Auth emulator. */
  auth: number;
  storage: number;
  tritonGrpc: number;
  tritonHttp: number;
  tritonMetrics: number;
  /** The web app. */
  web: number;
  /** The first worker's Prometheus /metrics. */
  workerMetrics: number;
  /** The HTTP API function's Prometheus /metrics. */
  apiMetrics: number;
}

export interface StackNames {
  projectId: string;
  uploadsBucket: string;
  resultsBucket: string;
  jobsTopic: string;
  jobsSubscription: string;
  /** Batch jobs' topic and subscription, which workers drain only while no interactive job waits. */
  jobsBatchTopic: string;
  jobsBatchSubscription: string;
  deadLetterTopic: string;
  deadLetterSubscription: string;
  /** The dead-letter topic's subscription that feeds the `deadLetter` function (Eventarc's, in the cloud). */
  deadLetterTriggerSubscription: string;
  notificationsTopic: string;
  notificationsSubscription: string;
}

export interface StackOptions {
  /** Ports to use; any left out is picked free. */
  ports?: Partial<StackPorts>;
  /** Where every part's log goes (default .local/logs/stack). */
  logDir?: string;
  /** Extra environment for the worker (limits, tile size). */
  workerEnv?: Record<string, string>;
  /** Extra environment for the functions. */
  functionsEnv?: Record<string, string>;
  /** How often the sweeper runs, Cloud Scheduler's part (default 10 s). */
  sweepIntervalMs?: number;
  /** Deliveries of a job message before it is dead-lettered (default 5, Pub/Sub's least). */
  maxDeliveryAttempts?: number;
  /**
   * Load infra/firestore.rules into the Firestore emulator, so that apps' listeners are checked
   * as in production (`npm start` does). Off for the e2e tier, whose listeners use the admin
   * client and whose first-snapshot timing the rules slow down.
   */
  firestoreRules?: boolean;
  /**
   * Environment for the functions and the worker both: where traces go (TRACES_EXPORTER,
   * OTLP_ENDPOINT).
   */
  telemetryEnv?: Record<string, string>;
  /**
   * Put Toxiproxy between the functions and the worker and each thing they call (Firestore,
   * Pub/Sub, Cloud Storage, Triton's gRPC), so that network faults can be injected (the faults
   * tier and the soak). Clients made from `emulatorEnv` still reach the servers directly.
   */
  networkFaults?: boolean;
  /** Start no worker; tests that drive their own workers set this. */
  withoutWorker?: boolean;
  /** The model repository Triton serves (default triton/model_repository); the worker-ceiling benchmark serves its own. */
  modelRepository?: string;
  log?: (line: string) => void;
}

export interface LocalStack {
  ports: StackPorts;
  names: StackNames;
  apiUrl: string;
  /** The web app, served from its Vite build. */
  webUrl: string;
  /** The worker-1's, the API's and Triton's Prometheus endpoints. */
  metricsUrls: { worker: string; api: string; triton: string };
  /** Environment that points Google's client libraries at the emulators. */
  emulatorEnv: EmulatorEnv;
  /** Environment the worker runs with; tests start more workers with it. */
  workerEnv: Record<string, string>;
  /** Toxiproxy and the stack's proxies, when `networkFaults` is set. */
  faultProxies?: StackProxies;
  /** Starts one more worker process. */
  startWorker(name: string, env?: Record<string, string>): Promise<RunningProcess>;
  logDir: string;
  stop(): Promise<void>;
}

export interface EmulatorEnv {
  FIRESTORE_EMULATOR_HOST: string;
  PUBSUB_EMULATOR_HOST: string;
  STORAGE_API_ENDPOINT: string;
  /** Read by firebase-admin and by the Firestore emulator: the emulator's users are the ones signed in. */
  FIREBASE_AUTH_EMULATOR_HOST: string;
  METADATA_SERVER_DETECTION: string;
  GCLOUD_PROJECT: string;
}

/** The proxies of one client (the stack's, or a test's own worker) and the environment that points it at them. */
export interface StackProxies {
  toxiproxy: Toxiproxy;
  /** Proxy names, for toxics. */
  proxies: { firestore: string; pubsub: string; storage: string; triton: string };
  /** FIRESTORE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST, STORAGE_API_ENDPOINT and TRITON_GRPC_URL through the proxies. */
  env: Record<string, string>;
}

/**
 * Creates one proxy per server a worker or function calls, named `<prefix>-<server>`, and the
 * environment that sends a process's calls through them.
 */
export async function createStackProxies(
  toxiproxy: Toxiproxy,
  prefix: string,
  upstream: { firestore: string; pubsub: string; storage: string; triton: string },
): Promise<StackProxies> {
  const make = (server: keyof typeof upstream) => toxiproxy.createProxy(`${prefix}-${server}`, upstream[server]);
  const [firestore, pubsub, storage, triton] = await Promise.all([make("firestore"), make("pubsub"), make("storage"), make("triton")]);
  return {
    toxiproxy,
    proxies: { firestore: firestore.name, pubsub: pubsub.name, storage: storage.name, triton: triton.name },
    env: {
      FIRESTORE_EMULATOR_HOST: firestore.listen,
      PUBSUB_EMULATOR_HOST: pubsub.listen,
      STORAGE_API_ENDPOINT: `http://${storage.listen}`,
      TRITON_GRPC_URL: triton.listen,
    },
  };
}

export const DEFAULT_NAMES: StackNames = {
  projectId: "image-edit-local",
  uploadsBucket: "image-edit-uploads",
  resultsBucket: "image-edit-results",
  jobsTopic: "edit-jobs",
  jobsSubscription: "edit-jobs-worker",
  jobsBatchTopic: "edit-jobs-batch",
  jobsBatchSubscription: "edit-jobs-batch-worker",
  deadLetterTopic: "edit-jobs-dead-letter",
  deadLetterSubscription: "edit-jobs-dead-letter-handler",
  deadLetterTriggerSubscription: "edit-jobs-dead-letter-eventarc",
  notificationsTopic: "uploads-finalized",
  notificationsSubscription: "uploads-finalized-eventarc",
};

/**
 * Everything the stack installs on first run: Triton's venv and models, fake-gcs-server, the web
 * app's build, the URL signer's key, and Toxiproxy when the stack puts it between its parts.
 */
export async function prepareLocalStack(log: (line: string) => void = console.log, networkFaults = false): Promise<void> {
  await Promise.all([ensureEmulators(log), ensureTriton(), ensureWebBuild(log), ...(networkFaults ? [ensureToxiproxy(log)] : [])]);
  ensureUrlSignerKey();
}

export async function startLocalStack(options: StackOptions = {}): Promise<LocalStack> {
  const log = options.log ?? console.log;
  const names = DEFAULT_NAMES;
  const logDir = options.logDir ?? join(LOCAL_DIR, "logs", "stack");
  await prepareLocalStack(log, options.networkFaults ?? false);
  const ports = await pickPorts(options.ports ?? {});
  const started: Array<{ stop(): Promise<void> }> = [];
  const stopAll = async () => {
    for (const part of started.reverse()) await part.stop().catch(() => {});
  };

  try {
    const emulatorEnv: EmulatorEnv = {
      FIRESTORE_EMULATOR_HOST: `127.0.0.1:${ports.firestore}`,
      PUBSUB_EMULATOR_HOST: `127.0.0.1:${ports.pubsub}`,
      STORAGE_API_ENDPOINT: `http://127.0.0.1:${ports.storage}`,
      FIREBASE_AUTH_EMULATOR_HOST: `127.0.0.1:${ports.auth}`,
      METADATA_SERVER_DETECTION: "none",
      GCLOUD_PROJECT: names.projectId,
    };
    // Triton loads its models while the emulators start and the messaging and buckets are made:
    // it is the longest part, and nothing before the worker needs it.
    log("starting Triton, and the Firestore, Pub/Sub and Auth emulators");
    const triton = startTriton({
      grpcPort: ports.tritonGrpc,
      httpPort: ports.tritonHttp,
      metricsPort: ports.tritonMetrics,
      logFile: join(logDir, "triton.log"),
      ...(options.modelRepository === undefined ? {} : { modelRepository: options.modelRepository }),
      extraArgs: tritonTraceArgs(options.telemetryEnv),
    });
    // Stopped last, and also when a later part fails to start; a failed start of its own is
    // reported where it is awaited, below.
    const tritonIfStarted = triton.then((running) => running, () => undefined);
    started.push({ stop: async () => (await tritonIfStarted)?.stop() });
    await startTogether(started, [
      startFirestoreEmulator(
        ports.firestore,
        logDir,
        options.firestoreRules ? join(REPO_ROOT, "infra", "firestore.rules") : undefined,
        emulatorEnv.FIREBASE_AUTH_EMULATOR_HOST,
      ),
      startAuthEmulator(ports.auth, logDir, names.projectId),
      startPubsubEmulator(ports.pubsub, logDir),
    ]);
    if (options.firestoreRules) await warmFirestore(emulatorEnv.FIRESTORE_EMULATOR_HOST, names.projectId);

    // The clients in this process talk to the emulators too.
    Object.assign(process.env, { PUBSUB_EMULATOR_HOST: emulatorEnv.PUBSUB_EMULATOR_HOST, METADATA_SERVER_DETECTION: "none" });
    const pubsub = new PubSub({ projectId: names.projectId });
    started.push({ stop: () => pubsub.close() });
    await createMessaging(pubsub, names, options.maxDeliveryAttempts ?? 5);

    // Toxiproxy comes up before the storage emulator: signed URLs name the proxy's address, and the
    // emulator routes their path-style requests only for the host it is told is its own.
    let faultProxies: StackProxies | undefined;
    if (options.networkFaults) {
      log("starting Toxiproxy between the functions and the worker and what they call");
      const toxiproxy: RunningToxiproxy = await startToxiproxy(logDir);
      started.push(toxiproxy);
      faultProxies = await createStackProxies(toxiproxy.client, "stack", {
        firestore: emulatorEnv.FIRESTORE_EMULATOR_HOST,
        pubsub: emulatorEnv.PUBSUB_EMULATOR_HOST,
        storage: `127.0.0.1:${ports.storage}`,
        triton: `127.0.0.1:${ports.tritonGrpc}`,
      });
    }
    const proxiedEnv = faultProxies?.env ?? {};

    log("starting the Cloud Storage emulator");
    const storageEmulator = await startStorageEmulator({
      port: ports.storage,
      logDir,
      projectId: names.projectId,
      pubsubHost: emulatorEnv.PUBSUB_EMULATOR_HOST,
      notifyTopic: names.notificationsTopic,
      notifyBucket: names.uploadsBucket,
      ...(faultProxies === undefined ? {} : { publicHost: (proxiedEnv.STORAGE_API_ENDPOINT as string).replace("http://", "") }),
    });
    started.push(storageEmulator);
    const storage = new Storage({ projectId: names.projectId, apiEndpoint: emulatorEnv.STORAGE_API_ENDPOINT });
    for (const bucket of [names.uploadsBucket, names.resultsBucket]) {
      const [exists] = await storage.bucket(bucket).exists();
      if (!exists) await storage.createBucket(bucket);
    }

    const functionsEnv = {
      ...process.env,
      ...emulatorEnv,
      STORAGE_SIGNER_KEY_FILE: ensureUrlSignerKey(),
      GCP_PROJECT: names.projectId,
      UPLOADS_BUCKET: names.uploadsBucket,
      RESULTS_BUCKET: names.resultsBucket,
      JOBS_TOPIC: names.jobsTopic,
      JOBS_BATCH_TOPIC: names.jobsBatchTopic,
      // As deployed: no stack traces in the error pages the Functions Framework writes itself.
      NODE_ENV: "production",
      // The web app's origin (outside the local stack the API allows none unless told).
      CORS_ORIGINS: `http://127.0.0.1:${ports.web},http://localhost:${ports.web}`,
      METRICS_HOST: "127.0.0.1",
      // Webhooks may go to receivers on this machine (http://127.0.0.1), and retry within seconds.
      WEBHOOK_ALLOW_LOOPBACK_HTTP: "true",
      WEBHOOK_RETRY_BASE_SECONDS: "1",
      WEBHOOK_RETRY_MAX_SECONDS: "10",
      WEBHOOK_TIMEOUT_SECONDS: "5",
      ...options.telemetryEnv,
      ...proxiedEnv,
      ...options.functionsEnv,
    };
    const backgroundLog = join(logDir, "function-background.log");
    const workerEnv: Record<string, string> = {
      ...emulatorEnv,
      GCP_PROJECT: names.projectId,
      JOBS_SUBSCRIPTION: names.jobsSubscription,
      JOBS_BATCH_SUBSCRIPTION: names.jobsBatchSubscription,
      RESULTS_BUCKET: names.resultsBucket,
      TRITON_GRPC_URL: `127.0.0.1:${ports.tritonGrpc}`,
      METRICS_HOST: "127.0.0.1",
      ...options.telemetryEnv,
      ...proxiedEnv,
      ...options.workerEnv,
    };
    const launchWorker = async (name: string, env: Record<string, string> = {}) => {
      // worker-1 serves /metrics on its fixed port; any further worker on a free one.
      const metricsPort = name === "worker-1" ? ports.workerMetrics : await freePort();
      const worker = await startProcess({
        name,
        command: process.execPath,
        args: ["--import", "tsx", join(REPO_ROOT, "workers", "main.ts")],
        env: { ...process.env, ...workerEnv, WORKER_ID: name, METRICS_PORT: String(metricsPort), ...env },
        cwd: REPO_ROOT,
        logFile: join(logDir, `${name}.log`),
        ready: () => logContains(join(logDir, `${name}.log`), "worker pulling jobs"),
        timeoutMs: 120_000,
      });
      return worker;
    };
    const startWorker = async (name: string, env: Record<string, string> = {}) => {
      const worker = await launchWorker(name, env);
      started.push(worker);
      return worker;
    };
    const web = startWebServer({
      port: ports.web,
      config: {
        apiUrl: `http://127.0.0.1:${ports.api}`,
        projectId: names.projectId,
        apiKey: EMULATOR_API_KEY,
        firestoreEmulatorHost: emulatorEnv.FIRESTORE_EMULATOR_HOST,
        authEmulatorUrl: `http://${emulatorEnv.FIREBASE_AUTH_EMULATOR_HOST}`,
      },
    });

    // The functions, the web server and the first worker (once Triton is ready) start side by
    // side: each waits on its own start-up, not on the others'.
    log(options.withoutWorker ? "starting the functions and the web app" : "starting the functions, the web app and a worker");
    await startTogether(started, [
      ...(
        [
          ["api", ports.api],
          ["uploadFinalized", ports.uploadFunction],
        ] as const
      ).map(([target, port]) =>
        startProcess({
          name: `function-${target}`,
          command: process.execPath,
          args: ["--import", "tsx", join(REPO_ROOT, "local", "stack", "functionsHost.ts"), target, String(port)],
          // The API serves its metrics on a port of its own; the upload trigger keeps none.
          env: target === "api" ? { METRICS_EXPORTER: "prometheus", METRICS_PORT: String(ports.apiMetrics), ...functionsEnv } : functionsEnv,
          cwd: REPO_ROOT,
          logFile: join(logDir, `function-${target}.log`),
          // Its own line, not just an open port: a stranger on the port must not pass for it.
          ready: () => logContains(join(logDir, `function-${target}.log`), `function ${target} listening on http://127.0.0.1:${port}/`),
          timeoutMs: 60_000,
        }),
      ),
      // The three background functions share one host process: each on its own port.
      startProcess({
        name: "function-background",
        command: process.execPath,
        args: [
          "--import",
          "tsx",
          join(REPO_ROOT, "local", "stack", "functionsHost.ts"),
          "deadLetter",
          String(ports.deadLetterFunction),
          "sweepJobs",
          String(ports.sweepFunction),
          "webhookEvents",
          String(ports.webhookFunction),
        ],
        env: functionsEnv,
        cwd: REPO_ROOT,
        logFile: backgroundLog,
        ready: async () =>
          (await logContains(backgroundLog, `function deadLetter listening on http://127.0.0.1:${ports.deadLetterFunction}/`)) &&
          (await logContains(backgroundLog, `function sweepJobs listening on http://127.0.0.1:${ports.sweepFunction}/`)) &&
          (await logContains(backgroundLog, `function webhookEvents listening on http://127.0.0.1:${ports.webhookFunction}/`)),
        timeoutMs: 60_000,
      }),
      web,
      ...(options.withoutWorker ? [] : [triton.then(() => launchWorker("worker-1"))]),
    ]);
    await triton;

    const bridge: EventarcBridge = startEventarcBridge({
      pubsub,
      subscription: names.notificationsSubscription,
      target: `http://127.0.0.1:${ports.uploadFunction}/`,
      projectId: names.projectId,
    });
    started.push(bridge);
    started.push(
      startPubsubTriggerBridge({
        pubsub,
        subscription: names.deadLetterTriggerSubscription,
        topic: names.deadLetterTopic,
        target: `http://127.0.0.1:${ports.deadLetterFunction}/`,
        projectId: names.projectId,
      }),
    );
    // The job events' Firestore trigger (Eventarc's, in the cloud), for webhooks.
    Object.assign(process.env, { FIRESTORE_EMULATOR_HOST: emulatorEnv.FIRESTORE_EMULATOR_HOST });
    const firestore = new Firestore({ projectId: names.projectId });
    started.push({ stop: () => firestore.terminate() });
    started.push(
      startFirestoreTriggerBridge({
        firestore,
        collectionGroup: "events",
        since: new Date(),
        target: `http://127.0.0.1:${ports.webhookFunction}/`,
        projectId: names.projectId,
      }),
    );
    started.push(startSweepTimer(`http://127.0.0.1:${ports.sweepFunction}/`, options.sweepIntervalMs ?? 10_000));

    return {
      ports,
      names,
      apiUrl: `http://127.0.0.1:${ports.api}`,
      webUrl: (await web).url,
      metricsUrls: {
        worker: `http://127.0.0.1:${ports.workerMetrics}/metrics`,
        api: `http://127.0.0.1:${ports.apiMetrics}/metrics`,
        triton: `http://127.0.0.1:${ports.tritonMetrics}/metrics`,
      },
      emulatorEnv,
      workerEnv,
      ...(faultProxies === undefined ? {} : { faultProxies }),
      startWorker,
      logDir,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/**
 * When the stack's processes send spans over OTLP, Triton's own OpenTelemetry tracing sends its
 * spans to the same place: each inference request continues the `traceparent` the worker puts in
 * the gRPC metadata, so Triton's spans join the job's trace.
 */
function tritonTraceArgs(telemetryEnv: Record<string, string> | undefined): string[] {
  const endpoint = telemetryEnv?.TRACES_EXPORTER === "otlp" ? telemetryEnv.OTLP_ENDPOINT : undefined;
  if (!endpoint) return [];
  return [
    "--trace-config=mode=opentelemetry",
    `--trace-config=opentelemetry,url=${endpoint}/v1/traces`,
    "--trace-config=opentelemetry,resource=service.name=triton",
    `--trace-config=opentelemetry,bsp_schedule_delay=${telemetryEnv?.TRACES_EXPORT_DELAY_MS ?? "2000"}`,
    "--trace-config=rate=1",
    "--trace-config=count=-1",
    "--trace-config=level=TIMESTAMPS",
  ];
}

/** Topics and subscriptions as infra/messaging.ts declares them, with local retry timings. */
async function createMessaging(pubsub: PubSub, names: StackNames, maxDeliveryAttempts: number): Promise<void> {
  const topic = async (name: string) => {
    const [exists] = await pubsub.topic(name).exists();
    if (!exists) await pubsub.createTopic(name);
  };
  const subscription = async (topicName: string, name: string, options: Parameters<PubSub["createSubscription"]>[2] = {}) => {
    const [exists] = await pubsub.subscription(name).exists();
    if (!exists) await pubsub.createSubscription(topicName, name, options);
  };
  await Promise.all([topic(names.jobsTopic), topic(names.jobsBatchTopic), topic(names.deadLetterTopic), topic(names.notificationsTopic)]);
  const workerSubscription = {
    ackDeadlineSeconds: 60,
    deadLetterPolicy: { deadLetterTopic: `projects/${names.projectId}/topics/${names.deadLetterTopic}`, maxDeliveryAttempts },
    // Short backoff locally, so that a handed-back job comes round again within seconds.
    retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 10 } },
  };
  // Batch jobs have their own topic and subscription, dead-lettered to the same topic (infra/messaging.ts).
  await subscription(names.jobsTopic, names.jobsSubscription, workerSubscription);
  await subscription(names.jobsBatchTopic, names.jobsBatchSubscription, workerSubscription);
  await subscription(names.deadLetterTopic, names.deadLetterSubscription);
  await subscription(names.deadLetterTopic, names.deadLetterTriggerSubscription, { ackDeadlineSeconds: 60 });
  await subscription(names.notificationsTopic, names.notificationsSubscription, { ackDeadlineSeconds: 60 });
}

/** The local stand-in for the Cloud Scheduler job: POSTs to the sweeper every `intervalMs`. */
function startSweepTimer(target: string, intervalMs: number): { stop(): Promise<void> } {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void fetch(target, { method: "POST", signal: AbortSignal.timeout(60_000) })
      .then((response) => response.arrayBuffer())
      .catch((error: Error) => console.error(`[sweep-timer] ${error.message}`))
      .finally(() => (running = false));
  }, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
    },
  };
}

/**
 * Starts parts side by side. Every part that came up is tracked for stopping, even when another
 * failed, so that a failed start leaves nothing running.
 */
async function startTogether(started: Array<{ stop(): Promise<void> }>, parts: Array<Promise<{ stop(): Promise<void> }>>): Promise<void> {
  const results = await Promise.allSettled(parts);
  for (const result of results) if (result.status === "fulfilled") started.push(result.value);
  const failed = results.find((result): result is PromiseRejectedResult => result.status === "rejected");
  if (failed) throw failed.reason;
}

async function pickPorts(given: Partial<StackPorts>): Promise<StackPorts> {
  const pick = async (port: number | undefined) => port ?? (await freePort());
  return {
    api: await pick(given.api),
    uploadFunction: await pick(given.uploadFunction),
    deadLetterFunction: await pick(given.deadLetterFunction),
    sweepFunction: await pick(given.sweepFunction),
    webhookFunction: await pick(given.webhookFunction),
    firestore: await pick(given.firestore),
    pubsub: await pick(given.pubsub),
    auth: await pick(given.auth),
    storage: await pick(given.storage),
    tritonGrpc: await pick(given.tritonGrpc),
    tritonHttp: await pick(given.tritonHttp),
    tritonMetrics: await pick(given.tritonMetrics),
    web: await pick(given.web),
    workerMetrics: await pick(given.workerMetrics),
    apiMetrics: await pick(given.apiMetrics),
  };
}
