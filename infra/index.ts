/**
 * The image-edit pipeline on Google Cloud, one stack per environment (dev, staging, prod).
 * This file only wires the components together and exports what operators and the apps need.
 */
import * as gcp from "@pulumi/gcp";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";

import { Alerts } from "./alerts.js";
import { Keda } from "./autoscaling.js";
import { Cluster } from "./cluster.js";
import { loadInfraConfig } from "./config.js";
import { Firestore } from "./firestore.js";
import { Functions, repositoryRoot } from "./functions.js";
import { iamPropagationWait } from "./iamPropagation.js";
import { Identity, WorkloadIdentity } from "./identity.js";
import { Images } from "./images.js";
import { Messaging } from "./messaging.js";
import { ModelRepository, modelRepositoryFiles } from "./models.js";
import { Network } from "./network.js";
import { checkedGpuMaxNodes, checkProject } from "./preflight.js";
import { SignIn } from "./signIn.js";
import { Registry } from "./registry.js";
import { ProjectServices } from "./services.js";
import { modelRepositoryPrefix, Storage } from "./storage.js";
import { Triton } from "./triton.js";
import { Worker } from "./worker.js";

const config = loadInfraConfig();
// The ONNX weights come from `npm run models`; billing and Firebase cannot be set up from here.
// Stop before anything is created without them.
const modelFiles = modelRepositoryFiles(config);
await checkProject(config);
const apis = new ProjectServices("apis", { project: config.project });
const afterApis: pulumi.ComponentResourceOptions = { dependsOn: apis.services };
const projectNumber = gcp.organizations.getProjectOutput({ projectId: config.project }).apply((p) => p.number ?? "");

const network = new Network("network", { config }, afterApis);
const storage = new Storage("storage", { config }, afterApis);
const messaging = new Messaging("messaging", { config }, afterApis);
const registry = new Registry("registry", { config }, afterApis);
const identity = new Identity(
  "identity",
  {
    config,
    uploadsBucket: storage.uploads.name,
    resultsBucket: storage.results.name,
    modelsBucket: storage.models.name,
    jobsTopic: messaging.jobsTopic.name,
    jobsSubscription: messaging.jobsSubscription.name,
    jobsBatchTopic: messaging.jobsBatchTopic.name,
    jobsBatchSubscription: messaging.jobsBatchSubscription.name,
    registry: registry.repository,
    buildSourceBucket: storage.buildSource.name,
    projectNumber,
  },
  afterApis,
);
// Eventarc's agent and the build account are checked by Google on first use.
const iamPropagated = iamPropagationWait("iam-propagation", {
  seconds: config.iamPropagationSeconds,
  grants: identity.agentGrants,
});
const firestore = new Firestore("firestore", { config }, afterApis);
const signIn = new SignIn("sign-in", { config }, afterApis);
const functions = new Functions(
  "functions",
  {
    config,
    sourceRoot: repositoryRoot,
    apiServiceAccount: identity.api.email,
    uploadTriggerServiceAccount: identity.uploadTrigger.email,
    webhooksServiceAccount: identity.webhooks.email,
    uploadsBucket: storage.uploads.name,
    resultsBucket: storage.results.name,
    jobsTopic: messaging.jobsTopic.name,
    jobsBatchTopic: messaging.jobsBatchTopic.name,
    deadLetterTopic: messaging.deadLetterTopic.id,
    builderServiceAccount: identity.builder.email,
    imageRepository: registry.repository.repositoryId,
  },
  // The triggers' IAM (event receiver, storage agent publisher, Eventarc's agent) and the build
  // account's roles must have propagated before Eventarc and Cloud Build check them, and the
  // database must exist before the first request.
  { dependsOn: [...apis.services, identity, firestore, iamPropagated] },
);

const images = new Images(
  "images",
  {
    config,
    repositoryRoot,
    registryUrl: registry.url,
    builderServiceAccount: identity.builder.email,
    buildSourceBucket: storage.buildSource.name,
  },
  { dependsOn: [...apis.services, iamPropagated] },
);
const models = new ModelRepository("models", { config, modelsBucket: storage.models.name, files: modelFiles }, afterApis);

const gpuMaxNodes = checkedGpuMaxNodes(config, [
  apis.byApi["cloudquotas.googleapis.com"],
  apis.byApi["compute.googleapis.com"],
]);
const cluster = new Cluster(
  "cluster",
  { config, network, nodeServiceAccount: identity.nodes.email, gpuMaxNodes },
  afterApis,
);
const workloadIdentity = new WorkloadIdentity(
  "workload-identity",
  { config, worker: identity.worker, triton: identity.triton, keda: identity.keda },
  { dependsOn: [cluster.cluster] },
);
// Pods start with their Google identities already bound.
const inCluster: pulumi.ComponentResourceOptions = {
  providers: { kubernetes: cluster.provider },
  dependsOn: [workloadIdentity],
};

const namespace = new k8s.core.v1.Namespace(
  "app",
  { metadata: { name: config.namespace } },
  { provider: cluster.provider },
);
const keda = new Keda(
  "keda",
  { namespace: namespace.metadata.name, googleServiceAccountEmail: identity.keda.email },
  inCluster,
);
const jobsSubscriptionPath = pulumi.interpolate`projects/${config.project}/subscriptions/${messaging.jobsSubscription.name}`;
const jobsBatchSubscriptionPath = pulumi.interpolate`projects/${config.project}/subscriptions/${messaging.jobsBatchSubscription.name}`;
const triton = new Triton(
  "triton",
  {
    config,
    namespace: namespace.metadata.name,
    modelsBucket: storage.models.name,
    image: images.triton,
    googleServiceAccountEmail: identity.triton.email,
    jobsSubscriptionPath,
    jobsBatchSubscriptionPath,
    keda,
    modelFiles: models.objects,
  },
  inCluster,
);
new Worker(
  "worker",
  {
    config,
    namespace: namespace.metadata.name,
    image: images.worker,
    googleServiceAccountEmail: identity.worker.email,
    jobsSubscription: messaging.jobsSubscription.name,
    jobsSubscriptionPath,
    jobsBatchSubscription: messaging.jobsBatchSubscription.name,
    jobsBatchSubscriptionPath,
    uploadsBucket: storage.uploads.name,
    resultsBucket: storage.results.name,
    tritonGrpcUrl: triton.grpcUrl,
    keda,
  },
  inCluster,
);

new Alerts("alerts", { config, jobsSubscription: messaging.jobsSubscription.name }, afterApis);

export const apiUrl = functions.apiUrl;
export const uploadFinalizedFunction = functions.uploadFinalized.name;
export const deadLetterFunction = functions.deadLetter.name;
export const sweepJobsFunction = functions.sweepJobs.name;
export const webhookEventsFunction = functions.webhookEvents.name;
export const uploadsBucket = storage.uploads.name;
export const resultsBucket = storage.results.name;
export const modelsBucket = storage.models.name;
export const modelRepository = pulumi.interpolate`gs://${storage.models.name}/${modelRepositoryPrefix}`;
export const jobsTopic = messaging.jobsTopic.name;
export const jobsSubscription = messaging.jobsSubscription.name;
export const jobsBatchTopic = messaging.jobsBatchTopic.name;
export const jobsBatchSubscription = messaging.jobsBatchSubscription.name;
export const deadLetterTopic = messaging.deadLetterTopic.name;
export const deadLetterSubscription = messaging.deadLetterSubscription.name;
export const imageRepository = registry.url;
export const clusterName = cluster.cluster.name;
export const clusterLocation = cluster.cluster.location;
export const kubeconfig = pulumi.secret(cluster.kubeconfig);
export const tritonGrpcUrl = triton.grpcUrl;
export const workerImage = images.worker;
export const tritonImage = images.triton;
export const firestoreDatabase = firestore.database.name;
export const signInProviders = signIn.providers;
