/**
 * Runs the official Firebase Auth emulator (firebase-tools, pinned in package.json) on
 * 127.0.0.1. `firebase emulators:start --only auth` wraps the same server in the CLI, which
 * first asks the network for its news and remote config and loads every command; this host
 * loads only the emulator's module and starts it, which is what `emulators:start` does in the
 * end (firebase-tools' lib/emulator/auth/index.js, `AuthEmulator.start`). Usage:
 * authEmulatorHost.ts <port> <projectId>.
 */
import { createRequire } from "node:module";

const [port, projectId] = process.argv.slice(2);
if (!port || !projectId) {
  console.error("usage: authEmulatorHost.ts <port> <projectId>");
  process.exit(2);
}

interface AuthEmulatorModule {
  AuthEmulator: new (args: { host: string; port: number; projectId: string; singleProjectMode: number }) => { start(): Promise<void>; stop(): Promise<void> };
  SingleProjectMode: { NO_WARNING: number };
}
const { AuthEmulator, SingleProjectMode } = createRequire(import.meta.url)("firebase-tools/lib/emulator/auth/index.js") as AuthEmulatorModule;
const emulator = new AuthEmulator({ host: "127.0.0.1", port: Number(port), projectId, singleProjectMode: SingleProjectMode.NO_WARNING });
await emulator.start();
console.log(`auth emulator listening on http://127.0.0.1:${port}/ for project ${projectId}`);

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => void emulator.stop().finally(() => process.exit(0)));
}
