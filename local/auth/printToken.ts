/**
 * `npm run token -- <userId>`: prints a Firebase ID token for that user, from the running local
 * stack's Auth emulator (`npm start` says where in `.local/stack.json`), creating the user on
 * first use; the user's uid is the name given. FIREBASE_AUTH_EMULATOR_HOST, when set, names
 * another emulator.
 */
import { readFileSync } from "node:fs";
import { emulatorIdToken } from "./emulatorUsers.js";
import { RUNNING_STACK_FILE, type RunningStack } from "./runningStack.js";

const userId = process.argv[2];
if (!userId) {
  console.error("usage: npm run token -- <userId>");
  process.exit(2);
}

function emulatorHost(): string {
  const fromEnv = process.env.FIREBASE_AUTH_EMULATOR_HOST;
  if (fromEnv) return fromEnv;
  try {
    return (JSON.parse(readFileSync(RUNNING_STACK_FILE, "utf8")) as RunningStack).authEmulatorHost;
  } catch {
    console.error(`no local stack is running (${RUNNING_STACK_FILE} is missing): start it with npm start, or set FIREBASE_AUTH_EMULATOR_HOST`);
    process.exit(1);
  }
}

const host = emulatorHost();
try {
  console.log(await emulatorIdToken(host, userId));
} catch (error) {
  console.error(`could not sign ${userId} in at the Auth emulator ${host} (is npm start still running?): ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
