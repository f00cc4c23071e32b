/**
 * The Firebase adapter of the TokenVerifier port (firebase-admin's verifyIdToken) held to the
 * port's contract with real users of the official Auth emulator.
 */
import { inject } from "vitest";
import { createFirebaseTokenVerifier } from "../../adapters/auth/firebaseTokenVerifier.js";
import { disableUser, emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { tokenVerifierContract } from "../support/tokenVerifierContract.js";

const services = inject("services");

tokenVerifierContract("Firebase (firebase-admin, the Auth emulator's users)", async (userId) => {
  const verifier = createFirebaseTokenVerifier({ projectId: services.projectId, emulatorHost: services.authHost });
  const token = await emulatorIdToken(services.authHost, userId);
  return { verifier, token, revoke: () => disableUser(services.authHost, services.projectId, userId) };
});
