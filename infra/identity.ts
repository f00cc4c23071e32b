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
  /** The batch jobs' topic and subscription: published and pulled by the same accounts as the interactive ones. */
  jobsBatchTopic: pulumi.Input<string>;
  jobsBatchSubscription: pulumi.Input<string>;
  registry: gcp.artifactregistry.Repository;
  /** Where image builds stage their source (read by the build account). */
  buildSourceBucket: pulumi.Input<string>;
  /** The project's number, which names Google's service agents and Cloud Functions' source buckets. */
  projectNumber: pulumi.Input<string>;
}

export class Identity extends pulumi.ComponentResource {
  readonly api: gcp.serviceaccount.Account;
  readonly uploadTrigger: gcp.serviceaccount.Account;
  /** The webhook trigger (Cloud Function `webhookEvents`). */
  readonly webhooks: gcp.serviceaccount.Account;
  readonly worker: gcp.serviceaccount.Account;
  readonly triton: gcp.serviceaccount.Account;
  readonly keda: gcp.serviceaccount.Account;
  readonly nodes: gcp.serviceaccount.Account;
  readonly builder: gcp.serviceaccount.Account;
  /**
   * Grants that Google services check when first used (Eventarc's agent, the build account):
   * `up` waits for them to propagate before creating triggers and starting builds.
   */
  readonly agentGrants: pulumi.Resource[];

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

    // --- The HTTP API (Cloud Function `api`).
    this.api = account("api", "Image edit API");
    projectRole("api-firestore", this.api, "roles/datastore.user");
    new gcp.pubsub.TopicIAMMember(
      "api-publish-jobs",
      { project, topic: args.jobsTopic, role: "roles/pubsub.publisher", member: member(this.api) },
      { parent: this },
    );
    new gcp.pubsub.TopicIAMMember(
      "api-publish-batch-jobs",
      { project, topic: args.jobsBatchTopic, role: "roles/pubsub.publisher", member: member(this.api) },
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
    new gcp.pubsub.TopicIAMMember(
      "upload-trigger-publish-batch-jobs",
      { project, topic: args.jobsBatchTopic, role: "roles/pubsub.publisher", member: member(this.uploadTrigger) },
      { parent: this },
    );
    // objectUser, not objectViewer: an upload over the size limit or of the wrong type is deleted
    // when its job is failed (functions/uploadFinalized.ts).
    bucketRole("upload-trigger-uploads", args.uploadsBucket, this.uploadTrigger, "roles/storage.objectUser");
    // --- The webhook trigger (Cloud Function `webhookEvents`): it reads a job's log, writes the
    // webhook outbox and reads the owner's secret (Firestore), and puts a signed result URL in
    // the message, as the API does (read on results, signBlob on itself). Nothing else.
    this.webhooks = account("webhooks", "Image edit webhooks");
    projectRole("webhooks-firestore", this.webhooks, "roles/datastore.user");
    // Eventarc delivers the Firestore event with this account's identity.
    projectRole("webhooks-event-receiver", this.webhooks, "roles/eventarc.eventReceiver");
    bucketRole("webhooks-results", args.resultsBucket, this.webhooks, "roles/storage.objectViewer");
    new gcp.serviceaccount.IAMMember(
      "webhooks-sign-blob",
      { serviceAccountId: this.webhooks.name, role: "roles/iam.serviceAccountTokenCreator", member: member(this.webhooks) },
      { parent: this },
    );

    // Storage events reach Eventarc through Pub/Sub, published by the Cloud Storage service agent.
    const storageAgent = gcp.storage.getProjectServiceAccountOutput({ project }, { parent: this }).emailAddress;
    const storageAgentGrant = projectRole(
      "storage-agent-publisher",
      pulumi.interpolate`serviceAccount:${storageAgent}`,
      "roles/pubsub.publisher",
    );
    // Eventarc's own service agent reads the trigger's sources and creates its Pub/Sub plumbing.
    // Enabling the API grants it roles/eventarc.serviceAgent eventually; on a fresh project that
    // lands after the first trigger is created, which then fails. Creating the agent and granting
    // the role here (an idempotent no-op where Google already did) makes the order explicit.
    const eventarcAgent = new gcp.projects.ServiceIdentity(
      "eventarc-agent",
      { project, service: "eventarc.googleapis.com" },
      { parent: this },
    );
    const eventarcAgentGrant = projectRole(
      "eventarc-agent",
      pulumi.interpolate`serviceAccount:${eventarcAgent.email}`,
      "roles/eventarc.serviceAgent",
    );

    // --- The worker (GKE), through Workload Identity.
    this.worker = account("worker", "Image edit worker");
    projectRole("worker-firestore", this.worker, "roles/datastore.user");
    new gcp.pubsub.SubscriptionIAMMember(
      "worker-subscribe-jobs",
      { project, subscription: args.jobsSubscription, role: "roles/pubsub.subscriber", member: member(this.worker) },
      { parent: this },
    );
    new gcp.pubsub.SubscriptionIAMMember(
      "worker-subscribe-batch-jobs",
      { project, subscription: args.jobsBatchSubscription, role: "roles/pubsub.subscriber", member: member(this.worker) },
      { parent: this },
    );
    bucketRole("worker-uploads", args.uploadsBucket, this.worker, "roles/storage.objectViewer");
    // objectUser, not objectCreator: a redelivered job rewrites the same result object, and
    // overwriting needs delete permission.
    bucketRole("worker-results", args.resultsBucket, this.worker, "roles/storage.objectUser");

    // --- Triton reads the model repository, nothing else.
    this.triton = account("triton", "Triton model reader");
    bucketRole("triton-models", args.modelsBucket, this.triton, "roles/storage.objectViewer");

    // --- KEDA reads the subscription backlog and Triton's Managed Prometheus metrics.
    this.keda = account("keda", "KEDA metrics reader");
    projectRole("keda-monitoring", this.keda, "roles/monitoring.viewer");

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

    // --- Cloud Build, for the functions (buildConfig.serviceAccount) and the worker and Triton
    // images. New projects no longer give the default build account the roles a build needs, and
    // sharing it would hand every build in the project this stack's registry.
    this.builder = account("builder", "Image edit builds");
    const builderGrants = [
      projectRole("builder-logs", this.builder, "roles/logging.logWriter"),
      new gcp.artifactregistry.RepositoryIamMember(
        "builder-push-images",
        {
          project,
          location: args.registry.location,
          repository: args.registry.name,
          role: "roles/artifactregistry.writer",
          member: member(this.builder),
        },
        { parent: this },
      ),
      bucketRole("builder-build-source", args.buildSourceBucket, this.builder, "roles/storage.objectViewer"),
      // Cloud Functions copies each function's source into its own bucket
      // (gcf-v2-sources-<number>-<region>), created on the first deploy, so no bucket-level grant
      // can exist before it: a project-level grant, held to those buckets by its condition.
      new gcp.projects.IAMMember(
        "builder-function-sources",
        {
          project,
          role: "roles/storage.objectAdmin",
          member: member(this.builder),
          condition: {
            title: "Cloud Functions source buckets only",
            expression: pulumi.interpolate`resource.name.startsWith("projects/_/buckets/gcf-v2-sources-${args.projectNumber}-")`,
          },
        },
        { parent: this },
      ),
    ];
    this.agentGrants = [storageAgentGrant, eventarcAgentGrant, ...builderGrants];
    this.registerOutputs({});
  }
}

export interface WorkloadIdentityArgs {
  config: InfraConfig;
  worker: gcp.serviceaccount.Account;
  triton: gcp.serviceaccount.Account;
  keda: gcp.serviceaccount.Account;
}

/**
 * The Workload Identity bindings: each lets exactly one Kubernetes service account act as one
 * Google account. The identity pool (`<project>.svc.id.goog`) only exists once the first cluster
 * with Workload Identity does, so create this after the cluster (dependsOn), or the first `up`
 * fails with "Identity Pool does not exist".
 */
export class WorkloadIdentity extends pulumi.ComponentResource {
  constructor(name: string, args: WorkloadIdentityArgs, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:infra:WorkloadIdentity", name, {}, opts);
    const { config } = args;
    const bind = (id: string, sa: gcp.serviceaccount.Account, namespace: string, ksa: string) =>
      new gcp.serviceaccount.IAMMember(
        id,
        {
          serviceAccountId: sa.name,
          role: "roles/iam.workloadIdentityUser",
          member: `serviceAccount:${config.project}.svc.id.goog[${namespace}/${ksa}]`,
        },
        { parent: this },
      );
    bind("worker-workload-identity", args.worker, config.namespace, kubernetesServiceAccounts.worker);
    bind("triton-workload-identity", args.triton, config.namespace, kubernetesServiceAccounts.triton);
    bind("keda-workload-identity", args.keda, kubernetesServiceAccounts.keda.namespace, kubernetesServiceAccounts.keda.name);
    this.registerOutputs({});
  }
}
