/**
 * Runs before each file of the int tier: the shared emulators must still answer as themselves.
 * If one has stopped answering, every file after it would fail with errors of its own (500s,
 * empty ids); this fails them with the cause instead, and the end of that emulator's log.
 */
import { join } from "node:path";
import { beforeAll, inject } from "vitest";
import { authAnswers, firestoreAnswers, pubsubAnswers, storageAnswers } from "../../local/stack/emulators.js";
import { LOCAL_DIR } from "../../local/stack/paths.js";
import { sleep } from "../../local/stack/processes.js";
import { logTail } from "./intSetup.js";

beforeAll(async () => {
  const services = inject("services");
  const logDir = join(LOCAL_DIR, "logs", "int");
  const checks = [
    { name: "Firestore emulator", at: services.firestoreHost, answers: () => firestoreAnswers(services.firestoreHost), log: "firestore.log" },
    { name: "Pub/Sub emulator", at: services.pubsubHost, answers: () => pubsubAnswers(services.pubsubHost), log: "pubsub.log" },
    { name: "Auth emulator", at: services.authHost, answers: () => authAnswers(services.authHost), log: "auth.log" },
    { name: "Cloud Storage emulator", at: services.storageUrl, answers: () => storageAnswers(services.storageUrl), log: "storage.log" },
  ];
  const silent: string[] = [];
  for (const check of checks) {
    if (!(await answersWithin(check.answers, 15_000))) silent.push(`the shared ${check.name} at ${check.at} does not answer; the end of its log:\n${await logTail(join(logDir, check.log))}`);
  }
  if (silent.length > 0) throw new Error(silent.join("\n\n"));
});

/** Asks again for up to `ms`: a loaded machine may keep one answer waiting past the probe's 2 s. */
async function answersWithin(answers: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!(await answers())) {
    if (Date.now() > deadline) return false;
    await sleep(500);
  }
  return true;
}
