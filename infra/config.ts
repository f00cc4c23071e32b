/**
 * Stack configuration, read once per program run. Every setting has its key, its default and its
 * validation here; no other infra file reads `pulumi.Config`. Set values with
 * `pulumi config set <key> <value>` (keys live in the `image-edit` namespace unless noted).
 */
import { fileURLToPath } from "node:url";

import * as pulumi from "@pulumi/pulumi";

export type GpuDriverVersion = "DEFAULT" | "LATEST";

export interface InfraConfig {
  /** The stack name (`dev`, `staging`, `prod`); it suffixes every resource name. */
  readonly stack: string;
  /** `gcp:project`. Every environment should have its own project; names stay unique anyway. */
  readonly project: string;
  /** `gcp:region`. Buckets, functions, Pub/Sub-adjacent services and the registry live here. */
  readonly region: string;
  /**
   * `clusterLocation`: a zone (zonal cluster: one free control plane, fine for dev) or the region
   * (regional control plane: survives a zone outage and upgrades without API downtime, for prod).
   */
  readonly clusterLocation: string;
  /**
   * `nodeZones`: zones for the node pools. T4s exist only in some zones of a region, so a regional
   * cluster must name zones that have them (`gcloud compute accelerator-types list`).
   */
  readonly nodeZones: readonly string[] | undefined;
  /** `cpuMachineType`: worker nodes. Decode/tile/stitch/encode with sharp is CPU- and memory-bound. */
  readonly cpuMachineType: string;
  /** `cpuSpot`: Spot VMs for the CPU pool. Workers are idempotent, so preemption costs time only. */
  readonly cpuSpot: boolean;
  /** `cpuMinNodes`: at least one node hosts KEDA, kube-dns and the metrics collectors. */
  readonly cpuMinNodes: number;
  /** `cpuMaxNodes`: ceiling for the CPU pool's autoscaler (total across zones). */
  readonly cpuMaxNodes: number;
  /**
   * `gpuMachineType`: T4s attach only to N1 machines. n1-standard-4 (4 vCPU, 15 GB) feeds one T4:
   * the Python backend's pre/post-processing is light, and the host needs room to stage models.
   */
  readonly gpuMachineType: string;
  /** `gpuAcceleratorType`: the GPU model; the cluster, taints and policies assume one per node. */
  readonly gpuAcceleratorType: string;
  /** `gpuSpot`: Spot T4s cost ~60-70% less but can vanish with 30 s notice; on for dev only. */
  readonly gpuSpot: boolean;
  /** `gpuMaxNodes`: one Triton replica per GPU node, so this is also Triton's replica ceiling. */
  readonly gpuMaxNodes: number;
  /**
   * `gpuDriverVersion`: GKE-managed driver install. LATEST, because recent Triton images are built
   * against recent CUDA; DEFAULT would rely on NGC's forward-compatibility layer on older drivers.
   */
  readonly gpuDriverVersion: GpuDriverVersion;
  /** `namespace`: the Kubernetes namespace of Triton and the workers. */
  readonly namespace: string;
  /**
   * `workerImage`: a worker image by digest (`<repo>/worker@sha256:<64 hex>`) to run instead of
   * building one. Unset (the default), `pulumi up` builds workers/Dockerfile with Cloud Build and
   * runs what it pushed, by digest. Set it to roll back to an image an earlier `up` built.
   */
  readonly workerImage: string | undefined;
  /** `workerMinReplicas`: 0 lets dev scale to nothing; prod keeps warm workers for latency. */
  readonly workerMinReplicas: number;
  /** `workerMaxReplicas`: ceiling for KEDA; bounded by what Triton can absorb, not by CPU. */
  readonly workerMaxReplicas: number;
  /** `workerMaxMessages`: WORKER_MAX_MESSAGES, Pub/Sub flow control (jobs in flight per pod). */
  readonly workerMaxMessages: number;
  /** `workerBacklogPerReplica`: KEDA target of undelivered messages per worker replica. */
  readonly workerBacklogPerReplica: number;
  /** `tritonTimeoutMs`: TRITON_TIMEOUT_MS, the deadline of one tile-batch call to Triton. */
  readonly tritonTimeoutMs: number;
  /**
   * `workerTerminationGraceSeconds`: on SIGTERM a worker stops pulling and finishes the tile batch
   * in flight (at most `tritonTimeoutMs`) plus stitching and upload. The grace period must cover
   * that, or a rollout kills a batch mid-way and the job redoes it. Validated to exceed the
   * Triton timeout by 30 s.
   */
  readonly workerTerminationGraceSeconds: number;
  /**
   * `tritonImageTag`: the NGC `nvcr.io/nvidia/tritonserver:<tag>-py3` release. `pulumi up` builds
   * that release plus onnxruntime-gpu (infra/triton.Dockerfile) with Cloud Build and runs it by digest.
   */
  readonly tritonImageTag: string;
  /** `tritonImage`: a Triton image by digest to run instead of building one (as `workerImage`). */
  readonly tritonImage: string | undefined;
  /**
   * `modelRepositoryDir`: the local model repository `pulumi up` uploads to the models bucket
   * (default: the repository's triton/model_repository, whose ONNX files `npm run models` writes).
   */
  readonly modelRepositoryDir: string;
  /**
   * `excludedModels`: model folders left out of the upload, e.g. `["remove_background"]` when that
   * edit is marked `available: false` (its ISNet weights are AGPL-3.0).
   */
  readonly excludedModels: readonly string[];
  /** `tritonMinReplicas`: 0 lets the GPU pool scale to zero when no job is queued. */
  readonly tritonMinReplicas: number;
  /** `tritonMaxReplicas`: at most `gpuMaxNodes`, since each replica takes a whole GPU. */
  readonly tritonMaxReplicas: number;
  /** `tritonQueueTargetMicros`: average queue time per request above which Triton scales out. */
  readonly tritonQueueTargetMicros: number;
  /** `tritonModelConfigName`: `--model-config-name`; selects `configs/<name>.pbtxt` (KIND_GPU). */
  readonly tritonModelConfigName: string;
  /**
   * `modelRevision`: free-form label stamped on Triton's pod template. Triton reads the repository
   * only at start, so bumping this after uploading a model version rolls the pods.
   */
  readonly modelRevision: string;
  /** `uploadsLifecycleDays`: uploads are inputs only; delete them after this many days. */
  readonly uploadsLifecycleDays: number;
  /** `resultsLifecycleDays`: results expire (users are told so); delete after this many days. */
  readonly resultsLifecycleDays: number;
  /** `corsOrigins`: web origins of the app: bucket CORS (signed PUT/GET) and the API's CORS_ORIGINS. */
  readonly corsOrigins: readonly string[];
  /**
   * `ackDeadlineSeconds`: how long Pub/Sub waits before redelivering. The client library extends
   * the deadline while a job runs, so this only bounds how fast a crashed worker's job comes back.
   */
  readonly ackDeadlineSeconds: number;
  /**
   * `maxDeliveryAttempts`: deliveries before a job is dead-lettered (Pub/Sub allows 5..100). The
   * workers get it as MAX_ATTEMPTS: on the last delivery a retryable failure becomes EditFailed
   * with a reason, and only a worker that dies on it leaves the job to the dead-letter topic.
   */
  readonly maxDeliveryAttempts: number;
  /** `messageRetentionSeconds`: how long an unacked job waits in the subscription. */
  readonly messageRetentionSeconds: number;
  /** `signedUrlTtlSeconds`: SIGNED_URL_TTL_SECONDS, lifetime of an upload URL (60..3600). */
  readonly signedUrlTtlSeconds: number;
  /** `resultUrlTtlSeconds`: RESULT_URL_TTL_SECONDS, lifetime of a result download URL (60..86400). */
  readonly resultUrlTtlSeconds: number;
  /** `maxDirectUploadBytes`: MAX_DIRECT_UPLOAD_BYTES, largest single-PUT upload (at most 32 MiB). */
  readonly maxDirectUploadBytes: number;
  /**
   * `maxUploadBytes`: MAX_UPLOAD_BYTES, largest upload at all (resumable above the direct limit).
   * The workers get the same number as MAX_INPUT_BYTES, so that what the API accepts, they read.
   */
  readonly maxUploadBytes: number;
  /** `quotaRequestsPerMinute`: QUOTA_REQUESTS_PER_MINUTE, API requests per user per minute (1..100000). */
  readonly quotaRequestsPerMinute: number;
  /** `quotaJobsInFlight`: QUOTA_JOBS_IN_FLIGHT, edits per user not yet ended (1..10000). */
  readonly quotaJobsInFlight: number;
  /**
   * `jobDeadlineSeconds`: JOB_DEADLINE_SECONDS, for the workers and the sweeper alike: a job not
   * ended this long after it first started fails with `deadline_exceeded` (5..86400, default 300).
   */
  readonly jobDeadlineSeconds: number;
  /** `apiMinInstances`: 1 in prod avoids a cold start on the first request after idle. */
  readonly apiMinInstances: number;
  /** `apiMaxInstances`: caps cost and Firestore write pressure from a traffic spike. */
  readonly apiMaxInstances: number;
  /** `firestoreLocation`: location of the Firestore database (cannot change after creation). */
  readonly firestoreLocation: string;
  /** `firebaseProjectId`: FIREBASE_PROJECT_ID, whose ID tokens the API accepts. */
  readonly firebaseProjectId: string;
  /**
   * `googleSignInClientId` and the secret `googleSignInClientSecret`: the OAuth client (APIs &
   * Services → Credentials, type "Web application") that Firebase Auth's Google sign-in uses. Both
   * or neither; without them only email/password and guest sign-in are on (infra/signIn.ts).
   */
  readonly googleSignIn?: { clientId: string; clientSecret: pulumi.Output<string> };
  /**
   * `protectData`: deletion protection on the cluster and Firestore, and no force-destroy of
   * non-empty buckets. Off for dev so that `pulumi destroy` really tears down.
   */
  readonly protectData: boolean;
  /**
   * `production`: the stack serves real users. It must page someone (`alertEmails` or
   * `alertNotificationChannels`) and restrict its cluster endpoint (`masterAuthorizedNetworks`);
   * the program refuses to run otherwise. Default: true for the stack named `prod`.
   */
  readonly production: boolean;
  /**
   * `alertNotificationChannels`: existing Cloud Monitoring notification channel ids
   * (`projects/<p>/notificationChannels/<id>`) the alert policies notify, besides `alertEmails`.
   */
  readonly alertNotificationChannels: readonly string[];
  /** `alertEmails`: addresses that get an email channel each, notified by every alert policy. */
  readonly alertEmails: readonly string[];
  /**
   * `masterAuthorizedNetworks`: CIDR ranges allowed to reach the cluster's public endpoint (the
   * operators' and CI's egress, which `pulumi up` itself needs). Empty: any address may try (the
   * endpoint still demands Google credentials); refused in production.
   */
  readonly masterAuthorizedNetworks: readonly string[];
  /**
   * `firestorePointInTimeRecovery`: 7 days of point-in-time recovery on the database (a read at
   * any minute of the last week, to undo a bad deploy's writes). Default: on where `protectData` is.
   */
  readonly firestorePointInTimeRecovery: boolean;
  /** `firestoreBackupRetentionDays`: a daily backup kept this many days (1..98); 0, none. */
  readonly firestoreBackupRetentionDays: number;
  /**
   * `iamPropagationSeconds`: how long `up` waits after granting Google's service agents and the
   * build account their roles before using them. IAM grants take up to a minute or two to reach
   * every Google service; Eventarc and Cloud Build check theirs at first use.
   */
  readonly iamPropagationSeconds: number;
}

export function loadInfraConfig(): InfraConfig {
  const config = new pulumi.Config();
  const gcp = new pulumi.Config("gcp");
  const stack = pulumi.getStack();
  const region = gcp.get("region") ?? "us-central1";
  const gpuMaxNodes = config.getNumber("gpuMaxNodes", { min: 1, max: 64 }) ?? 2;
  const tritonTimeoutMs = config.getNumber("tritonTimeoutMs", { min: 1_000 }) ?? 60_000;
  const workerTerminationGraceSeconds = config.getNumber("workerTerminationGraceSeconds", { min: 1 }) ?? 150;
  if (workerTerminationGraceSeconds < Math.ceil(tritonTimeoutMs / 1000) + 30) {
    throw new Error(
      `workerTerminationGraceSeconds (${workerTerminationGraceSeconds}) must exceed tritonTimeoutMs ` +
        `(${tritonTimeoutMs} ms) by at least 30 s, so that a rollout lets the tile batch in flight finish`,
    );
  }
  const maxDirectUploadBytes = config.getNumber("maxDirectUploadBytes", { min: 1024, max: 32 * 1024 * 1024 }) ?? 10 * 1024 * 1024;
  const maxUploadBytes = config.getNumber("maxUploadBytes", { min: 1024, max: 1024 * 1024 * 1024 }) ?? 50 * 1024 * 1024;
  if (maxUploadBytes < maxDirectUploadBytes) {
    throw new Error(`maxUploadBytes (${maxUploadBytes}) must be at least maxDirectUploadBytes (${maxDirectUploadBytes})`);
  }
  const workerMinReplicas = config.getNumber("workerMinReplicas", { min: 0 }) ?? 0;
  const workerMaxReplicas = config.getNumber("workerMaxReplicas", { min: 1 }) ?? 4;
  if (workerMaxReplicas < workerMinReplicas) {
    throw new Error(`workerMaxReplicas (${workerMaxReplicas}) must be at least workerMinReplicas (${workerMinReplicas})`);
  }
  const tritonMinReplicas = config.getNumber("tritonMinReplicas", { min: 0 }) ?? 0;
  const tritonMaxReplicas = config.getNumber("tritonMaxReplicas", { min: 1 }) ?? gpuMaxNodes;
  if (tritonMaxReplicas > gpuMaxNodes || tritonMinReplicas > tritonMaxReplicas) {
    throw new Error(
      `need tritonMinReplicas (${tritonMinReplicas}) <= tritonMaxReplicas (${tritonMaxReplicas}) <= gpuMaxNodes (${gpuMaxNodes})`,
    );
  }
  const corsOrigins = config.getObject<string[]>("corsOrigins") ?? [];
  for (const origin of corsOrigins) {
    if (!/^https?:\/\/[^/]+$/.test(origin)) {
      throw new Error(`corsOrigins: "${origin}" is not an origin (scheme://host[:port], no path)`);
    }
  }
  const project = gcp.require("project");
  const protectData = config.getBoolean("protectData") ?? true;
  const production = config.getBoolean("production") ?? stack === "prod";
  const alertNotificationChannels = config.getObject<string[]>("alertNotificationChannels") ?? [];
  const alertEmails = config.getObject<string[]>("alertEmails") ?? [];
  for (const email of alertEmails) {
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw new Error(`alertEmails: "${email}" is not an email address`);
  }
  const masterAuthorizedNetworks = config.getObject<string[]>("masterAuthorizedNetworks") ?? [];
  for (const cidr of masterAuthorizedNetworks) {
    if (!/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/.test(cidr)) throw new Error(`masterAuthorizedNetworks: "${cidr}" is not an IPv4 CIDR range`);
  }
  if (production && alertEmails.length === 0 && alertNotificationChannels.length === 0) {
    throw new Error(
      `stack ${stack} is production and its alerts would page nobody: ` +
        `pulumi config set --path 'alertEmails[0]' oncall@your-domain (or set alertNotificationChannels)`,
    );
  }
  if (production && (masterAuthorizedNetworks.length === 0 || masterAuthorizedNetworks.includes("0.0.0.0/0"))) {
    throw new Error(
      `stack ${stack} is production and its cluster endpoint would be open to any address: ` +
        `pulumi config set --path 'masterAuthorizedNetworks[0]' <your operators' and CI's egress range, e.g. 203.0.113.0/24>`,
    );
  }
  return {
    stack,
    project,
    region,
    clusterLocation: config.get("clusterLocation") ?? `${region}-a`,
    nodeZones: config.getObject<string[]>("nodeZones"),
    cpuMachineType: config.get("cpuMachineType") ?? "e2-standard-4",
    cpuSpot: config.getBoolean("cpuSpot") ?? false,
    cpuMinNodes: config.getNumber("cpuMinNodes", { min: 1 }) ?? 1,
    cpuMaxNodes: config.getNumber("cpuMaxNodes", { min: 1 }) ?? 4,
    gpuMachineType: config.get("gpuMachineType") ?? "n1-standard-4",
    gpuAcceleratorType: config.get("gpuAcceleratorType") ?? "nvidia-tesla-t4",
    gpuSpot: config.getBoolean("gpuSpot") ?? false,
    gpuMaxNodes,
    gpuDriverVersion: (config.get("gpuDriverVersion", { allowedValues: ["DEFAULT", "LATEST"] }) ??
      "LATEST") as GpuDriverVersion,
    namespace: config.get("namespace", { pattern: /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/ }) ?? "image-edit",
    workerImage: imageByDigest(config, "workerImage"),
    workerMinReplicas,
    workerMaxReplicas,
    workerMaxMessages: config.getNumber("workerMaxMessages", { min: 1 }) ?? 2,
    workerBacklogPerReplica: config.getNumber("workerBacklogPerReplica", { min: 1 }) ?? 4,
    tritonTimeoutMs,
    workerTerminationGraceSeconds,
    tritonImageTag: config.get("tritonImageTag", { pattern: /^\d{2}\.\d{2}$/ }) ?? "26.08",
    tritonImage: imageByDigest(config, "tritonImage"),
    modelRepositoryDir: config.get("modelRepositoryDir") ?? fileURLToPath(new URL("../triton/model_repository", import.meta.url)),
    excludedModels: config.getObject<string[]>("excludedModels") ?? [],
    tritonMinReplicas,
    tritonMaxReplicas,
    tritonQueueTargetMicros: config.getNumber("tritonQueueTargetMicros", { min: 1 }) ?? 100_000,
    tritonModelConfigName: config.get("tritonModelConfigName") ?? "gpu",
    modelRevision: config.get("modelRevision") ?? "1",
    uploadsLifecycleDays: config.getNumber("uploadsLifecycleDays", { min: 1 }) ?? 1,
    resultsLifecycleDays: config.getNumber("resultsLifecycleDays", { min: 1 }) ?? 7,
    jobDeadlineSeconds: config.getNumber("jobDeadlineSeconds", { min: 5, max: 86_400 }) ?? 300,
    corsOrigins,
    ackDeadlineSeconds: config.getNumber("ackDeadlineSeconds", { min: 10, max: 600 }) ?? 60,
    maxDeliveryAttempts: config.getNumber("maxDeliveryAttempts", { min: 5, max: 100 }) ?? 5,
    messageRetentionSeconds: config.getNumber("messageRetentionSeconds", { min: 600, max: 604_800 }) ?? 86_400,
    signedUrlTtlSeconds: config.getNumber("signedUrlTtlSeconds", { min: 60, max: 3_600 }) ?? 900,
    resultUrlTtlSeconds: config.getNumber("resultUrlTtlSeconds", { min: 60, max: 86_400 }) ?? 3_600,
    maxDirectUploadBytes,
    maxUploadBytes,
    quotaRequestsPerMinute: config.getNumber("quotaRequestsPerMinute", { min: 1, max: 100_000 }) ?? 120,
    quotaJobsInFlight: config.getNumber("quotaJobsInFlight", { min: 1, max: 10_000 }) ?? 20,
    apiMinInstances: config.getNumber("apiMinInstances", { min: 0 }) ?? 0,
    apiMaxInstances: config.getNumber("apiMaxInstances", { min: 1 }) ?? 10,
    firestoreLocation: config.get("firestoreLocation") ?? region,
    firebaseProjectId: config.get("firebaseProjectId") ?? project,
    ...googleSignIn(config),
    protectData,
    production,
    alertNotificationChannels,
    alertEmails,
    masterAuthorizedNetworks,
    firestorePointInTimeRecovery: config.getBoolean("firestorePointInTimeRecovery") ?? protectData,
    firestoreBackupRetentionDays: config.getNumber("firestoreBackupRetentionDays", { min: 0, max: 98 }) ?? 0,
    iamPropagationSeconds: config.getNumber("iamPropagationSeconds", { min: 0, max: 600 }) ?? 90,
  };
}

/** An image reference pinned by digest, or undefined when the key is unset (then `up` builds it). */
function imageByDigest(config: pulumi.Config, key: string): string | undefined {
  return config.get(key, { pattern: /^[a-z0-9.-]+(:\d+)?\/[\w./-]+@sha256:[0-9a-f]{64}$/ });
}

/** `<base>-<stack>`: lets several stacks share one project without colliding. */
export function stackName(config: Pick<InfraConfig, "stack">, base: string): string {
  return `${base}-${config.stack}`;
}

/** Google sign-in's OAuth client: both settings or neither. */
function googleSignIn(config: pulumi.Config): { googleSignIn?: { clientId: string; clientSecret: pulumi.Output<string> } } {
  const clientId = config.get("googleSignInClientId");
  const clientSecret = config.getSecret("googleSignInClientSecret");
  if (clientId === undefined && clientSecret === undefined) return {};
  if (clientId === undefined || clientSecret === undefined) {
    throw new Error("googleSignInClientId and googleSignInClientSecret go together: pulumi config set googleSignInClientId <id>; pulumi config set --secret googleSignInClientSecret <secret>");
  }
  return { googleSignIn: { clientId, clientSecret } };
}
