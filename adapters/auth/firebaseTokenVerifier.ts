/**
 * Bearer-token verification with `firebase-admin`'s `verifyIdToken`: Firebase Auth ID tokens,
 * RS256 against Google's published keys, issuer `https://securetoken.google.com/<project>` and
 * audience `<project>`. Locally the tokens come from the official Auth emulator, which signs
 * nothing (`alg: none`); `firebase-admin` accepts those only while FIREBASE_AUTH_EMULATOR_HOST
 * is set, so a configuration without `emulatorHost` (production's) refuses them.
 */
import { randomUUID } from "node:crypto";
import { initializeApp, type App } from "firebase-admin/app";
import { getAuth } from "firebase-admin/auth";
import { AuthError } from "../../events/errors.js";
import type { TokenVerifier } from "../../events/tokenVerifier.js";

export interface FirebaseVerifierOptions {
  /** The Firebase project whose tokens are taken (`aud`, and the issuer's last segment). */
  projectId: string;
  /** host:port of the Auth emulator (local stack and tests only); absent in production. */
  emulatorHost?: string;
}

export function createFirebaseTokenVerifier(options: FirebaseVerifierOptions): TokenVerifier {
  // firebase-admin reads the emulator's address from this one variable, at every call: setting
  // it from the configuration (and clearing it without one) keeps the switch in one place.
  if (options.emulatorHost === undefined) delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
  else process.env.FIREBASE_AUTH_EMULATOR_HOST = options.emulatorHost;
  // An app of its own, so that no other user of firebase-admin in the process shares its settings.
  const app: App = initializeApp({ projectId: options.projectId }, `token-verifier-${randomUUID()}`);
  const auth = getAuth(app);
  return {
    async verify(token, verifyOptions = {}) {
      if (!token) throw new AuthError("missing_token", "an Authorization: Bearer token is required");
      try {
        const decoded = await auth.verifyIdToken(token, verifyOptions.checkRevoked === true);
        return { userId: decoded.uid };
      } catch (error) {
        throw translate(error);
      }
    },
  };
}

/** firebase-admin's `auth/...` codes as ours; anything else (keys unreachable) stays a server error. */
function translate(error: unknown): Error {
  const code = (error as { code?: unknown }).code;
  if (typeof code !== "string" || !code.startsWith("auth/")) return error instanceof Error ? error : new Error(String(error));
  switch (code) {
    case "auth/id-token-expired":
      return new AuthError("expired_token", "the token has expired");
    case "auth/id-token-revoked":
      return new AuthError("revoked_token", "the token was revoked; sign in again");
    case "auth/user-disabled":
      return new AuthError("revoked_token", "the account is disabled");
    case "auth/user-not-found":
      return new AuthError("revoked_token", "the account no longer exists");
    default:
      return new AuthError("invalid_token", "the token is not valid");
  }
}
