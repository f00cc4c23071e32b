/**
 * The in-memory doubles of the core's ports, each held to the contract suite its real adapter
 * passes in the int tier, so that the unit tests that use them test real behaviour.
 */
import { randomUUID } from "node:crypto";
import { createMemoryImageStore } from "../doubles/memoryImageStore.js";
import { createMemoryInferenceClient } from "../doubles/memoryInferenceClient.js";
import { createMemoryJobQueue } from "../doubles/memoryJobQueue.js";
import { imageStoreContract } from "../support/imageStoreContract.js";
import { inferenceContract } from "../support/inferenceContract.js";
import { jobQueueContract } from "../support/jobQueueContract.js";

imageStoreContract("in memory (the unit tests' double)", async () => ({ images: createMemoryImageStore(), bucket: `bucket-${randomUUID()}` }));

jobQueueContract("in memory (the unit tests' double)", async () => {
  const queue = createMemoryJobQueue();
  return { queue, subscribe: () => queue.subscription() };
});

const inference = createMemoryInferenceClient();
inferenceContract("in memory (the unit tests' double)", () => inference);
