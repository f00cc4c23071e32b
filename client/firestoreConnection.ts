/**
 * Firestore for the client's listener, from the Firebase JS SDK (modular).
 * - Local stack: `connectEmulatorFirestore` points a fresh Firebase app at the Firestore
 *   emulator, signed in as `userId` with a mock token, the emulator's stand-in for Firebase Auth.
 *   The security rules see `request.auth.uid == userId`, as for a real sign-in.
 * - Production: pass `getFirestore(app)` of a Firebase app that the person signed in to with
 *   Firebase Auth, and `() => auth.currentUser!.getIdToken()` as the client's `getToken`.
 */
import { deleteApp, initializeApp } from "firebase/app";
import { connectFirestoreEmulator, getFirestore, terminate, type Firestore } from "firebase/firestore";

export interface EmulatorConnection {
  projectId: string;
  /** `host:port` of the Firestore emulator. */
  emulatorHost: string;
  /** The user the listener reads as; must be the `sub` of the API token. */
  userId: string;
}

let apps = 0;

export function connectEmulatorFirestore(connection: EmulatorConnection): { firestore: Firestore; close(): Promise<void> } {
  const separator = connection.emulatorHost.lastIndexOf(":");
  const host = connection.emulatorHost.slice(0, separator);
  const port = Number(connection.emulatorHost.slice(separator + 1));
  if (separator < 1 || !Number.isInteger(port)) throw new Error(`emulatorHost must be host:port, not "${connection.emulatorHost}"`);
  // One app per connection, so that two people (or a test's two users) can be signed in at once.
  const app = initializeApp({ projectId: connection.projectId, apiKey: "local-emulator" }, `edit-client-${++apps}`);
  const firestore = getFirestore(app);
  connectFirestoreEmulator(firestore, host, port, { mockUserToken: { sub: connection.userId, user_id: connection.userId } });
  return {
    firestore,
    async close() {
      await terminate(firestore);
      await deleteApp(app);
    },
  };
}

/** The `sub` (user id) of a JWT, read without checking its signature: for the emulator's mock sign-in only. */
export function tokenSubject(token: string): string {
  const payload = token.split(".")[1];
  if (!payload) throw new Error("the token is not a JWT");
  const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(payload.length / 4) * 4, "="));
  const sub = (JSON.parse(json) as { sub?: unknown }).sub;
  if (typeof sub !== "string" || sub === "") throw new Error("the token has no subject");
  return sub;
}
