/**
 * One Google service account per deployable, each with only the roles its code uses, granted on
 * the narrowest resource that has them (a bucket, a topic), and Workload Identity bindings that
 * let exactly one Kubernetes service account act as each in-cluster account.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

import { stackName, type InfraConfig } from "./config.js";

/** Kubernetes service accounts bound to Google ones (namespace of the app comes from config). */
export const kubernetesServiceAccounts = {
  worker: "worker",
  triton: "triton",
  /** The KEDA chart's operator account, in KEDA's own namespace. */
  keda: { namespace: "keda", name: "keda-operator" },
} as const;

export interface IdentityArgs {
  config: InfraConfig;
  uploadsBucket: pulumi.Input<string>;
  resultsBucket: pulumi.Input<string>;
  modelsBucket: pulumi.Input<string>;
  jobsTopic: pulumi.Input<string>;
  jobsSubscription: pulumi.Input<string>;
  registry: gcp.artifactregistry.Repository;
}

export class Identity extends pulumi.ComponentResource {
  readonly api: gcp.serviceaccount.Account;
  readonly uploadTrigger: gcp.serviceaccount.Account;
  readonly worker: gcp.serviceaccount.Account;
  readonly triton: gcp.serviceaccount.Account;
  readonly keda: gcp.serviceaccount.Account;
  readonly nodes: gcp.serviceaccount.Account;

  constructor(name: string, args: IdentityArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:infra:Identity", name, {}, opts);
    const { config } = args;
    const project = config.project;
    const account = (id: string, displayName: string) =>
      new gcp.serviceaccount.Account(
        id,
        { project, accountId: stackName(config, id), displayName: `${displayName} (${config.stack})` },
        { parent: this },
      );
    const member = (sa: gcp.serviceaccount.Account) => pulumi.interpolate`serviceAccount:${sa.email}`;
    const projectRole = (id: string, sa: gcp.serviceaccount.Account | pulumi.Output<string>, role: string) =>
      new gcp.projects.IAMMember(
        id,
        { project, role, member: sa instanceof gcp.serviceaccount.Account ? member(sa) : sa },
        { parent: this },
      );
    const bucketRole = (id: string, bucket: pulumi.Input<string>, sa: gcp.serviceaccount.Account, role: string) =>
      new gcp.storage.BucketIAMMember(id, { bucket, role, member: member(sa) }, { parent: this });
    const workloadIdentity = (id: string, sa: gcp.serviceaccount.Account, namespace: string, ksa: string) =>
      new gcp.serviceaccount.IAMMember(
        id,
        {
          serviceAccountId: sa.name,
          role: "roles/iam.workloadIdentityUser",
          member: `serviceAccount:${project}.svc.id.goog[${namespace}/${ksa}]`,
        },
        { parent: this },
      );

    // --- The HTTP API (Cloud Function `api`).
    this.api = account("api", "Image edit API");
    projectRole("api-firestore", this.api, "roles/datastore.user");
    new gcp.pubsub.TopicIAMMember(
      "api-publish-jobs",
      { project, topic: args.jobsTopic, role: "roles/pubsub.publisher", member: member(this.api) },
      { parent: this },
    );
    // Signed upload URLs are checked against the signer's permissions: it must be able to write.
    bucketRole("api-uploads", args.uploadsBucket, this.api, "roles/storage.objectAdmin");
    // Signed result URLs only need read.
    bucketRole("api-results", args.resultsBucket, this.api, "roles/storage.objectViewer");
    // With no key file, signing goes through IAM signBlob on the function's own account.
    new gcp.serviceaccount.IAMMember(
      "api-sign-blob",
      { serviceAccountId: this.api.name, role: "roles/iam.serviceAccountTokenCreator", member: member(this.api) },
      { parent: this },
    );

    // --- The upload trigger (Cloud Function `uploadFinalized`). It reads the object's metadata,
    // appends events and publishes; it never writes objects.
    this.uploadTrigger = account("upload-trigger", "Image edit upload trigger");
    projectRole("upload-trigger-firestore", this.uploadTrigger, "roles/datastore.user");
    // Eventarc delivers the storage event with this account's identity.
    projectRole("upload-trigger-event-receiver", this.uploadTrigger, "roles/eventarc.eventReceiver");
    new gcp.pubsub.TopicIAMMember(
      "upload-trigger-publish-jobs",
      { project, topic: args.jobsTopic, role: "roles/pubsub.publisher", member: member(this.uploadTrigger) },
      { parent: this },
    );
    // objectUser, not objectViewer: an upload over the size limit or of the wrong type is deleted
    // when its job is failed (functions/uploadFinalized.ts).
    bucketRole("upload-trigger-uploads", args.uploadsBucket, this.uploadTrigger, "roles/storage.objectUser");
    // Storage events reach Eventarc through Pub/Sub, published by the Cloud Storage service agent.
    const storageAgent = gcp.storage.getProjectServiceAccountOutput({ project }, { parent: this }).emailAddress;
    projectRole("storage-agent-publisher", pulumi.interpolate`serviceAccount:${storageAgent}`, "roles/pubsub.publisher");

    // --- The worker (GKE), through Workload Identity.
    this.worker = account("worker", "Image edit worker");
    projectRole("worker-firestore", this.worker, "roles/datastore.user");
    new gcp.pubsub.SubscriptionIAMMember(
      "worker-subscribe-jobs",
      { project, subscription: args.jobsSubscription, role: "roles/pubsub.subscriber", member: member(this.worker) },
      { parent: this },
    );
    bucketRole("worker-uploads", args.uploadsBucket, this.worker, "roles/storage.objectViewer");
    // objectUser, not objectCreator: a redelivered job rewrites the same result object, and
    // overwriting needs delete permission.
    bucketRole("worker-results", args.resultsBucket, this.worker, "roles/storage.objectUser");
    workloadIdentity("worker-workload-identity", this.worker, config.namespace, kubernetesServiceAccounts.worker);

    // --- Triton reads the model repository, nothing else.
    this.triton = account("triton", "Triton model reader");
    bucketRole("triton-models", args.modelsBucket, this.triton, "roles/storage.objectViewer");
    workloadIdentity("triton-workload-identity", this.triton, config.namespace, kubernetesServiceAccounts.triton);

    // --- KEDA reads the subscription backlog and Triton's Managed Prometheus metrics.
    this.keda = account("keda", "KEDA metrics reader");
    projectRole("keda-monitoring", this.keda, "roles/monitoring.viewer");
    workloadIdentity(
      "keda-workload-identity",
      this.keda,
      kubernetesServiceAccounts.keda.namespace,
      kubernetesServiceAccounts.keda.name,
    );

    // --- GKE nodes. Not the Compute Engine default account: that one holds roles/editor.
    this.nodes = account("gke-nodes", "GKE nodes");
    projectRole("nodes-default", this.nodes, "roles/container.defaultNodeServiceAccount");
    new gcp.artifactregistry.RepositoryIamMember(
      "nodes-pull-images",
      {
        project,
        location: args.registry.location,
        repository: args.registry.name,
        role: "roles/artifactregistry.reader",
        member: member(this.nodes),
      },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
