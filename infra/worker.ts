/**
 * The worker: a Deployment of workers/Dockerfile on the CPU pool, running as the worker Google
 * account through Workload Identity, scaled by KEDA on the jobs subscription's backlog.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

import type { Keda } from "./autoscaling.js";
import type { InfraConfig } from "./config.js";
import { kubernetesServiceAccounts } from "./identity.js";

/** The worker's Prometheus /metrics port (the OpenTelemetry Prometheus exporter's default). */
export const workerMetricsPort = 9464;

export interface WorkerArgs {
  config: InfraConfig;
  namespace: pulumi.Input<string>;
  image: pulumi.Input<string>;
  googleServiceAccountEmail: pulumi.Input<string>;
  jobsSubscription: pulumi.Input<string>;
  /** Full resource name of the jobs subscription, for KEDA. */
  jobsSubscriptionPath: pulumi.Input<string>;
  jobsBatchSubscription: pulumi.Input<string>;
  /** Full resource name of the batch jobs subscription, for KEDA. */
  jobsBatchSubscriptionPath: pulumi.Input<string>;
  uploadsBucket: pulumi.Input<string>;
  resultsBucket: pulumi.Input<string>;
  tritonGrpcUrl: pulumi.Input<string>;
  keda: Keda;
}

export class Worker extends pulumi.ComponentResource {
  readonly deployment: k8s.apps.v1.Deployment;

  constructor(name: string, args: WorkerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:infra:Worker", name, {}, opts);
    const { config } = args;
    const labels = { app: "worker" };
    const ns = args.namespace;

    const serviceAccount = new k8s.core.v1.ServiceAccount(
      "worker",
      {
        metadata: {
          name: kubernetesServiceAccounts.worker,
          namespace: ns,
          annotations: { "iam.gke.io/gcp-service-account": args.googleServiceAccountEmail },
        },
      },
      { parent: this },
    );

    this.deployment = new k8s.apps.v1.Deployment(
      "worker",
      {
        metadata: { name: "worker", namespace: ns, labels },
        spec: {
          // No `replicas`: KEDA owns the count.
          selector: { matchLabels: labels },
          strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
          template: {
            metadata: { labels },
            spec: {
              serviceAccountName: serviceAccount.metadata.name,
              // On SIGTERM the worker stops pulling and finishes the tile batch in flight (bounded
              // by TRITON_TIMEOUT_MS), stitches, writes and records it; only then may the pod die.
              // Shorter, and a rollout or scale-down would throw away a batch and redo it.
              // (Spot preemption gives only ~30 s whatever this says; idempotency covers that.)
              terminationGracePeriodSeconds: config.workerTerminationGraceSeconds,
              // The image's `node` user; nothing in the worker needs root or a writable image.
              securityContext: {
                runAsNonRoot: true,
                runAsUser: 1000,
                runAsGroup: 1000,
                seccompProfile: { type: "RuntimeDefault" },
              },
              containers: [
                {
                  name: "worker",
                  image: args.image,
                  env: [
                    { name: "GCP_PROJECT", value: config.project },
                    { name: "JOBS_SUBSCRIPTION", value: args.jobsSubscription },
                    { name: "JOBS_BATCH_SUBSCRIPTION", value: args.jobsBatchSubscription },
                    { name: "JOB_DEADLINE_SECONDS", value: String(config.jobDeadlineSeconds) },
                    // The result cache reuses no result the bucket's lifecycle rule may have deleted.
                    { name: "RESULTS_LIFECYCLE_DAYS", value: String(config.resultsLifecycleDays) },
                    { name: "UPLOADS_BUCKET", value: args.uploadsBucket },
                    { name: "RESULTS_BUCKET", value: args.resultsBucket },
                    { name: "TRITON_GRPC_URL", value: args.tritonGrpcUrl },
                    { name: "WORKER_MAX_MESSAGES", value: String(config.workerMaxMessages) },
                    { name: "TRITON_TIMEOUT_MS", value: String(config.tritonTimeoutMs) },
                    { name: "MAX_ATTEMPTS", value: String(config.maxDeliveryAttempts) },
                    { name: "MAX_INPUT_BYTES", value: String(config.maxUploadBytes) },
                    { name: "METRICS_PORT", value: String(workerMetricsPort) },
                  ],
                  ports: [{ name: "metrics", containerPort: workerMetricsPort }],
                  // An output may reach 160 MP (640 MB as RGBA) before encoding, with
                  // WORKER_MAX_MESSAGES jobs in flight; the limit keeps one huge job from
                  // starving its neighbours on the node.
                  resources: {
                    requests: { cpu: "1", memory: "3Gi" },
                    limits: { memory: "6Gi" },
                  },
                  securityContext: {
                    allowPrivilegeEscalation: false,
                    capabilities: { drop: ["ALL"] },
                    readOnlyRootFilesystem: true,
                  },
                  // Images stream through memory; /tmp is there for libvips' rare spills.
                  volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
                },
              ],
              volumes: [{ name: "tmp", emptyDir: { sizeLimit: "1Gi" } }],
            },
          },
        },
      },
      // A worker pod may wait for a CPU node from the autoscaler.
      { parent: this, customTimeouts: { create: "20m", update: "20m" } },
    );

    // Drains (node upgrades, autoscaler) take a quarter of the workers at a time: the rest keep
    // pulling, and an evicted worker finishes its batch in its grace period.
    new k8s.policy.v1.PodDisruptionBudget(
      "worker",
      {
        metadata: { name: "worker", namespace: ns, labels },
        spec: { selector: { matchLabels: labels }, maxUnavailable: "25%" },
      },
      { parent: this },
    );

    // Managed Prometheus scrapes the worker's /metrics; the alert policies (infra/alerts.ts)
    // query what it collects.
    new k8s.apiextensions.CustomResource(
      "worker-metrics",
      {
        apiVersion: "monitoring.googleapis.com/v1",
        kind: "PodMonitoring",
        metadata: { name: "worker", namespace: ns },
        spec: {
          selector: { matchLabels: labels },
          endpoints: [{ port: "metrics", path: "/metrics", interval: "30s" }],
        },
      },
      { parent: this },
    );

    new k8s.apiextensions.CustomResource(
      "worker-scaler",
      {
        apiVersion: "keda.sh/v1alpha1",
        kind: "ScaledObject",
        metadata: { name: "worker", namespace: ns },
        spec: {
          scaleTargetRef: { name: this.deployment.metadata.name },
          minReplicaCount: config.workerMinReplicas,
          maxReplicaCount: config.workerMaxReplicas,
          pollingInterval: 15,
          cooldownPeriod: 300,
          advanced: {
            horizontalPodAutoscalerConfig: {
              behavior: {
                // Pub/Sub metrics reach Cloud Monitoring 1-3 minutes late: wait out a stale low
                // reading before removing workers that are still busy.
                scaleDown: { stabilizationWindowSeconds: 300 },
              },
            },
          },
          // One trigger per priority: KEDA scales on the larger, so a batch backlog alone also
          // brings workers, which take it while no interactive job waits.
          triggers: [args.jobsSubscriptionPath, args.jobsBatchSubscriptionPath].map((subscriptionName) => ({
            type: "gcp-pubsub",
            metadata: {
              subscriptionName,
              mode: "SubscriptionSize",
              value: String(config.workerBacklogPerReplica),
              activationValue: "0",
            },
            authenticationRef: { name: args.keda.triggerAuthenticationName },
          })),
        },
      },
      { parent: this, dependsOn: [args.keda.triggerAuthentication] },
    );
    this.registerOutputs({});
  }
}
