import { eventStoreContract } from "../support/eventStoreContract.js";
import { createMemoryEventStore } from "../support/memoryEventStore.js";

eventStoreContract("in memory (the core's unit-test double)", createMemoryEventStore);
