/** The Pub/Sub job queue and subscription against the official emulator, held to the port's contract. */
import { randomUUID } from "node:crypto";
import { afterAll, inject } from "vitest";
import { createPubsubJobQueue, createPubsubJobSubscription } from "../../adapters/pubsub/pubsubJobQueue.js";
import { emulatorClients } from "../support/clients.js";
import { jobQueueContract } from "../support/jobQueueContract.js";

const { pubsub } = emulatorClients(inject("services"));
afterAll(() => pubsub.close());

jobQueueContract("Pub/Sub (official emulator)", async () => {
  const name = `jobs-${randomUUID()}`;
  const [topic] = await pubsub.createTopic(name);
  const [deadLetter] = await pubsub.createTopic(`${name}-dlq`);
  // A dead-letter policy makes Pub/Sub count deliveries; a short backoff brings a nacked one back soon.
  await topic.createSubscription(`${name}-worker`, {
    deadLetterPolicy: { deadLetterTopic: deadLetter.name, maxDeliveryAttempts: 5 },
    retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 2 } },
  });
  return {
    queue: createPubsubJobQueue(pubsub, name),
    subscribe: () => createPubsubJobSubscription(pubsub, `${name}-worker`, { maxInFlight: 2, maxExtensionSeconds: 60 }),
  };
});
