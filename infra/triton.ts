/**
 * Triton Inference Server on the T4 pool: a Deployment that reads the model repository from the
 * models bucket (Workload Identity), a Service for gRPC, a PodMonitoring so Managed Prometheus
 * scrapes its metrics, and a KEDA ScaledObject that scales it on queue time (and from zero on the
 * job backlog).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

import { gpuTaint } from "./cluster.js";
import type { InfraConfig } from "./config.js";
import { kubernetesServiceAccounts } from "./identity.js";
import type { Keda } from "./autoscaling.js";
import { modelRepositoryPrefix } from "./storage.js";

export const tritonPorts = { http: 8000, grpc: 8001, metrics: 8002 } as const;

export interface TritonArgs {
  config: InfraConfig;
  namespace: pulumi.Input<string>;
  modelsBucket: pulumi.Input<string>;
  /** Full image reference (the NGC release plus onnxruntime-gpu, in Artifact Registry). */
  image: pulumi.Input<string>;
  googleServiceAccountEmail: pulumi.Input<string>;
  /** Full resource name of the jobs subscription: its backlog wakes Triton from zero. */
  jobsSubscriptionPath: pulumi.Input<string>;
  /** Full resource name of the batch jobs subscription: a batch backlog wakes Triton too. */
  jobsBatchSubscriptionPath: pulumi.Input<string>;
  keda: Keda;
  /** The model repository's objects: Triton reads them at start, so it starts after them. */
  modelFiles: pulumi.Resource[];
}

/**
 * The NGC image's unprivileged user (`triton-server`, uid/gid 1000). Triton needs no root: it
 * listens on ports above 1024 and reads the repository from Cloud Storage into /tmp.
 */
const tritonUser = 1000;

export class Triton extends pulumi.ComponentResource {
  readonly deployment: k8s.apps.v1.Deployment;
  readonly service: k8s.core.v1.Service;
  /** `host:port` of Triton's gRPC endpoint inside the cluster (TRITON_GRPC_URL). */
  readonly grpcUrl: pulumi.Output<string>;

  constructor(name: string, args: TritonArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:infra:Triton", name, {}, opts);
    const { config } = args;
    const labels = { app: "triton" };
    const ns = args.namespace;

    const serviceAccount = new k8s.core.v1.ServiceAccount(
      "triton",
      {
        metadata: {
          name: kubernetesServiceAccounts.triton,
          namespace: ns,
          annotations: { "iam.gke.io/gcp-service-account": args.googleServiceAccountEmail },
        },
      },
      { parent: this },
    );

    const tritonTimeoutSeconds = Math.ceil(config.tritonTimeoutMs / 1000);
    this.deployment = new k8s.apps.v1.Deployment(
      "triton",
      {
        metadata: { name: "triton", namespace: ns, labels },
        spec: {
          // No `replicas`: KEDA owns the count, and a value here would fight it on every update.
          selector: { matchLabels: labels },
          // A new pod must have loaded every model (ready) before an old one goes.
          strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
          template: {
            metadata: {
              labels,
              // Triton reads the repository only at start: a new revision here rolls the pods.
              annotations: { "image-edit/model-revision": config.modelRevision },
            },
            spec: {
              serviceAccountName: serviceAccount.metadata.name,
              nodeSelector: { "cloud.google.com/gke-accelerator": config.gpuAcceleratorType },
              tolerations: [
                { key: gpuTaint.key, operator: "Equal", value: gpuTaint.value, effect: "NoSchedule" },
              ],
              // In-flight inferences finish on SIGTERM (see --exit-timeout-secs) before the kill.
              terminationGracePeriodSeconds: tritonTimeoutSeconds + 15,
              securityContext: {
                runAsNonRoot: true,
                runAsUser: tritonUser,
                runAsGroup: tritonUser,
                fsGroup: tritonUser,
                seccompProfile: { type: "RuntimeDefault" },
              },
              containers: [
                {
                  name: "triton",
                  image: args.image,
                  command: ["tritonserver"],
                  args: [
                    pulumi.interpolate`--model-repository=gs://${args.modelsBucket}/${modelRepositoryPrefix}`,
                    // Every model must ship a complete config.pbtxt; no guessing shapes in prod.
                    "--strict-model-config=true",
                    // configs/<name>.pbtxt beside each config.pbtxt switches instance groups to
                    // KIND_GPU; models without one keep their default config.
                    `--model-config-name=${config.tritonModelConfigName}`,
                    `--http-port=${tritonPorts.http}`,
                    `--grpc-port=${tritonPorts.grpc}`,
                    `--metrics-port=${tritonPorts.metrics}`,
                    "--allow-metrics=true",
                    "--allow-gpu-metrics=true",
                    `--exit-timeout-secs=${tritonTimeoutSeconds}`,
                  ],
                  ports: [
                    { name: "http", containerPort: tritonPorts.http },
                    { name: "grpc", containerPort: tritonPorts.grpc },
                    { name: "metrics", containerPort: tritonPorts.metrics },
                  ],
                  resources: {
                    // Sized for n1-standard-4 after GKE's reservations and the GPU daemonsets.
                    requests: { cpu: "2", memory: "8Gi", "nvidia.com/gpu": "1" },
                    limits: { memory: "10Gi", "nvidia.com/gpu": "1" },
                  },
                  // Loading models from Cloud Storage can take minutes on a fresh node; the
                  // endpoints only come up after, so the startup probe allows 10 minutes.
                  startupProbe: {
                    httpGet: { path: "/v2/health/live", port: "http" },
                    periodSeconds: 10,
                    failureThreshold: 60,
                  },
                  livenessProbe: {
                    httpGet: { path: "/v2/health/live", port: "http" },
                    periodSeconds: 10,
                    failureThreshold: 3,
                  },
                  // Ready = every model loaded; only then does the Service send it tile batches.
                  readinessProbe: {
                    httpGet: { path: "/v2/health/ready", port: "http" },
                    periodSeconds: 5,
                    failureThreshold: 3,
                  },
                  env: [
                    // CUDA's kernel cache goes under $HOME by default, which is read-only here.
                    { name: "CUDA_CACHE_PATH", value: "/tmp/cuda-cache" },
                    { name: "HOME", value: "/tmp" },
                  ],
                  securityContext: {
                    allowPrivilegeEscalation: false,
                    capabilities: { drop: ["ALL"] },
                    // Writable: /tmp (the repository Triton copies from Cloud Storage, caches)
                    // and /dev/shm only.
                    readOnlyRootFilesystem: true,
                  },
                  // The Python backend passes tensors through shared memory; the container
                  // runtime's 64 MiB /dev/shm is too small for a batch of 16 large tiles.
                  volumeMounts: [
                    { name: "dshm", mountPath: "/dev/shm" },
                    { name: "tmp", mountPath: "/tmp" },
                  ],
                },
              ],
              volumes: [
                { name: "dshm", emptyDir: { medium: "Memory", sizeLimit: "2Gi" } },
                // The model repository (~100 MB with the ONNX weights) plus CUDA's cache.
                { name: "tmp", emptyDir: { sizeLimit: "4Gi" } },
              ],
            },
          },
        },
      },
      {
        parent: this,
        dependsOn: args.modelFiles,
        // The first pod waits for a GPU node from zero (autoscaler, driver install), the image
        // (streamed) and every model loaded from Cloud Storage: past Pulumi's 10 minutes.
        customTimeouts: { create: "40m", update: "40m" },
      },
    );

    // Node upgrades and autoscaler scale-downs evict one Triton at a time; the others keep
    // serving the workers' batches (a single replica may still go: it would block the upgrade).
    new k8s.policy.v1.PodDisruptionBudget(
      "triton",
      {
        metadata: { name: "triton", namespace: ns, labels },
        spec: { selector: { matchLabels: labels }, maxUnavailable: 1 },
      },
      { parent: this },
    );

    // ClusterIP, not headless: the worker's gRPC channel picks one address per connection, and
    // kube-proxy then spreads the workers' connections over the replicas.
    this.service = new k8s.core.v1.Service(
      "triton",
      {
        metadata: { name: "triton", namespace: ns, labels },
        spec: {
          selector: labels,
          ports: [
            { name: "grpc", port: tritonPorts.grpc, targetPort: "grpc", appProtocol: "kubernetes.io/h2c" },
            { name: "http", port: tritonPorts.http, targetPort: "http" },
            { name: "metrics", port: tritonPorts.metrics, targetPort: "metrics" },
          ],
        },
      },
      { parent: this },
    );
    this.grpcUrl = pulumi.interpolate`${this.service.metadata.name}.${ns}.svc.cluster.local:${tritonPorts.grpc}`;

    new k8s.apiextensions.CustomResource(
      "triton-metrics",
      {
        apiVersion: "monitoring.googleapis.com/v1",
        kind: "PodMonitoring",
        metadata: { name: "triton", namespace: ns },
        spec: {
          selector: { matchLabels: labels },
          endpoints: [{ port: "metrics", path: "/metrics", interval: "15s" }],
        },
      },
      { parent: this },
    );

    // Average time a request waits in Triton's queue (µs). The dynamic batcher adds up to 2 ms
    // on purpose; more than the target means the GPU is the bottleneck and another T4 helps.
    // GPU utilisation would be a worse signal: a T4 can be busy and still keep up.
    const queueQuery =
      `sum(rate(nv_inference_queue_duration_us{namespace="${config.namespace}"}[2m])) / ` +
      `clamp_min(sum(rate(nv_inference_request_success{namespace="${config.namespace}"}[2m])), 0.001)`;
    new k8s.apiextensions.CustomResource(
      "triton-scaler",
      {
        apiVersion: "keda.sh/v1alpha1",
        kind: "ScaledObject",
        metadata: { name: "triton", namespace: ns },
        spec: {
          scaleTargetRef: { name: this.deployment.metadata.name },
          minReplicaCount: config.tritonMinReplicas,
          maxReplicaCount: config.tritonMaxReplicas,
          pollingInterval: 30,
          // A GPU node takes minutes to come back; stay up 10 idle minutes before going to zero.
          cooldownPeriod: 600,
          triggers: [
            // Any queued job, of either priority, wakes Triton; the backlog alone never asks for
            // more than one replica per full fleet of workers' worth, queue time decides beyond that.
            ...[args.jobsSubscriptionPath, args.jobsBatchSubscriptionPath].map((subscriptionName) => ({
              type: "gcp-pubsub",
              metadata: {
                subscriptionName,
                mode: "SubscriptionSize",
                value: String(config.workerMaxReplicas * config.workerBacklogPerReplica),
                activationValue: "0",
              },
              authenticationRef: { name: args.keda.triggerAuthenticationName },
            })),
            {
              type: "prometheus",
              // "Value": replicas scale in proportion to how far queue time is over target.
              metricType: "Value",
              metadata: {
                serverAddress: `https://monitoring.googleapis.com/v1/projects/${config.project}/location/global/prometheus`,
                query: queueQuery,
                threshold: String(config.tritonQueueTargetMicros),
                // No samples (Triton at zero) reads as zero queue time, not as an error.
                ignoreNullValues: "true",
              },
              authenticationRef: { name: args.keda.triggerAuthenticationName },
            },
          ],
        },
      },
      { parent: this, dependsOn: [args.keda.triggerAuthentication] },
    );
    this.registerOutputs({ grpcUrl: this.grpcUrl });
  }
}
