/**
 * The production configuration of the API's token check refuses the Auth emulator's tokens:
 * they are unsigned (`alg: none`), and firebase-admin takes them only while
 * FIREBASE_AUTH_EMULATOR_HOST is set, which only the local stack and the tests set. The refusal
 * happens before any key is fetched, so this runs offline.
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { createFirebaseTokenVerifier } from "../../adapters/auth/firebaseTokenVerifier.js";
import { AuthError } from "../../events/errors.js";
import { parseConfig } from "../../functions/config.js";
import { forgedIdToken } from "../support/forgedTokens.js";

const functionsEnv = { GCP_PROJECT: `prod-${randomUUID().slice(0, 8)}`, UPLOADS_BUCKET: "u", RESULTS_BUCKET: "r", JOBS_TOPIC: "t" };
const before = process.env.FIREBASE_AUTH_EMULATOR_HOST;

afterEach(() => {
  if (before === undefined) delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
  else process.env.FIREBASE_AUTH_EMULATOR_HOST = before;
});

const refusal = async (work: Promise<unknown>) => {
  const error = await work.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(AuthError);
  return (error as AuthError).code;
};

describe("the API's token check as deployed (no Auth emulator)", () => {
  it("has no emulator in its configuration unless FIREBASE_AUTH_EMULATOR_HOST names one", () => {
    expect(parseConfig(functionsEnv).auth).toEqual({ projectId: functionsEnv.GCP_PROJECT });
    expect(parseConfig({ ...functionsEnv, FIREBASE_PROJECT_ID: "web-app" }).auth).toEqual({ projectId: "web-app" });
    expect(parseConfig({ ...functionsEnv, FIREBASE_AUTH_EMULATOR_HOST: "127.0.0.1:9099" }).auth).toEqual({ projectId: functionsEnv.GCP_PROJECT, emulatorHost: "127.0.0.1:9099" });
    expect(() => parseConfig({ ...functionsEnv, FIREBASE_AUTH_EMULATOR_HOST: "http://127.0.0.1:9099" })).toThrow(/FIREBASE_AUTH_EMULATOR_HOST must be host:port/);
  });

  it("refuses an unsigned emulator token with every claim right, even if the process had the emulator variable set", async () => {
    // Left over from elsewhere in the process: the production configuration clears it.
    process.env.FIREBASE_AUTH_EMULATOR_HOST = "127.0.0.1:9";
    const config = parseConfig(functionsEnv);
    const verifier = createFirebaseTokenVerifier(config.auth);
    expect(process.env.FIREBASE_AUTH_EMULATOR_HOST).toBeUndefined();
    const token = forgedIdToken(config.auth.projectId);
    expect(await refusal(verifier.verify(token))).toBe("invalid_token");
    expect(await refusal(verifier.verify(token, { checkRevoked: true }))).toBe("invalid_token");
  });

  it("refuses no token as missing", async () => {
    const verifier = createFirebaseTokenVerifier({ projectId: functionsEnv.GCP_PROJECT });
    expect(await refusal(verifier.verify(""))).toBe("missing_token");
  });
});
