import { defineConfig } from "vitest/config";
import { FaultsSequencer } from "./test/support/faultsSequencer.js";

// Tiers, chosen by file suffix (the faults tier is the e2e tier with faults injected). The int tier shares the real emulators, started once per
// run by test/support/intSetup.ts; the e2e tier shares the whole local stack (e2eSetup.ts).
export default defineConfig({
  test: {
    // Reorders only the faults tier's crash suite (see the sequencer); other files keep their order.
    sequence: { sequencer: FaultsSequencer },
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/**/*.unit.test.ts"],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "int",
          include: ["test/**/*.int.test.ts"],
          globalSetup: ["test/support/intSetup.ts"],
          // Checks before each file that the shared emulators still answer (test/support/intGuard.ts).
          setupFiles: ["test/support/intGuard.ts"],
          // Two cores: run files one at a time so that Triton and the emulators are not starved.
          // (Files that share the run's Triton, sharedTriton(), may read its statistics around
          // their own requests because of this.)
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 600_000,
        },
      },
      {
        test: {
          // Faults and bad input, injected into the whole local stack (test/support/faultsSetup.ts).
          name: "faults",
          include: ["test/**/*.faults.test.ts"],
          globalSetup: ["test/support/faultsSetup.ts"],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 900_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/**/*.e2e.test.ts"],
          globalSetup: ["test/support/e2eSetup.ts"],
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
