/**
 * The in-memory doubles of the core's ports, each held to the contract suite its real adapter
 * passes in the int tier, so that the unit tests that use them test real behaviour.
 */
import { randomUUID } from "node:crypto";
import { createFixedTokenVerifier } from "../doubles/fixedTokenVerifier.js";
import { createMemoryImageStore } from "../doubles/memoryImageStore.js";
import { createMemoryRequestCounter } from "../doubles/memoryRequestCounter.js";
import { createMemoryInferenceClient } from "../doubles/memoryInferenceClient.js";
import { createMemoryJobQueue } from "../doubles/memoryJobQueue.js";
import { imageStoreContract } from "../support/imageStoreContract.js";
import { requestCounterContract } from "../support/requestCounterContract.js";
import { inferenceContract } from "../support/inferenceContract.js";
import { jobQueueContract } from "../support/jobQueueContract.js";
import { tokenVerifierContract } from "../support/tokenVerifierContract.js";
import { createMemoryWebhookOutbox } from "../doubles/memoryWebhookOutbox.js";
import { createMemoryWebhookSecrets } from "../doubles/memoryWebhookSecrets.js";
import { webhookOutboxContract, webhookSecretsContract } from "../support/webhookOutboxContract.js";

imageStoreContract("in memory (the unit tests' double)", async () => ({ images: createMemoryImageStore(), bucket: `bucket-${randomUUID()}` }));

jobQueueContract("in memory (the unit tests' double)", async () => {
  const queue = createMemoryJobQueue();
  return { queue, subscribe: () => queue.subscription() };
});

const inference = createMemoryInferenceClient();
inferenceContract("in memory (the unit tests' double)", () => inference);

tokenVerifierContract("in memory (the unit tests' double)", async (userId) => {
  const token = `token-${randomUUID()}`;
  const revoked = new Set<string>();
  return { verifier: createFixedTokenVerifier({ [token]: userId }, revoked), token, revoke: async () => void revoked.add(userId) };
});

requestCounterContract("in memory (the unit tests' double)", createMemoryRequestCounter);

webhookOutboxContract("in memory (the unit tests' double)", createMemoryWebhookOutbox);
webhookSecretsContract("in memory (the unit tests' double)", createMemoryWebhookSecrets);
