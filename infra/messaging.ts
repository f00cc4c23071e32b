/**
 * Pub/Sub: the jobs topics (interactive, and batch), the workers' subscription to each, with
 * retries and one dead-letter topic for both, and the IAM the Pub/Sub service agent needs to
 * move a message to the dead-letter topic. Two topics, not one with an attribute filter: a
 * worker drains the interactive subscription first and pulls batch work only while none waits
 * (workers/prioritySubscription.ts), which one subscription cannot express.
 */
import * as gcp from "@pulumi/gcp";
import * as pulumi from "@pulumi/pulumi";

import { stackName, type InfraConfig } from "./config.js";

/**
 * Label that marks a subscription as the reader of a dead-letter topic. The dead-letter policy
 * (infra/policies.ts) exempts exactly these: dead-lettering a dead-letter queue only moves the
 * problem; its messages wait there, at maximum retention, for an operator to read or replay.
 */
export const deadLetterHandlerLabel = { "pubsub-role": "dead-letter-handler" } as const;

export class Messaging extends pulumi.ComponentResource {
  readonly jobsTopic: gcp.pubsub.Topic;
  readonly jobsSubscription: gcp.pubsub.Subscription;
  readonly jobsBatchTopic: gcp.pubsub.Topic;
  readonly jobsBatchSubscription: gcp.pubsub.Subscription;
  readonly deadLetterTopic: gcp.pubsub.Topic;
  readonly deadLetterSubscription: gcp.pubsub.Subscription;

  constructor(name: string, args: { config: InfraConfig }, opts?: pulumi.ComponentResourceOptions) {
    super("image-edit:infra:Messaging", name, {}, opts);
    const { config } = args;
    const project = config.project;

    this.jobsTopic = new gcp.pubsub.Topic(
      "jobs",
      { project, name: stackName(config, "edit-jobs") },
      { parent: this },
    );
    this.jobsBatchTopic = new gcp.pubsub.Topic(
      "jobs-batch",
      { project, name: stackName(config, "edit-jobs-batch") },
      { parent: this },
    );
    this.deadLetterTopic = new gcp.pubsub.Topic(
      "jobs-dead-letter",
      { project, name: stackName(config, "edit-jobs-dead-letter") },
      { parent: this },
    );

    const workerSubscription = (topic: gcp.pubsub.Topic) => ({
      project,
      topic: topic.id,
      ackDeadlineSeconds: config.ackDeadlineSeconds,
      messageRetentionDuration: `${config.messageRetentionSeconds}s`,
      // Backoff between redeliveries of a nacked job: long enough for a Triton cold start
      // (GPU node from zero) to make progress before the attempts run out.
      retryPolicy: { minimumBackoff: "10s", maximumBackoff: "600s" },
      deadLetterPolicy: {
        deadLetterTopic: this.deadLetterTopic.id,
        maxDeliveryAttempts: config.maxDeliveryAttempts,
      },
      // Subscriptions expire after 31 idle days by default; a quiet dev stack would lose its own.
      expirationPolicy: { ttl: "" },
    });
    this.jobsSubscription = new gcp.pubsub.Subscription(
      "jobs-worker",
      { ...workerSubscription(this.jobsTopic), name: stackName(config, "edit-jobs-worker") },
      { parent: this },
    );
    // Batch jobs dead-letter to the same topic: the dead-letter handler fails a job whatever its priority.
    this.jobsBatchSubscription = new gcp.pubsub.Subscription(
      "jobs-batch-worker",
      { ...workerSubscription(this.jobsBatchTopic), name: stackName(config, "edit-jobs-batch-worker") },
      { parent: this },
    );

    this.deadLetterSubscription = new gcp.pubsub.Subscription(
      "jobs-dead-letter-handler",
      {
        project,
        name: stackName(config, "edit-jobs-dead-letter-handler"),
        topic: this.deadLetterTopic.id,
        labels: { ...deadLetterHandlerLabel },
        ackDeadlineSeconds: 60,
        // Pub/Sub's maximum, in every stack: dead letters are rare, and an operator back from a
        // long weekend must still find them.
        messageRetentionDuration: "604800s",
        retryPolicy: { minimumBackoff: "10s", maximumBackoff: "600s" },
        expirationPolicy: { ttl: "" },
      },
      { parent: this },
    );

    // Dead-lettering is done by the Pub/Sub service agent: it must publish to the dead-letter
    // topic and acknowledge (subscribe) on the source subscription, or messages are never moved.
    const projectNumber = gcp.organizations.getProjectOutput({ projectId: project }, { parent: this }).number;
    const pubsubAgent = pulumi.interpolate`serviceAccount:service-${projectNumber}@gcp-sa-pubsub.iam.gserviceaccount.com`;
    new gcp.pubsub.TopicIAMMember(
      "dead-letter-publisher",
      { project, topic: this.deadLetterTopic.name, role: "roles/pubsub.publisher", member: pubsubAgent },
      { parent: this },
    );
    new gcp.pubsub.SubscriptionIAMMember(
      "dead-letter-source-subscriber",
      { project, subscription: this.jobsSubscription.name, role: "roles/pubsub.subscriber", member: pubsubAgent },
      { parent: this },
    );
    new gcp.pubsub.SubscriptionIAMMember(
      "dead-letter-batch-source-subscriber",
      { project, subscription: this.jobsBatchSubscription.name, role: "roles/pubsub.subscriber", member: pubsubAgent },
      { parent: this },
    );
    this.registerOutputs({});
  }
}
