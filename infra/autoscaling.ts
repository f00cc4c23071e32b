/**
 * KEDA, the one autoscaler for both deployments.
 *
 * Why KEDA and not an HPA on the external metric
 * `pubsub.googleapis.com|subscription|num_undelivered_messages` (Custom Metrics Stackdriver
 * Adapter):
 * - Scale to zero. An HPA's floor is one replica; KEDA activates a deployment from zero on the
 *   first undelivered message. That is what lets dev (and Triton everywhere) cost nothing idle,
 *   and Triton at zero is what lets the GPU pool drain to zero nodes.
 * - One adapter, two signals. Triton scales on its queue time from Managed Prometheus and the
 *   workers on the Pub/Sub backlog. KEDA reads both (its `prometheus` scaler speaks to the
 *   Managed Prometheus query API, its `gcp-pubsub` scaler to Cloud Monitoring), while the
 *   Stackdriver adapter and KEDA cannot both serve `external.metrics.k8s.io`.
 * - Workload Identity throughout: KEDA's operator uses a Google account with only
 *   `roles/monitoring.viewer`; no key files.
 * KEDA still drives a plain HPA underneath, so `kubectl get hpa` shows what it decided.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

import { kubernetesServiceAccounts } from "./identity.js";

/** Pinned chart; bump on purpose (KEDA's CRDs change between minors). */
export const kedaChartVersion = "2.17.2";

export interface KedaArgs {
  /** Namespace of the scaled workloads; the TriggerAuthentication lives there. */
  namespace: pulumi.Input<string>;
  /** Google service account the operator impersonates (monitoring.viewer). */
  googleServiceAccountEmail: pulumi.Input<string>;
}

export class Keda extends pulumi.ComponentResource {
  readonly release: k8s.helm.v3.Release;
  /** Name of the TriggerAuthentication that ScaledObjects reference. */
  readonly triggerAuthenticationName = "gcp-workload-identity";
  readonly triggerAuthentication: k8s.apiextensions.CustomResource;

  constructor(name: string, args: KedaArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:infra:Keda", name, {}, opts);
    this.release = new k8s.helm.v3.Release(
      "keda",
      {
        name: "keda",
        chart: "keda",
        version: kedaChartVersion,
        repositoryOpts: { repo: "https://kedacore.github.io/charts" },
        namespace: kubernetesServiceAccounts.keda.namespace,
        createNamespace: true,
        values: {
          // Annotates the operator's service account for Workload Identity.
          podIdentity: { gcp: { enabled: true, gcpIAMServiceAccount: args.googleServiceAccountEmail } },
        },
      },
      { parent: this },
    );
    this.triggerAuthentication = new k8s.apiextensions.CustomResource(
      "gcp-workload-identity",
      {
        apiVersion: "keda.sh/v1alpha1",
        kind: "TriggerAuthentication",
        metadata: { name: this.triggerAuthenticationName, namespace: args.namespace },
        spec: { podIdentity: { provider: "gcp" } },
      },
      { parent: this, dependsOn: [this.release] },
    );
    this.registerOutputs({});
  }
}
