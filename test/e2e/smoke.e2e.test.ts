/**
 * `npm run smoke -- --api <url>`, the post-deploy check, run as an operator runs it after
 * `pulumi up`, against the whole local stack: every edit passes and it exits 0; with a token the
 * service refuses, every edit fails and it exits 1; without a token it is a usage error.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";

import { beforeAll, describe, expect, inject, it } from "vitest";

import { OPERATIONS, OPERATION_SPECS } from "../../events/operations.js";
import { emulatorIdToken } from "../../local/auth/emulatorUsers.js";
import { REPO_ROOT } from "../../local/stack/paths.js";

const stack = inject("stack");
const available = OPERATIONS.filter((operation) => OPERATION_SPECS[operation].available);
let token: string;

beforeAll(async () => {
  token = await emulatorIdToken(stack.authHost, `smoke-${randomUUID()}`);
});

/** `npm run smoke -- <args>` from the repository root, with only the environment given. */
function smoke(args: string[], env: Record<string, string>): Promise<{ code: number; lines: string[]; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      "npm",
      ["run", "smoke", "--", ...args],
      { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env }, timeout: 280_000 },
      (error, stdout, stderr) => {
        // npm's own header ("> image-edit-pipeline@0.1.0 smoke") is not the check's output.
        const lines = stdout.split("\n").filter((line) => /^(ok|FAIL|smoke:)/.test(line));
        resolve({ code: error ? ((error as { code?: number }).code ?? -1) : 0, lines, stderr });
      },
    );
  });
}

describe("npm run smoke", () => {
  it("runs one edit of every kind through the signed upload, checks each result and exits 0", async () => {
    const run = await smoke(["--api", stack.apiUrl, "--firestore-emulator", stack.firestoreHost, "--project", stack.projectId], {
      EDIT_TOKEN: token,
    });
    // The operator's view, kept in the test log (infra/README.md shows it). stderr is left out:
    // the Firebase SDK logs a listener's reconnects there, which the check itself survives.
    console.log(run.lines.join("\n"));
    const edits = run.lines.slice(0, -1);
    expect(edits).toHaveLength(available.length);
    for (const operation of available) {
      const scale = OPERATION_SPECS[operation].outputScale({ scale: 4 });
      const line = edits.find((l) => l.split(/\s+/)[1] === operation);
      expect(line, operation).toMatch(new RegExp(`^ok    ${operation} +job [\\w-]+  160×120 → ${160 * scale}×${120 * scale} image/png \\d+\\.\\d KB  \\d+\\.\\d s$`));
    }
    expect(run.lines.at(-1)).toMatch(
      new RegExp(`^smoke: ${available.length} of ${available.length} edits passed against ${stack.apiUrl} in \\d+\\.\\d s \\(followed through a Firestore listener\\)$`),
    );
    expect(run.code).toBe(0);
  });

  it("fails every edit and exits 1 when the service refuses the token", async () => {
    // An emulator-shaped token (unsigned, as the Auth emulator's are) for another project.
    const now = Math.floor(Date.now() / 1000);
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const claims = { iss: "https://securetoken.google.com/another-project", aud: "another-project", sub: `smoke-${randomUUID()}`, iat: now, auth_time: now, exp: now + 3600 };
    const stranger = `${part({ alg: "none", typ: "JWT" })}.${part(claims)}.`;
    const run = await smoke(["--api", stack.apiUrl], { EDIT_TOKEN: stranger });
    expect(run.lines.at(-1)).toMatch(/^smoke: 0 of \d+ edits passed against .* \(followed through the API\); failed: |^smoke: 0 edits run/);
    expect(run.lines.slice(0, -1).every((line) => line.startsWith("FAIL  "))).toBe(true);
    expect(run.code).toBe(1);
  });

  it("is a usage error (exit 2) without EDIT_TOKEN, saying so", async () => {
    const run = await smoke(["--api", stack.apiUrl], {});
    expect(run.stderr).toContain("smoke: EDIT_TOKEN is not set");
    expect(run.code).toBe(2);
  });
});
