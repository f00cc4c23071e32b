/**
 * What `npm start` writes for other commands on the machine while it runs (`.local/stack.json`):
 * where its Auth emulator is, so that `npm run token` signs users in there.
 */
import { join } from "node:path";
import { LOCAL_DIR } from "../stack/paths.js";

export const RUNNING_STACK_FILE = join(LOCAL_DIR, "stack.json");

export interface RunningStack {
  projectId: string;
  /** host:port of the stack's Firebase Auth emulator. */
  authEmulatorHost: string;
  apiUrl: string;
}
