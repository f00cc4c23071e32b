/**
 * The Pulumi program under mocks, once per stack (dev, staging, prod, each with its own
 * Pulumi.<stack>.yaml): the inputs that decide whether the system works, costs what it should
 * and stays private.
 */
import { createHash } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { beforeAll, describe, expect, it } from "vitest";

import { quotaCounterTtl } from "../../infra/firestore.js";
import { contextHash, ignoreRules } from "../../infra/images.js";
import { gpuQuotaIds, gpuQuotaProblem, projectProblems } from "../../infra/preflight.js";
import {
  mockProjectNumber,
  modelRepositoryFixture,
  runInfraProgram,
  type DeclaredResource,
  type ProgramRun,
} from "../support/infraProgram.js";

const T = {
  alertPolicy: "gcp:monitoring/alertPolicy:AlertPolicy",
  account: "gcp:serviceaccount/account:Account",
  bucket: "gcp:storage/bucket:Bucket",
  bucketIam: "gcp:storage/bucketIAMMember:BucketIAMMember",
  cluster: "gcp:container/cluster:Cluster",
  deployment: "kubernetes:apps/v1:Deployment",
  function: "gcp:cloudfunctionsv2/function:Function",
  runIam: "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
  scheduler: "gcp:cloudscheduler/job:Job",
  index: "gcp:firestore/index:Index",
  ksa: "kubernetes:core/v1:ServiceAccount",
  nodePool: "gcp:container/nodePool:NodePool",
  podMonitoring: "kubernetes:monitoring.googleapis.com/v1:PodMonitoring",
  projectIam: "gcp:projects/iAMMember:IAMMember",
  saIam: "gcp:serviceaccount/iAMMember:IAMMember",
  scaledObject: "kubernetes:keda.sh/v1alpha1:ScaledObject",
  subscription: "gcp:pubsub/subscription:Subscription",
  subscriptionIam: "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember",
  command: "command:local:Command",
  service: "gcp:projects/service:Service",
  bucketObject: "gcp:storage/bucketObject:BucketObject",
  pdb: "kubernetes:policy/v1:PodDisruptionBudget",
  field: "gcp:firestore/field:Field",
  backupSchedule: "gcp:firestore/backupSchedule:BackupSchedule",
  database: "gcp:firestore/database:Database",
  channel: "gcp:monitoring/notificationChannel:NotificationChannel",
  topic: "gcp:pubsub/topic:Topic",
  topicIam: "gcp:pubsub/topicIAMMember:TopicIAMMember",
  signInConfig: "gcp:identityplatform/config:Config",
  idp: "gcp:identityplatform/defaultSupportedIdpConfig:DefaultSupportedIdpConfig",
} as const;

/** What each environment must get, written out rather than derived from the stack files. */
const stacks = {
  dev: {
    gpuSpot: true,
    maxDeliveryAttempts: 5,
    uploadsDays: 1,
    resultsDays: 1,
    workerMinReplicas: 0,
    tritonMinReplicas: 0,
    protectData: false,
    corsOrigins: ["http://localhost:5173", "https://dev.image-edit.example.com"],
    pointInTimeRecovery: false,
    backupRetentionDays: 0,
    alertEmails: [] as string[],
    authorizedNetworks: [] as string[],
  },
  staging: {
    gpuSpot: false,
    maxDeliveryAttempts: 5,
    uploadsDays: 2,
    resultsDays: 7,
    workerMinReplicas: 0,
    tritonMinReplicas: 0,
    protectData: true,
    corsOrigins: ["https://staging.image-edit.example.com"],
    pointInTimeRecovery: true,
    backupRetentionDays: 0,
    alertEmails: [] as string[],
    authorizedNetworks: [] as string[],
  },
  prod: {
    gpuSpot: false,
    maxDeliveryAttempts: 10,
    uploadsDays: 3,
    resultsDays: 30,
    workerMinReplicas: 2,
    tritonMinReplicas: 1,
    protectData: true,
    corsOrigins: ["https://image-edit.example.com", "https://app.image-edit.example.com"],
    pointInTimeRecovery: true,
    backupRetentionDays: 14,
    alertEmails: ["oncall@image-edit.example.com"],
    authorizedNetworks: ["198.51.100.0/24"],
  },
};

describe.each(Object.entries(stacks))("stack %s", (stack, expected) => {
  let run: ProgramRun;
  let project: string;
  const email = (accountId: string) => `${accountId}-${stack}@${project}.iam.gserviceaccount.com`;
  const container = (deployment: DeclaredResource) => deployment.inputs.spec.template.spec.containers[0];

  beforeAll(async () => {
    run = await runInfraProgram(stack);
    project = run.config["gcp:project"] as string;
  }, 30_000);

  describe("GPU node pool", () => {
    const gpuPool = () => run.one(T.nodePool, "gpu");

    it("has one T4 per n1-standard-4 node with GKE-managed drivers", () => {
      const nodeConfig = gpuPool().inputs.nodeConfig;
      expect(nodeConfig.machineType).toBe("n1-standard-4");
      expect(nodeConfig.guestAccelerators).toEqual([
        { type: "nvidia-tesla-t4", count: 1, gpuDriverInstallationConfig: { gpuDriverVersion: "LATEST" } },
      ]);
    });

    it("is tainted so that only GPU pods land there, and scales to zero", () => {
      expect(gpuPool().inputs.nodeConfig.taints).toEqual([
        { key: "nvidia.com/gpu", value: "present", effect: "NO_SCHEDULE" },
      ]);
      expect(gpuPool().inputs.autoscaling.totalMinNodeCount).toBe(0);
      expect(gpuPool().inputs.nodeConfig.workloadMetadataConfig).toEqual({ mode: "GKE_METADATA" });
    });

    it(`uses ${expected.gpuSpot ? "Spot" : "on-demand"} VMs`, () => {
      expect(gpuPool().inputs.nodeConfig.spot).toBe(expected.gpuSpot);
    });

    it("leaves the CPU pool free of GPUs and taints", () => {
      const cpu = run.one(T.nodePool, "cpu").inputs.nodeConfig;
      expect(cpu.guestAccelerators ?? []).toEqual([]);
      expect(cpu.taints ?? []).toEqual([]);
    });
  });

  it("creates the cluster with Workload Identity, Managed Prometheus and the right protection", () => {
    const cluster = run.one(T.cluster, "gke").inputs;
    expect(cluster.workloadIdentityConfig).toEqual({ workloadPool: `${project}.svc.id.goog` });
    expect(cluster.monitoringConfig.managedPrometheus).toEqual({ enabled: true });
    expect(cluster.removeDefaultNodePool).toBe(true);
    expect(cluster.deletionProtection).toBe(expected.protectData);
    // The nodes do not run as the Compute Engine default account (which holds roles/editor).
    expect(run.one(T.nodePool, "gpu").inputs.nodeConfig.serviceAccount).toBe(email("gke-nodes"));
  });

  describe("Pub/Sub", () => {
    it("dead-letters a job after the stack's delivery attempts, with a 60 s ack deadline", () => {
      const subscription = run.one(T.subscription, "jobs-worker").inputs;
      const deadLetterTopic = run.one(T.topic, "jobs-dead-letter").inputs;
      expect(subscription.name).toBe(`edit-jobs-worker-${stack}`);
      expect(subscription.topic).toBe(`projects/${project}/topics/edit-jobs-${stack}`);
      expect(subscription.ackDeadlineSeconds).toBe(60);
      expect(subscription.deadLetterPolicy).toEqual({
        deadLetterTopic: `projects/${project}/topics/${deadLetterTopic.name}`,
        maxDeliveryAttempts: expected.maxDeliveryAttempts,
      });
      expect(subscription.retryPolicy).toEqual({ minimumBackoff: "10s", maximumBackoff: "600s" });
      expect(subscription.expirationPolicy).toEqual({ ttl: "" });
    });

    it("gives batch jobs their own topic and subscription, dead-lettered like the interactive ones", () => {
      const interactive = run.one(T.subscription, "jobs-worker").inputs;
      const batch = run.one(T.subscription, "jobs-batch-worker").inputs;
      expect(batch.name).toBe(`edit-jobs-batch-worker-${stack}`);
      expect(batch.topic).toBe(`projects/${project}/topics/edit-jobs-batch-${stack}`);
      const { name: _a, topic: _b, ...batchSettings } = batch;
      const { name: _c, topic: _d, ...interactiveSettings } = interactive;
      expect(batchSettings).toEqual(interactiveSettings);
      expect(run.one(T.subscriptionIam, "dead-letter-batch-source-subscriber").inputs).toMatchObject({
        subscription: `edit-jobs-batch-worker-${stack}`,
        role: "roles/pubsub.subscriber",
        member: `serviceAccount:service-${mockProjectNumber}@gcp-sa-pubsub.iam.gserviceaccount.com`,
      });
    });

    it("lets the Pub/Sub service agent publish dead letters and ack the source", () => {
      const agent = `serviceAccount:service-${mockProjectNumber}@gcp-sa-pubsub.iam.gserviceaccount.com`;
      expect(run.one(T.topicIam, "dead-letter-publisher").inputs).toMatchObject({
        topic: `edit-jobs-dead-letter-${stack}`,
        role: "roles/pubsub.publisher",
        member: agent,
      });
      expect(run.one(T.subscriptionIam, "dead-letter-source-subscriber").inputs).toMatchObject({
        subscription: `edit-jobs-worker-${stack}`,
        role: "roles/pubsub.subscriber",
        member: agent,
      });
    });

    it("keeps dead letters a week on a handler subscription that never expires", () => {
      const handler = run.one(T.subscription, "jobs-dead-letter-handler").inputs;
      expect(handler.name).toBe(`edit-jobs-dead-letter-handler-${stack}`);
      expect(handler.topic).toBe(`projects/${project}/topics/edit-jobs-dead-letter-${stack}`);
      expect(handler.deadLetterPolicy).toBeUndefined();
      expect(handler.messageRetentionDuration).toBe("604800s");
      expect(handler.expirationPolicy).toEqual({ ttl: "" });
    });
  });

  describe("buckets", () => {
    it("are all private: uniform access and public access prevention", () => {
      const buckets = run.all(T.bucket);
      expect(buckets.map((b) => b.name).sort()).toEqual(["build-source", "functions-source", "models", "results", "uploads"]);
      for (const bucket of buckets) {
        expect(bucket.inputs).toMatchObject({ uniformBucketLevelAccess: true, publicAccessPrevention: "enforced" });
      }
    });

    it(`delete uploads after ${expected.uploadsDays} and results after ${expected.resultsDays} days`, () => {
      expect(run.one(T.bucket, "uploads").inputs.lifecycleRules).toEqual([
        { action: { type: "Delete" }, condition: { age: expected.uploadsDays } },
      ]);
      expect(run.one(T.bucket, "results").inputs.lifecycleRules).toEqual([
        { action: { type: "Delete" }, condition: { age: expected.resultsDays } },
      ]);
    });

    it("let the web app PUT uploads and GET results from its own origins only", () => {
      const [uploadsCors] = run.one(T.bucket, "uploads").inputs.cors;
      expect(uploadsCors.origins).toEqual(expected.corsOrigins);
      expect(uploadsCors.methods).toContain("PUT");
      expect(uploadsCors.responseHeaders).toContain("Content-Type");
      const [resultsCors] = run.one(T.bucket, "results").inputs.cors;
      expect(resultsCors.origins).toEqual(expected.corsOrigins);
      expect(resultsCors.methods).toEqual(["GET", "HEAD"]);
    });

    it(`${expected.protectData ? "refuse" : "allow"} destroying non-empty data buckets`, () => {
      expect(run.one(T.bucket, "uploads").inputs.forceDestroy).toBe(!expected.protectData);
    });
  });

  describe("Workload Identity", () => {
    it.each([
      ["worker", "image-edit", "worker"],
      ["triton", "image-edit", "triton"],
      ["keda", "keda", "keda-operator"],
    ])("binds Google account %s to Kubernetes %s/%s and nothing else", (account, namespace, ksa) => {
      const bindings = run
        .all(T.saIam)
        .filter((b) => b.inputs.role === "roles/iam.workloadIdentityUser")
        .filter((b) => b.inputs.serviceAccountId === `projects/${project}/serviceAccounts/${email(account)}`);
      expect(bindings.map((b) => b.inputs.member)).toEqual([`serviceAccount:${project}.svc.id.goog[${namespace}/${ksa}]`]);
    });

    it("annotates the worker's and Triton's Kubernetes accounts with their Google accounts", () => {
      expect(run.one(T.ksa, "worker").inputs.metadata.annotations).toEqual({
        "iam.gke.io/gcp-service-account": email("worker"),
      });
      expect(run.one(T.ksa, "triton").inputs.metadata.annotations).toEqual({
        "iam.gke.io/gcp-service-account": email("triton"),
      });
    });
  });

  describe("Triton", () => {
    const triton = () => run.one(T.deployment, "triton");

    it("runs the pinned release on one GPU, tolerating the taint", () => {
      const spec = triton().inputs.spec.template.spec;
      expect(container(triton()).image).toMatch(new RegExp(`^us-central1-docker\\.pkg\\.dev/${project}/images-${stack}/triton@sha256:[0-9a-f]{64}$`));
      expect(container(triton()).resources.limits["nvidia.com/gpu"]).toBe("1");
      expect(spec.tolerations).toEqual([
        { key: "nvidia.com/gpu", operator: "Equal", value: "present", effect: "NoSchedule" },
      ]);
      expect(spec.nodeSelector).toEqual({ "cloud.google.com/gke-accelerator": "nvidia-tesla-t4" });
      expect(spec.serviceAccountName).toBe("triton");
    });

    it("reads the model repository from the models bucket with strict model configs", () => {
      expect(container(triton()).args).toEqual(
        expect.arrayContaining([
          `--model-repository=gs://${run.outputs.modelsBucket}/model_repository`,
          "--strict-model-config=true",
        ]),
      );
    });

    it("is ready only on /v2/health/ready and restarted on /v2/health/live (HTTP 8000)", () => {
      const c = container(triton());
      expect(c.readinessProbe.httpGet).toEqual({ path: "/v2/health/ready", port: "http" });
      expect(c.livenessProbe.httpGet).toEqual({ path: "/v2/health/live", port: "http" });
      expect(c.ports).toContainEqual({ name: "http", containerPort: 8000 });
      expect(c.ports).toContainEqual({ name: "grpc", containerPort: 8001 });
    });

    it("exposes metrics on 8002 to Managed Prometheus and scales on queue time", () => {
      expect(container(triton()).ports).toContainEqual({ name: "metrics", containerPort: 8002 });
      expect(run.one(T.podMonitoring, "triton-metrics").inputs.spec).toEqual({
        selector: { matchLabels: { app: "triton" } },
        endpoints: [{ port: "metrics", path: "/metrics", interval: "15s" }],
      });
      const scaler = run.one(T.scaledObject, "triton-scaler").inputs.spec;
      expect(scaler.minReplicaCount).toBe(expected.tritonMinReplicas);
      const prometheus = scaler.triggers.find((t: { type: string }) => t.type === "prometheus");
      // A queued job of either priority wakes Triton.
      expect(scaler.triggers.filter((t: { type: string }) => t.type === "gcp-pubsub").map((t: { metadata: { subscriptionName: string } }) => t.metadata.subscriptionName)).toEqual([
        `projects/${project}/subscriptions/edit-jobs-worker-${stack}`,
        `projects/${project}/subscriptions/edit-jobs-batch-worker-${stack}`,
      ]);
      expect(prometheus.metadata.query).toContain("nv_inference_queue_duration_us");
      expect(prometheus.metadata.serverAddress).toBe(
        `https://monitoring.googleapis.com/v1/projects/${project}/location/global/prometheus`,
      );
    });
  });

  describe("alert policies", () => {
    const condition = (name: string) => {
      const policy = run.one(T.alertPolicy, `alert-${name}`).inputs;
      expect(policy.conditions).toHaveLength(1);
      return { policy, rule: policy.conditions[0].conditionPrometheusQueryLanguage };
    };

    it("alert on a growing backlog, the error rate, dead letters, the oldest running job and Triton not ready", () => {
      expect(run.all(T.alertPolicy).map((policy) => policy.name).sort()).toEqual([
        "alert-backlog-growing",
        "alert-dead-lettered",
        "alert-error-rate",
        "alert-oldest-running-job",
        "alert-triton-not-ready",
      ]);
      for (const policy of run.all(T.alertPolicy)) {
        expect(policy.inputs.displayName).toContain(`(${stack})`);
        expect(policy.inputs.documentation.content).not.toBe("");
        expect(policy.inputs.conditions[0].conditionPrometheusQueryLanguage.ruleGroup).toBe(`image-edit-${stack}`);
      }
    });

    it("watch the jobs subscription's backlog above what the full worker fleet is sized for", () => {
      const { rule } = condition("backlog-growing");
      expect(rule.query).toContain(`subscription_id="edit-jobs-worker-${stack}"`);
      expect(rule.query).toContain("pubsub_googleapis_com:subscription_num_undelivered_messages");
      expect(rule.query).toContain("deriv(");
      const fleet = Number(run.config["image-edit:workerMaxReplicas"] ?? 4) * Number(run.config["image-edit:workerBacklogPerReplica"] ?? 4);
      expect(rule.query).toContain(`> ${fleet})`);
      expect(rule.duration).toBe("900s");
    });

    it("read the worker's own metrics in the app namespace", () => {
      expect(condition("error-rate").rule.query).toContain('image_edit_jobs_total{namespace="image-edit",outcome="failed"}');
      expect(condition("error-rate").rule.query).toContain("> 0.05");
      expect(condition("oldest-running-job").rule.query).toBe('max(image_edit_oldest_running_job_age_seconds{namespace="image-edit"}) > 240');
      expect(condition("triton-not-ready").rule.query).toBe('max(image_edit_triton_ready{namespace="image-edit"}) == 0');
      expect(condition("triton-not-ready").policy.severity).toBe("CRITICAL");
    });

    it("fire on any dead-lettered job", () => {
      const { rule } = condition("dead-lettered");
      expect(rule.query).toContain(`subscription_dead_letter_message_count{subscription_id="edit-jobs-worker-${stack}"`);
      expect(rule.query).toMatch(/> 0$/);
      expect(rule.duration).toBe("0s");
    });
  });

  describe("worker", () => {
    const worker = () => run.one(T.deployment, "worker");

    it("gets the names the code reads from its environment", () => {
      const env = Object.fromEntries(
        container(worker()).env.map((e: { name: string; value: string }) => [e.name, e.value]),
      );
      expect(env).toEqual({
        GCP_PROJECT: project,
        JOBS_SUBSCRIPTION: `edit-jobs-worker-${stack}`,
        JOBS_BATCH_SUBSCRIPTION: `edit-jobs-batch-worker-${stack}`,
        JOB_DEADLINE_SECONDS: "300",
        RESULTS_LIFECYCLE_DAYS: String(expected.resultsDays),
        UPLOADS_BUCKET: run.outputs.uploadsBucket,
        RESULTS_BUCKET: run.outputs.resultsBucket,
        TRITON_GRPC_URL: "triton.image-edit.svc.cluster.local:8001",
        WORKER_MAX_MESSAGES: "2",
        TRITON_TIMEOUT_MS: "60000",
        // The worker's own give-up point is the last delivery before dead-lettering.
        MAX_ATTEMPTS: String(expected.maxDeliveryAttempts),
        // What the API accepts, the worker reads.
        MAX_INPUT_BYTES: run.one(T.function, "api").inputs.serviceConfig.environmentVariables.MAX_UPLOAD_BYTES,
        METRICS_PORT: "9464",
      });
      expect(container(worker()).image).toMatch(new RegExp(`^us-central1-docker\\.pkg\\.dev/${project}/images-${stack}/worker@sha256:[0-9a-f]{64}$`));
    });

    it("serves /metrics on the port Managed Prometheus scrapes", () => {
      expect(container(worker()).ports).toEqual([{ name: "metrics", containerPort: 9464 }]);
      expect(run.one(T.podMonitoring, "worker-metrics").inputs.spec).toEqual({
        selector: { matchLabels: { app: "worker" } },
        endpoints: [{ port: "metrics", path: "/metrics", interval: "30s" }],
      });
    });

    it("outlives the longest Triton call when terminated", () => {
      const grace = worker().inputs.spec.template.spec.terminationGracePeriodSeconds;
      const timeoutMs = container(worker()).env.find((e: { name: string }) => e.name === "TRITON_TIMEOUT_MS").value;
      // The tile batch in flight may take the whole Triton timeout, then it is stitched and written.
      expect(grace).toBeGreaterThanOrEqual(Number(timeoutMs) / 1000 + 30);
    });

    it(`scales on the subscription backlog from ${expected.workerMinReplicas} replicas`, () => {
      const scaler = run.one(T.scaledObject, "worker-scaler").inputs.spec;
      expect(scaler.scaleTargetRef).toEqual({ name: "worker" });
      expect(scaler.minReplicaCount).toBe(expected.workerMinReplicas);
      // One trigger per priority's subscription: a batch backlog alone brings workers too.
      expect(scaler.triggers).toEqual(
        ["edit-jobs-worker", "edit-jobs-batch-worker"].map((name) =>
          expect.objectContaining({
            type: "gcp-pubsub",
            metadata: expect.objectContaining({
              subscriptionName: `projects/${project}/subscriptions/${name}-${stack}`,
              mode: "SubscriptionSize",
            }),
            authenticationRef: { name: "gcp-workload-identity" },
          }),
        ),
      );
    });
  });

  describe("Cloud Functions", () => {
    it("run api and uploadFinalized on Node 24, each as its own service account", () => {
      const api = run.one(T.function, "api").inputs;
      const upload = run.one(T.function, "upload-finalized").inputs;
      expect(api.buildConfig).toMatchObject({ runtime: "nodejs24", entryPoint: "api" });
      expect(upload.buildConfig).toMatchObject({ runtime: "nodejs24", entryPoint: "uploadFinalized" });
      expect(api.serviceConfig.serviceAccountEmail).toBe(email("api"));
      expect(upload.serviceConfig.serviceAccountEmail).toBe(email("upload-trigger"));
    });

    it("trigger uploadFinalized on objects finalized in the uploads bucket", () => {
      expect(run.one(T.function, "upload-finalized").inputs.eventTrigger).toMatchObject({
        eventType: "google.cloud.storage.object.v1.finalized",
        eventFilters: [{ attribute: "bucket", value: run.outputs.uploadsBucket }],
        serviceAccountEmail: email("upload-trigger"),
      });
    });

    it("hand dead letters to the deadLetter function and run the sweeper every minute, privately", () => {
      const deadLetter = run.one(T.function, "dead-letter").inputs;
      expect(deadLetter.buildConfig).toMatchObject({ entryPoint: "deadLetter" });
      expect(deadLetter.eventTrigger).toMatchObject({
        eventType: "google.cloud.pubsub.topic.v1.messagePublished",
        pubsubTopic: expect.stringContaining(`edit-jobs-dead-letter-${stack}`),
        retryPolicy: "RETRY_POLICY_RETRY",
      });
      const sweep = run.one(T.function, "sweep-jobs").inputs;
      expect(sweep.buildConfig).toMatchObject({ entryPoint: "sweepJobs" });
      expect(sweep.serviceConfig.environmentVariables.MAX_ATTEMPTS).toBe(String(expected.maxDeliveryAttempts));
      const schedule = run.one(T.scheduler, "sweep-jobs").inputs;
      expect(schedule).toMatchObject({ schedule: "* * * * *", httpTarget: { httpMethod: "POST", oidcToken: { serviceAccountEmail: email("upload-trigger") } } });
      // Only the API is open to everyone; the sweeper answers only its scheduler's identity.
      const publicInvokers = run.all(T.runIam).filter((grant) => grant.inputs.member === "allUsers").map((grant) => grant.name);
      expect(publicInvokers).toEqual(["api-public-invoker"]);
    });

    it("configure the API for Firebase auth and the stack's resources", () => {
      const env = run.one(T.function, "api").inputs.serviceConfig.environmentVariables;
      expect(env).toMatchObject({
        GCP_PROJECT: project,
        UPLOADS_BUCKET: run.outputs.uploadsBucket,
        RESULTS_BUCKET: run.outputs.resultsBucket,
        JOBS_TOPIC: `edit-jobs-${stack}`,
        JOBS_BATCH_TOPIC: `edit-jobs-batch-${stack}`,
        JOB_DEADLINE_SECONDS: "300",
        AUTH_MODE: "firebase",
        FIREBASE_PROJECT_ID: project,
        CORS_ORIGINS: expected.corsOrigins.join(","),
      });
      for (const key of ["SIGNED_URL_TTL_SECONDS", "RESULT_URL_TTL_SECONDS", "MAX_DIRECT_UPLOAD_BYTES", "MAX_UPLOAD_BYTES", "QUOTA_REQUESTS_PER_MINUTE", "QUOTA_JOBS_IN_FLIGHT"]) {
        expect(env[key]).toMatch(/^\d+$/);
      }
      const uploadEnv = run.one(T.function, "upload-finalized").inputs.serviceConfig.environmentVariables;
      expect(uploadEnv.AUTH_MODE).toBeUndefined();
      expect(uploadEnv.JOBS_TOPIC).toBe(`edit-jobs-${stack}`);
      expect(uploadEnv.JOBS_BATCH_TOPIC).toBe(`edit-jobs-batch-${stack}`);
    });

    it("give the API's account exactly what signing and queueing need", () => {
      const member = `serviceAccount:${email("api")}`;
      const grants = [
        ...run.all(T.projectIam),
        ...run.all(T.bucketIam),
        ...run.all(T.topicIam),
        ...run.all(T.subscriptionIam),
        ...run.all(T.saIam),
      ]
        .filter((g) => g.inputs.member === member)
        .map((g) => `${g.inputs.role} on ${g.inputs.bucket ?? g.inputs.topic ?? g.inputs.serviceAccountId ?? "project"}`)
        .sort();
      expect(grants).toEqual(
        [
          "roles/datastore.user on project",
          `roles/iam.serviceAccountTokenCreator on projects/${project}/serviceAccounts/${email("api")}`,
          `roles/pubsub.publisher on edit-jobs-${stack}`,
          `roles/pubsub.publisher on edit-jobs-batch-${stack}`,
          `roles/storage.objectAdmin on ${run.outputs.uploadsBucket}`,
          `roles/storage.objectViewer on ${run.outputs.resultsBucket}`,
        ].sort(),
      );
    });

    it("give the upload trigger's account what recording, queueing and deleting refused uploads need", () => {
      const member = `serviceAccount:${email("upload-trigger")}`;
      const grants = [...run.all(T.projectIam), ...run.all(T.bucketIam), ...run.all(T.topicIam)]
        .filter((g) => g.inputs.member === member)
        .map((g) => `${g.inputs.role} on ${g.inputs.bucket ?? g.inputs.topic ?? "project"}`)
        .sort();
      expect(grants).toEqual(
        [
          "roles/datastore.user on project",
          "roles/eventarc.eventReceiver on project",
          `roles/pubsub.publisher on edit-jobs-${stack}`,
          `roles/pubsub.publisher on edit-jobs-batch-${stack}`,
          `roles/storage.objectUser on ${run.outputs.uploadsBucket}`,
        ].sort(),
      );
    });
  });

  describe("webhooks", () => {
    it("trigger webhookEvents on every event a job records, in the database's location, with retries", () => {
      const fn = run.one(T.function, "webhook-events").inputs;
      expect(fn.buildConfig).toMatchObject({ runtime: "nodejs24", entryPoint: "webhookEvents" });
      expect(fn.serviceConfig).toMatchObject({ serviceAccountEmail: email("webhooks"), ingressSettings: "ALLOW_INTERNAL_ONLY" });
      expect(fn.eventTrigger).toMatchObject({
        eventType: "google.cloud.firestore.document.v1.created",
        eventFilters: [
          { attribute: "database", value: "(default)" },
          { attribute: "document", value: "jobs/{jobId}/events/{seq}", operator: "match-path-pattern" },
        ],
        serviceAccountEmail: email("webhooks"),
        retryPolicy: "RETRY_POLICY_RETRY",
      });
      expect(run.one(T.runIam, "webhook-events-invoker").inputs.member).toBe(`serviceAccount:${email("webhooks")}`);
    });

    it("never let a deployed function send webhooks to http or loopback", () => {
      for (const name of ["api", "upload-finalized", "dead-letter", "sweep-jobs", "webhook-events"]) {
        expect(run.one(T.function, name).inputs.serviceConfig.environmentVariables.WEBHOOK_ALLOW_LOOPBACK_HTTP, name).toBe("false");
      }
    });

    it("give the webhook account exactly what reading the log, the outbox and signing a result URL need", () => {
      const member = `serviceAccount:${email("webhooks")}`;
      const grants = [...run.all(T.projectIam), ...run.all(T.bucketIam), ...run.all(T.topicIam), ...run.all(T.saIam)]
        .filter((g) => g.inputs.member === member)
        .map((g) => `${g.inputs.role} on ${g.inputs.bucket ?? g.inputs.topic ?? g.inputs.serviceAccountId ?? "project"}`)
        .sort();
      expect(grants).toEqual(
        [
          "roles/datastore.user on project",
          "roles/eventarc.eventReceiver on project",
          `roles/iam.serviceAccountTokenCreator on projects/${project}/serviceAccounts/${email("webhooks")}`,
          `roles/storage.objectViewer on ${run.outputs.resultsBucket}`,
        ].sort(),
      );
    });

    it("expires the webhook outbox's records with a TTL policy on the field the adapter writes", () => {
      expect(run.one(T.field, "webhook-deliveries-ttl").inputs).toMatchObject({ database: "(default)", collection: "webhookDeliveries", field: "expiresAt", ttlConfig: {} });
    });
  });

  it("grants no primitive role anywhere", () => {
    const roles = run.resources.filter((r) => /IAM|Iam/.test(r.type)).map((r) => r.inputs.role);
    expect(roles.length).toBeGreaterThan(10);
    expect(roles.filter((role) => ["roles/owner", "roles/editor", "roles/viewer"].includes(role))).toEqual([]);
  });

  describe("sign-in", () => {
    it("turns on email/password and guest sign-in, for the app's domains, with the Identity Toolkit API", () => {
      const signIn = run.one(T.signInConfig, "sign-in").inputs;
      expect(signIn.signIn).toMatchObject({ email: { enabled: true, passwordRequired: true }, anonymous: { enabled: true }, allowDuplicateEmails: false });
      expect(signIn.autodeleteAnonymousUsers).toBe(true);
      expect(signIn.authorizedDomains).toEqual(expect.arrayContaining([`${project}.firebaseapp.com`, ...expected.corsOrigins.map((origin) => new URL(origin).hostname)]));
      expect(run.all(T.service).map((service) => service.inputs.service)).toContain("identitytoolkit.googleapis.com");
      // Google sign-in waits for an OAuth client the stack does not name.
      expect(run.all(T.idp)).toEqual([]);
      expect(run.outputs.signInProviders).toEqual(["password", "anonymous"]);
    });

    it("deploys the API without the Auth emulator's variable, so that unsigned tokens are refused", () => {
      const api = run.all(T.function).find((fn) => fn.name === "api" || fn.inputs.name?.includes?.("api"));
      expect(api).toBeDefined();
      expect(Object.keys(api!.inputs.serviceConfig.environmentVariables)).not.toContain("FIREBASE_AUTH_EMULATOR_HOST");
    });
  });

  describe("Firestore", () => {
    it("has a composite index for each query the API makes", () => {
      const indexes = run.all(T.index).map((i) => ({
        collection: i.inputs.collection,
        fields: i.inputs.fields.map((f: { fieldPath: string; order: string }) => `${f.fieldPath} ${f.order}`),
      }));
      expect(indexes).toEqual(
        expect.arrayContaining([
          { collection: "jobs", fields: ["ownerId ASCENDING", "createdAt DESCENDING"] },
          { collection: "jobs", fields: ["ownerId ASCENDING", "status ASCENDING"] },
          { collection: "jobs", fields: ["status ASCENDING", "leaseExpiresAt ASCENDING"] },
          { collection: "jobs", fields: ["status ASCENDING", "updatedAt ASCENDING"] },
        ]),
      );
    });

    it("deploys infra/firestore.rules as the (default) database's release", () => {
      const ruleset = run.one("gcp:firebaserules/ruleset:Ruleset", "firestore-rules").inputs;
      const rules = readFileSync(new URL("../../infra/firestore.rules", import.meta.url), "utf8");
      expect(ruleset.source.files).toEqual([{ name: "firestore.rules", content: rules }]);
      expect(run.one("gcp:firebaserules/release:Release", "firestore-rules").inputs).toMatchObject({
        name: "cloud.firestore",
        rulesetName: `projects/${project}/rulesets/mock-ruleset-id`,
      });
      expect(run.one("gcp:firestore/database:Database", "database").inputs.deleteProtectionState).toBe(
        expected.protectData ? "DELETE_PROTECTION_ENABLED" : "DELETE_PROTECTION_DISABLED",
      );
    });
  });


  describe("a first `up` on an empty project", () => {
    const minutes = (value: string) => Number(/^(\d+)m$/.exec(value)?.[1] ?? 0);

    it("binds Workload Identity only after the cluster exists (its identity pool comes with it)", () => {
      const cluster = run.one(T.cluster, "gke");
      const bindings = run.all(T.saIam).filter((b) => b.inputs.role === "roles/iam.workloadIdentityUser");
      expect(bindings).toHaveLength(3);
      for (const binding of bindings) expect(run.waitsFor(binding, cluster), binding.name).toBe(true);
    });

    it("enables every API it uses, image streaming's included", () => {
      const services = run.all(T.service).map((s) => s.inputs.service);
      expect(services).toEqual(
        expect.arrayContaining(["containerfilesystem.googleapis.com", "cloudquotas.googleapis.com", "cloudbuild.googleapis.com", "eventarc.googleapis.com"]),
      );
      // Image streaming is what the API is for.
      expect(run.one(T.nodePool, "gpu").inputs.nodeConfig.gcfsConfig).toEqual({ enabled: true });
    });

    it("builds the functions as the stack's own build account, into the stack's repository", () => {
      for (const fn of run.all(T.function)) {
        expect(fn.inputs.buildConfig.serviceAccount, fn.name).toBe(`projects/${project}/serviceAccounts/${email("builder")}`);
        expect(fn.inputs.buildConfig.dockerRepository).toBe(`projects/${project}/locations/us-central1/repositories/images-${stack}`);
      }
      const member = `serviceAccount:${email("builder")}`;
      const grants = run.resources
        .filter((r) => /IAM|Iam/.test(r.type) && r.inputs.member === member)
        .map((g) => `${g.inputs.role} on ${g.inputs.bucket ?? g.inputs.repository ?? "project"}${g.inputs.condition ? " if " + g.inputs.condition.expression : ""}`)
        .sort();
      expect(grants).toEqual(
        [
          "roles/logging.logWriter on project",
          `roles/storage.objectAdmin on project if resource.name.startsWith("projects/_/buckets/gcf-v2-sources-${mockProjectNumber}-")`,
          `roles/artifactregistry.writer on images-${stack}`,
          `roles/storage.objectViewer on ${project}-${stack}-build-source`,
          `roles/storage.objectViewer on ${project}-${stack}-functions-source`,
        ].sort(),
      );
    });

    it("grants Eventarc's service agent its role and waits for it to propagate before creating the triggers", () => {
      const agentGrant = run.one(T.projectIam, "eventarc-agent");
      expect(agentGrant.inputs).toMatchObject({
        role: "roles/eventarc.serviceAgent",
        member: `serviceAccount:service-${mockProjectNumber}@gcp-sa-eventarc.iam.gserviceaccount.com`,
      });
      const wait = run.one(T.command, "iam-propagation");
      expect(wait.inputs.create).toBe("sleep 90");
      for (const grant of ["eventarc-agent", "storage-agent-publisher", "builder-logs", "builder-push-images"]) {
        const resource = run.resources.find((r) => r.name === grant && /IAM|Iam/.test(r.type)) as DeclaredResource;
        expect(run.waitsFor(wait, resource), grant).toBe(true);
      }
      for (const name of ["upload-finalized", "dead-letter", "webhook-events"]) {
        const fn = run.one(T.function, name);
        expect(run.waitsFor(fn, wait), name).toBe(true);
        expect(run.waitsFor(fn, agentGrant), name).toBe(true);
      }
    });

    it("gives the cluster, the GPU pool and Triton's first start the time they take", () => {
      const cluster = run.one(T.cluster, "gke").customTimeouts;
      expect(minutes(cluster?.create ?? "")).toBeGreaterThanOrEqual(60);
      expect(minutes(cluster?.update ?? "")).toBeGreaterThanOrEqual(60);
      expect(minutes(run.one(T.nodePool, "gpu").customTimeouts?.create ?? "")).toBeGreaterThanOrEqual(45);
      // A GPU node from zero, the image and every model: past Pulumi's 10 minutes for a Deployment.
      const triton = run.one(T.deployment, "triton").customTimeouts;
      expect(minutes(triton?.create ?? "")).toBeGreaterThanOrEqual(30);
      expect(minutes(triton?.update ?? "")).toBeGreaterThanOrEqual(30);
    });

    it("builds the worker and Triton images with Cloud Build and deploys exactly the digests it pushed", () => {
      const registry = `us-central1-docker.pkg.dev/${project}/images-${stack}`;
      const digest = (name: string) => `sha256:${createHash("sha256").update(name).digest("hex")}`;
      const worker = run.one(T.command, "build-worker").inputs;
      const triton = run.one(T.command, "build-triton").inputs;
      expect(worker.create).toContain("gcloud builds submit");
      expect(worker.environment).toMatchObject({
        DOCKERFILE: "workers/Dockerfile",
        IGNORE_FILE: "infra/worker.gcloudignore",
        BUILDER: email("builder"),
        STAGING: `gs://${project}-${stack}-build-source/source`,
      });
      expect(worker.environment.IMAGE).toMatch(new RegExp(`^${registry}/worker:src-[0-9a-f]{16}$`));
      expect(triton.environment).toMatchObject({ DOCKERFILE: "triton.Dockerfile", TRITON_TAG: "26.08" });
      expect(triton.environment.IMAGE).toMatch(new RegExp(`^${registry}/triton:26\.08-[0-9a-f]{16}$`));
      expect(worker.triggers).toEqual([worker.environment.IMAGE]);
      expect(container(run.one(T.deployment, "worker")).image).toBe(`${registry}/worker@${digest("build-worker")}`);
      expect(container(run.one(T.deployment, "triton")).image).toBe(`${registry}/triton@${digest("build-triton")}`);
      expect(run.outputs.workerImage).toBe(`${registry}/worker@${digest("build-worker")}`);
      // Builds start once the build account's roles have propagated.
      expect(run.waitsFor(run.one(T.command, "build-worker"), run.one(T.command, "iam-propagation"))).toBe(true);
    });

    it("uploads the model repository, weights included, before Triton starts", () => {
      const objects = run.all(T.bucketObject).filter((o) => o.name.startsWith("model-"));
      const names = objects.map((o) => o.inputs.name);
      expect(names).toEqual(
        expect.arrayContaining([
          "model_repository/upscale/config.pbtxt",
          "model_repository/upscale/configs/gpu.pbtxt",
          "model_repository/upscale/1/model.py",
          "model_repository/upscale/1/srmdnf_x4.onnx",
          "model_repository/upscale/1/srmdnf_x4.fp16.onnx",
          "model_repository/upscale/1/realesrgan_x4plus.onnx",
          "model_repository/upscale/1/realesrgan_x4plus.fp16.onnx",
          "model_repository/enhance/1/srmd_x2_denoise.onnx",
          "model_repository/remove_background/1/isnet_medium.onnx",
          "model_repository/comic/1/model.py",
          "model_repository/aged/1/model.py",
          // Shared modules, linked into each model folder: uploaded at the link, as Triton reads them.
          "model_repository/comic/1/request_handling.py",
          "model_repository/upscale/1/request_handling.py",
        ]),
      );
      expect(names.filter((n) => n.includes("__pycache__"))).toEqual([]);
      for (const object of objects) expect(object.inputs.bucket).toBe(run.outputs.modelsBucket);
      const triton = run.one(T.deployment, "triton");
      for (const object of objects) expect(run.waitsFor(triton, object), object.name).toBe(true);
    });

    it("reads the GPU quota the pool needs before creating the pool", () => {
      const reads = run.calls.filter((c) => c.token === "gcp:cloudquota/getSQuotaInfo:getSQuotaInfo").map((c) => c.inputs.quotaId);
      expect(reads.sort()).toEqual(
        [expected.gpuSpot ? "PREEMPTIBLE-NVIDIA-T4-GPUS-per-project-region" : "NVIDIA-T4-GPUS-per-project-region", "GPUS-ALL-REGIONS-per-project"].sort(),
      );
      const maxNodes = Number(run.config["image-edit:gpuMaxNodes"]);
      expect(run.one(T.nodePool, "gpu").inputs.autoscaling.totalMaxNodeCount).toBe(maxNodes);
    });
  });

  describe("production safety", () => {
    it(`${expected.pointInTimeRecovery ? "keeps" : "skips"} point-in-time recovery and ${expected.backupRetentionDays ? "backs up daily" : "takes no backups"}`, () => {
      expect(run.one(T.database, "database").inputs.pointInTimeRecoveryEnablement).toBe(
        expected.pointInTimeRecovery ? "POINT_IN_TIME_RECOVERY_ENABLED" : "POINT_IN_TIME_RECOVERY_DISABLED",
      );
      const schedules = run.all(T.backupSchedule).map((b) => b.inputs);
      expect(schedules).toEqual(
        expected.backupRetentionDays
          ? [expect.objectContaining({ retention: `${expected.backupRetentionDays * 86400}s`, dailyRecurrence: {}, database: "(default)" })]
          : [],
      );
    });

    it("expires the quota counter's documents with a TTL policy on the field the API writes", () => {
      expect(run.one(T.field, "quota-counter-ttl").inputs).toMatchObject({
        database: "(default)",
        collection: "shards",
        field: "expiresAt",
        ttlConfig: {},
      });
    });

    it.each(["worker", "triton"])("keeps a PodDisruptionBudget on the %s pods", (name) => {
      const pdb = run.one(T.pdb, name).inputs;
      const deployment = run.one(T.deployment, name).inputs;
      expect(pdb.metadata.namespace).toBe("image-edit");
      expect(pdb.spec.selector.matchLabels).toEqual(deployment.spec.template.metadata.labels);
      expect(pdb.spec.maxUnavailable).toBeDefined();
      expect(pdb.spec.minAvailable).toBeUndefined();
    });

    it.each(["worker", "triton"])("runs the %s as a non-root user with no capabilities and a read-only image", (name) => {
      const pod = run.one(T.deployment, name).inputs.spec.template.spec;
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1000 });
      expect(pod.containers[0].securityContext).toEqual({
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
        readOnlyRootFilesystem: true,
      });
      // The one place each may write.
      expect(pod.containers[0].volumeMounts).toEqual(expect.arrayContaining([{ name: "tmp", mountPath: "/tmp" }]));
    });

    it(`${expected.authorizedNetworks.length ? "restricts" : "leaves open"} the cluster endpoint`, () => {
      const cluster = run.one(T.cluster, "gke").inputs;
      expect(cluster.privateClusterConfig.enablePrivateNodes).toBe(true);
      if (expected.authorizedNetworks.length) {
        expect(cluster.masterAuthorizedNetworksConfig).toEqual({
          cidrBlocks: expected.authorizedNetworks.map((cidrBlock) => ({ cidrBlock, displayName: "operators" })),
          gcpPublicCidrsAccessEnabled: false,
        });
      } else {
        expect(cluster.masterAuthorizedNetworksConfig).toBeUndefined();
      }
    });

    it(`notifies ${expected.alertEmails.length ? expected.alertEmails.join(", ") : "nobody"} on every alert`, () => {
      const channels = run.all(T.channel);
      expect(channels.map((c) => c.inputs.labels.email_address)).toEqual(expected.alertEmails);
      const names = channels.map((c) => `projects/${project}/notificationChannels/${c.name}`);
      for (const policy of run.all(T.alertPolicy)) expect(policy.inputs.notificationChannels ?? []).toEqual(names);
    });

    it("puts the CPU pool, like the GPU pool, behind the GKE metadata server", () => {
      expect(run.one(T.nodePool, "cpu").inputs.nodeConfig.workloadMetadataConfig).toEqual({ mode: "GKE_METADATA" });
    });
  });

  it("exports the real names of what the apps and operators use", () => {
    expect(run.outputs).toMatchObject({
      apiUrl: `https://api-${stack}-mock.a.run.app`,
      jobsTopic: `edit-jobs-${stack}`,
      jobsSubscription: `edit-jobs-worker-${stack}`,
      jobsBatchTopic: `edit-jobs-batch-${stack}`,
      jobsBatchSubscription: `edit-jobs-batch-worker-${stack}`,
      deadLetterTopic: `edit-jobs-dead-letter-${stack}`,
      deadLetterSubscription: `edit-jobs-dead-letter-handler-${stack}`,
      uploadsBucket: run.one(T.bucket, "uploads").inputs.name,
      resultsBucket: run.one(T.bucket, "results").inputs.name,
      modelsBucket: run.one(T.bucket, "models").inputs.name,
      tritonGrpcUrl: "triton.image-edit.svc.cluster.local:8001",
    });
  });
});

describe("stack configuration checks", () => {
  it("turns Google sign-in on with the stack's OAuth client, and refuses half of one", async () => {
    const withGoogle = await runInfraProgram("dev", { "image-edit:googleSignInClientId": "client-123.apps.googleusercontent.com", "image-edit:googleSignInClientSecret": "s3cret" });
    expect(withGoogle.one(T.idp, "google-sign-in").inputs).toMatchObject({ idpId: "google.com", enabled: true, clientId: "client-123.apps.googleusercontent.com" });
    expect(withGoogle.outputs.signInProviders).toEqual(["password", "anonymous", "google.com"]);
    await expect(runInfraProgram("dev", { "image-edit:googleSignInClientId": "client-123" })).rejects.toThrow(/googleSignInClientId and googleSignInClientSecret go together/);
  });

  it("refuses a worker grace period that would cut a Triton call short", async () => {
    await expect(
      runInfraProgram("dev", { "image-edit:tritonTimeoutMs": "120000", "image-edit:workerTerminationGraceSeconds": "120" }),
    ).rejects.toThrow(/workerTerminationGraceSeconds \(120\) must exceed tritonTimeoutMs/);
  });

  it("refuses more Triton replicas than GPU nodes", async () => {
    await expect(runInfraProgram("dev", { "image-edit:tritonMaxReplicas": "3" })).rejects.toThrow(/gpuMaxNodes/);
  });
});

describe("what cannot be automated fails first, with what to do", () => {
  it("refuses a project without billing", async () => {
    await expect(runInfraProgram("dev", {}, { project: { labels: { firebase: "enabled" } } })).rejects.toThrow(
      /project image-edit-dev has no billing account: link one with `gcloud billing projects link image-edit-dev/,
    );
  });

  it("refuses a project not added to Firebase", async () => {
    await expect(runInfraProgram("dev", {}, { project: { billingAccount: "012345-6789AB-CDEF01", labels: {} } })).rejects.toThrow(
      /project image-edit-dev is not added to Firebase.*firebase projects:addfirebase image-edit-dev/,
    );
  });

  it("names both when both are missing", () => {
    expect(projectProblems("p", {})).toHaveLength(2);
    expect(projectProblems("p", { billingAccount: "b", labels: { firebase: "enabled" } })).toEqual([]);
  });

  it("refuses a GPU quota below the pool's ceiling, naming the quota to raise", () => {
    const info = (quotaId: string, value: number, region?: string) => ({
      quotaId,
      dimensionsInfos: [{ dimensions: (region ? { region } : {}) as Record<string, string>, details: [{ value: String(value) }] }],
    });
    const config = { project: "p", region: "us-central1", gpuMaxNodes: 2, gpuAcceleratorType: "nvidia-tesla-t4" };
    expect(gpuQuotaIds({ gpuAcceleratorType: "nvidia-tesla-t4", gpuSpot: true })).toEqual([
      "PREEMPTIBLE-NVIDIA-T4-GPUS-per-project-region",
      "GPUS-ALL-REGIONS-per-project",
    ]);
    expect(gpuQuotaProblem(config, [info("NVIDIA-T4-GPUS-per-project-region", 4), info("GPUS-ALL-REGIONS-per-project", 2)])).toBeUndefined();
    // New projects start with no GPU anywhere.
    expect(gpuQuotaProblem(config, [info("NVIDIA-T4-GPUS-per-project-region", 4), info("GPUS-ALL-REGIONS-per-project", 0)])).toMatch(
      /lacks GPU quota for gpuMaxNodes=2 nvidia-tesla-t4 in us-central1 \(GPUS-ALL-REGIONS-per-project = 0\): request at least 2/,
    );
    // A region's own value wins over the default.
    const regional = { quotaId: "NVIDIA-T4-GPUS-per-project-region", dimensionsInfos: [...info("x", 8).dimensionsInfos, ...info("x", 1, "us-central1").dimensionsInfos] };
    expect(gpuQuotaProblem(config, [regional])).toMatch(/NVIDIA-T4-GPUS-per-project-region = 1/);
  });

  it("refuses to upload a model repository whose ONNX weights were never built", async () => {
    const dir = mkdtempSync(join(tmpdir(), "infra-models-missing-"));
    try {
      cpSync(modelRepositoryFixture(), dir, { recursive: true, filter: (path) => !path.endsWith("isnet_medium.onnx") });
      await expect(runInfraProgram("dev", { "image-edit:modelRepositoryDir": dir })).rejects.toThrow(
        /the model repository lacks remove_background\/1\/isnet_medium\.onnx: run `npm run models`/,
      );
      // Leaving the model out (its edit marked unavailable) is the other way.
      const run = await runInfraProgram("dev", { "image-edit:modelRepositoryDir": dir, "image-edit:excludedModels": '["remove_background"]' });
      expect(run.all(T.bucketObject).filter((o) => o.inputs.name?.includes("remove_background"))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it("refuses a production stack whose alerts page nobody or whose endpoint is open to all", async () => {
    await expect(runInfraProgram("prod", { "image-edit:alertEmails": "[]" })).rejects.toThrow(/alerts would page nobody: pulumi config set/);
    await expect(runInfraProgram("prod", { "image-edit:masterAuthorizedNetworks": "[]" })).rejects.toThrow(
      /cluster endpoint would be open to any address/,
    );
    await expect(runInfraProgram("prod", { "image-edit:masterAuthorizedNetworks": '["0.0.0.0/0"]' })).rejects.toThrow(/open to any address/);
  }, 30_000);

  it("runs a given image by digest instead of building it, and refuses one given by tag", async () => {
    const image = `us-central1-docker.pkg.dev/image-edit-dev/images-dev/worker@sha256:${"a".repeat(64)}`;
    const run = await runInfraProgram("dev", { "image-edit:workerImage": image });
    expect(run.all(T.command).map((c) => c.name)).not.toContain("build-worker");
    expect(run.one(T.deployment, "worker").inputs.spec.template.spec.containers[0].image).toBe(image);
    await expect(runInfraProgram("dev", { "image-edit:workerImage": "us-central1-docker.pkg.dev/p/r/worker:latest" })).rejects.toThrow(/workerImage/);
  }, 30_000);
});

describe("the worker's Cloud Build context", () => {
  it("leaves out what workers/Dockerfile.dockerignore leaves out, and nothing the build needs", () => {
    const root = new URL("../..", import.meta.url).pathname;
    const dockerignore = readFileSync(join(root, "workers/Dockerfile.dockerignore"), "utf8")
      .split("\n")
      .filter((line) => line.trim() && !line.startsWith("#"))
      .map((line) => (line.startsWith("**/") ? line : `/${line}`));
    const gcloudignore = readFileSync(join(root, "infra/worker.gcloudignore"), "utf8")
      .split("\n")
      .filter((line) => line.trim() && !line.startsWith("#"));
    expect(gcloudignore.sort()).toEqual(dockerignore.sort());
    const rules = ignoreRules(join(root, "infra/worker.gcloudignore"));
    for (const kept of ["package.json", "package-lock.json", "tsconfig.build.json", "workers/main.ts", "adapters/triton/inference.proto", "config/envValues.ts", "workers/Dockerfile", "events/decide.ts"]) {
      expect(rules.ignored(kept), kept).toBe(false);
    }
    for (const left of ["node_modules/x", "test/unit/a.ts", "triton/model_repository/a", "infra/index.ts", "a/b/model.onnx", "workers/__pycache__/x"]) {
      expect(rules.ignored(left), left).toBe(true);
    }
    // The tag follows the content: the same tree, the same tag (no rebuild).
    const ignore = join(root, "infra/worker.gcloudignore");
    expect(contextHash(root, ignore)).toBe(contextHash(root, ignore));
  });

  it("points the TTL policy at the collection group and field the request counter writes", () => {
    const counter = readFileSync(new URL("../../adapters/firestore/firestoreRequestCounter.ts", import.meta.url), "utf8");
    expect(counter).toContain(`.collection("${quotaCounterTtl.collectionGroup}")`);
    expect(counter).toContain(`{ ${quotaCounterTtl.field}: new Date(`);
  });
});
