import { eventStoreContract } from "../support/eventStoreContract.js";
import { createMemoryEventStore } from "../doubles/memoryEventStore.js";

eventStoreContract("in memory (the core's unit-test double)", createMemoryEventStore);
