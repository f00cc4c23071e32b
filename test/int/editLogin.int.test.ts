/**
 * `edit login`'s session against the official Auth emulator: an email/password sign-in keeps the
 * refresh token in the user's config folder, readable by them alone (0600); a later command gets
 * the kept ID token while it lasts and a fresh one (which the API's verifier takes) once it runs
 * out; a wrong password and a disabled account are refused as LoginError.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { createFirebaseTokenVerifier } from "../../adapters/auth/firebaseTokenVerifier.js";
import { credentialsFile, currentIdToken, login, LoginError, type StoredSession } from "../../cli/credentials.js";
import { disableUser, EMULATOR_API_KEY, signUp } from "../../local/auth/emulatorUsers.js";

const services = inject("services");
const endpoint = { apiKey: EMULATOR_API_KEY, emulatorHost: services.authHost };

async function newAccount() {
  const email = `cli-${randomUUID()}@example.com`;
  const password = `pw-${randomUUID()}`;
  const { userId } = await signUp(services.authHost, email, password);
  const file = credentialsFile({ XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), "edit-config-")) });
  return { email, password, userId, file };
}

describe("edit login", () => {
  it("keeps the session 0600 in the config folder, and refreshes the ID token once it runs out", async () => {
    const { email, password, userId, file } = await newAccount();
    const session = await login(endpoint, email, password, file);
    expect(file).toMatch(/image-edit\/credentials\.json$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(file, "..")).mode & 0o777).toBe(0o700);
    expect(session).toMatchObject({ email, userId, emulatorHost: services.authHost });

    // While it lasts, the kept token is used as it is.
    expect(await currentIdToken(file)).toBe(session.idToken);
    // An hour later it has run out: the refresh token buys a new one, saved back.
    const later = Date.now() + 3_600_000;
    const fresh = await currentIdToken(file, later);
    // Refreshed and saved: the kept session now runs an hour from `later`. (Not a comparison of
    // the tokens: the emulator's unsigned token re-minted within the same second is the same bytes.)
    const kept = JSON.parse(readFileSync(file, "utf8")) as StoredSession;
    expect(session.expiresAtMs).toBeLessThanOrEqual(later);
    expect(kept.expiresAtMs).toBeGreaterThan(later);
    expect(kept.idToken).toBe(fresh);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const verifier = createFirebaseTokenVerifier({ projectId: services.projectId, emulatorHost: services.authHost });
    expect(await verifier.verify(fresh)).toEqual({ userId });
  });

  it("refuses a wrong password, and a refresh for a disabled account", async () => {
    const { email, password, userId, file } = await newAccount();
    await expect(login(endpoint, email, "not-the-password", file)).rejects.toBeInstanceOf(LoginError);
    await expect(currentIdToken(file)).rejects.toThrow("not logged in");
    await login(endpoint, email, password, file);
    await disableUser(services.authHost, services.projectId, userId);
    await expect(currentIdToken(file, Date.now() + 3_600_000)).rejects.toBeInstanceOf(LoginError);
  });
});
