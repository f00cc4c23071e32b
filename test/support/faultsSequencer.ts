/**
 * File order: vitest's own, except that the crash suite runs last. After worker processes that
 * held streaming pulls are SIGKILLed, the Pub/Sub emulator was seen to hold back redeliveries
 * (of nacked messages too) for minutes; the sweeper's republish of stale queued jobs still ends
 * every job, but the suites that count deliveries (poison) or wait on a redelivery (ghosts)
 * would then measure the emulator, not our code.
 */
import { BaseSequencer, type TestSpecification } from "vitest/node";

export class FaultsSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const last = (file: TestSpecification) => (file.moduleId.endsWith("crash.faults.test.ts") ? 1 : 0);
    return [...sorted].sort((a, b) => last(a) - last(b));
  }
}
