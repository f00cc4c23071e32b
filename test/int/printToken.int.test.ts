/**
 * `npm run token -- <user>` against the tier's Auth emulator (named by FIREBASE_AUTH_EMULATOR_HOST,
 * as `npm start`'s `.local/stack.json` names its own): it prints a Bearer token for the user whose
 * uid is the name given, creating them on first use and signing the same user in afterwards.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, inject, it } from "vitest";
import { createFirebaseTokenVerifier } from "../../adapters/auth/firebaseTokenVerifier.js";
import { REPO_ROOT } from "../../local/stack/paths.js";

const services = inject("services");
const run = promisify(execFile);

const printToken = (user: string) =>
  run(process.execPath, ["--import", "tsx", join(REPO_ROOT, "local", "auth", "printToken.ts"), user], {
    cwd: REPO_ROOT,
    env: { ...process.env, FIREBASE_AUTH_EMULATOR_HOST: services.authHost },
  });

describe("npm run token", () => {
  it("prints a token the API takes for that name, the same user every time", async () => {
    const user = `script-${randomUUID()}`;
    const verifier = createFirebaseTokenVerifier({ projectId: services.projectId, emulatorHost: services.authHost });
    const first = (await printToken(user)).stdout.trim();
    const second = (await printToken(user)).stdout.trim();
    expect(first.split(".")).toHaveLength(3);
    expect(await verifier.verify(first)).toEqual({ userId: user });
    expect(await verifier.verify(second)).toEqual({ userId: user });
  });

  it("says what is wrong when no emulator answers, exit 1", async () => {
    const failed = await run(process.execPath, ["--import", "tsx", join(REPO_ROOT, "local", "auth", "printToken.ts"), "nobody"], {
      cwd: REPO_ROOT,
      env: { ...process.env, FIREBASE_AUTH_EMULATOR_HOST: "127.0.0.1:9" },
    }).then(() => undefined, (error: { code: number; stderr: string }) => error);
    expect(failed?.code).toBe(1);
    expect(failed?.stderr).toContain("could not sign nobody in at the Auth emulator 127.0.0.1:9");
  });
});
