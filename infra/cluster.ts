/**
 * The GKE cluster: Workload Identity, Managed Prometheus, private nodes, and two node pools:
 * CPU nodes for the workers and KEDA, and T4 GPU nodes that only Triton may use.
 */
import * as gcp from "@pulumi/gcp";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

import { stackName, type InfraConfig } from "./config.js";
import { networkRanges, type Network } from "./network.js";

/** The taint on GPU nodes; Triton tolerates it, nothing else does. */
export const gpuTaint = { key: "nvidia.com/gpu", value: "present", effect: "NO_SCHEDULE" } as const;

export interface ClusterArgs {
  config: InfraConfig;
  network: Network;
  nodeServiceAccount: pulumi.Input<string>;
  /** The GPU pool's ceiling, once the GPU quota is known to allow it (infra/preflight.ts). */
  gpuMaxNodes: pulumi.Input<number>;
}

export class Cluster extends pulumi.ComponentResource {
  readonly cluster: gcp.container.Cluster;
  readonly cpuPool: gcp.container.NodePool;
  readonly gpuPool: gcp.container.NodePool;
  readonly kubeconfig: pulumi.Output<string>;
  readonly provider: k8s.Provider;

  constructor(name: string, args: ClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:infra:Cluster", name, {}, opts);
    const { config, network } = args;
    const project = config.project;

    this.cluster = new gcp.container.Cluster(
      "gke",
      {
        project,
        name: stackName(config, "image-edit"),
        location: config.clusterLocation,
        network: network.network.id,
        subnetwork: network.subnetwork.id,
        networkingMode: "VPC_NATIVE",
        ipAllocationPolicy: {
          clusterSecondaryRangeName: network.podsRangeName,
          servicesSecondaryRangeName: network.servicesRangeName,
        },
        // Nodes have no public IPs; the API endpoint stays public so `pulumi up` can reach it,
        // from the authorized networks only where the stack names them (production must).
        privateClusterConfig: {
          enablePrivateNodes: true,
          enablePrivateEndpoint: false,
          masterIpv4CidrBlock: networkRanges.controlPlane,
        },
        masterAuthorizedNetworksConfig: config.masterAuthorizedNetworks.length
          ? {
              cidrBlocks: config.masterAuthorizedNetworks.map((cidrBlock) => ({ cidrBlock, displayName: "operators" })),
              // Not every Google Cloud address: a VM in anyone's project must not reach it.
              gcpPublicCidrsAccessEnabled: false,
            }
          : undefined,
        // Pools are managed below; the default pool would be an unmanaged third pool.
        removeDefaultNodePool: true,
        initialNodeCount: 1,
        releaseChannel: { channel: "REGULAR" },
        workloadIdentityConfig: { workloadPool: `${project}.svc.id.goog` },
        // Managed Prometheus scrapes Triton's and the worker's /metrics (PodMonitoring resources).
        monitoringConfig: {
          enableComponents: ["SYSTEM_COMPONENTS"],
          managedPrometheus: { enabled: true },
        },
        deletionProtection: config.protectData,
      },
      // A regional control plane takes 10-20 minutes to create and longer to upgrade; the
      // provider's defaults (40 min) leave too little margin on a slow day.
      { parent: this, customTimeouts: { create: "60m", update: "90m", delete: "60m" } },
    );

    const nodeLocations = config.nodeZones ? [...config.nodeZones] : undefined;
    const commonNodeConfig = {
      serviceAccount: args.nodeServiceAccount,
      oauthScopes: ["https://www.googleapis.com/auth/cloud-platform"],
      // Pods see the GKE metadata server, which is what makes Workload Identity work.
      workloadMetadataConfig: { mode: "GKE_METADATA" },
      shieldedInstanceConfig: { enableSecureBoot: true, enableIntegrityMonitoring: true },
    };

    this.cpuPool = new gcp.container.NodePool(
      "cpu",
      {
        project,
        cluster: this.cluster.name,
        location: config.clusterLocation,
        nodeLocations,
        name: "cpu",
        // total*: the same numbers mean the same thing for zonal and regional clusters.
        autoscaling: { totalMinNodeCount: config.cpuMinNodes, totalMaxNodeCount: config.cpuMaxNodes },
        management: { autoRepair: true, autoUpgrade: true },
        nodeConfig: {
          ...commonNodeConfig,
          machineType: config.cpuMachineType,
          spot: config.cpuSpot,
          diskType: "pd-balanced",
          diskSizeGb: 50,
          labels: { "image-edit/pool": "cpu" },
        },
      },
      { parent: this },
    );

    this.gpuPool = new gcp.container.NodePool(
      "gpu",
      {
        project,
        cluster: this.cluster.name,
        location: config.clusterLocation,
        nodeLocations,
        name: "gpu-t4",
        // Scales to zero: an idle T4 costs ~$250/month on demand; KEDA scales Triton to zero
        // when no job waits, and the autoscaler then removes the node.
        autoscaling: { totalMinNodeCount: 0, totalMaxNodeCount: args.gpuMaxNodes, locationPolicy: "ANY" },
        management: { autoRepair: true, autoUpgrade: true },
        nodeConfig: {
          ...commonNodeConfig,
          machineType: config.gpuMachineType,
          spot: config.gpuSpot,
          guestAccelerators: [
            {
              type: config.gpuAcceleratorType,
              count: 1,
              // GKE installs and upgrades the NVIDIA driver; no driver DaemonSet of our own.
              gpuDriverInstallationConfig: { gpuDriverVersion: config.gpuDriverVersion },
            },
          ],
          // Keeps workers and system pods off the expensive nodes, so the pool can drain to zero.
          taints: [{ ...gpuTaint }],
          // The Triton image is ~15 GB; image streaming starts it in seconds on a fresh node
          // instead of minutes, which is most of a scale-from-zero cold start.
          gcfsConfig: { enabled: true },
          diskType: "pd-balanced",
          diskSizeGb: 100,
          labels: { "image-edit/pool": "gpu" },
        },
      },
      // GPU capacity can be scarce in a zone: creating or upgrading the pool waits for it.
      { parent: this, customTimeouts: { create: "60m", update: "90m", delete: "60m" } },
    );

    this.kubeconfig = pulumi
      .all([this.cluster.name, this.cluster.endpoint, this.cluster.masterAuth.clusterCaCertificate])
      .apply(([clusterName, endpoint, caCertificate]) => kubeconfigFor(clusterName, endpoint, caCertificate ?? ""));
    this.provider = new k8s.Provider(
      "gke",
      // Wait for the pools so that workloads never race an empty cluster.
      { kubeconfig: this.kubeconfig, enableServerSideApply: true },
      { parent: this, dependsOn: [this.cpuPool, this.gpuPool] },
    );
    this.registerOutputs({ kubeconfig: this.kubeconfig });
  }
}

/** A kubeconfig that authenticates with gke-gcloud-auth-plugin (the operator's gcloud login). */
function kubeconfigFor(clusterName: string, endpoint: string, caCertificate: string): string {
  const context = `gke_${clusterName}`;
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: context, cluster: { server: `https://${endpoint}`, "certificate-authority-data": caCertificate } }],
    contexts: [{ name: context, context: { cluster: context, user: context } }],
    "current-context": context,
    users: [
      {
        name: context,
        user: {
          exec: {
            apiVersion: "client.authentication.k8s.io/v1beta1",
            command: "gke-gcloud-auth-plugin",
            installHint: "Install gke-gcloud-auth-plugin: gcloud components install gke-gcloud-auth-plugin",
            provideClusterInfo: true,
          },
        },
      },
    ],
  });
}
