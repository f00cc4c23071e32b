/**
 * The `edit` command against the whole local stack, run as a person or a script runs it: each
 * exit code (success, failed edit, bad usage, unreachable service, not signed in), the progress
 * it shows, its --json output, and the file it writes; and `edit login`, whose kept session later
 * commands use without a token.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { EXIT } from "../../cli/editArgs.js";
import { emulatorIdToken, signUp } from "../../local/auth/emulatorUsers.js";
import { LOCAL_DIR, REPO_ROOT } from "../../local/stack/paths.js";
import { ensurePhotos } from "../../local/bench/photos.js";
import { freePort } from "../../local/stack/processes.js";

const stack = inject("stack");
const work = join(LOCAL_DIR, "tmp", `cli-${randomUUID()}`);
let token: string;
let photo: string;
let photoSize: { width: number; height: number };

beforeAll(async () => {
  mkdirSync(work, { recursive: true });
  token = await emulatorIdToken(stack.authHost, `cli-${randomUUID()}`);
  photo = join(work, "kitten.jpg");
  const bytes = await sharp(join(await ensurePhotos(), "chelsea.png")).resize(120).jpeg().toBuffer();
  writeFileSync(photo, bytes);
  const meta = await sharp(bytes).metadata();
  photoSize = { width: meta.width as number, height: meta.height as number };
});

/** Runs bin/edit.mjs, the installed command, with only the environment given. */
function edit(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // The config folder is the test's own, so that no one's real session is read or written.
    execFile(process.execPath, [join(REPO_ROOT, "bin", "edit.mjs"), ...args], { cwd: work, env: { PATH: process.env.PATH ?? "", XDG_CONFIG_HOME: join(work, "config"), ...env }, timeout: 240_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

const local = () => ({ EDIT_API_URL: stack.apiUrl, EDIT_TOKEN: token });

describe("the edit command", () => {
  it("logs in with an email and a password, keeps the session 0600, and edits with it without a token", async () => {
    const email = `cli-${randomUUID()}@example.com`;
    const password = `pw-${randomUUID()}`;
    await signUp(stack.authHost, email, password);
    const config = join(work, `login-${randomUUID()}`);
    const wrong = await edit(["login", "--email", email, "--auth-emulator", stack.authHost], { EDIT_PASSWORD: "wrong-password", XDG_CONFIG_HOME: config });
    expect(wrong.code).toBe(EXIT.unauthenticated);
    const login = await edit(["login", "--email", email, "--auth-emulator", stack.authHost], { EDIT_PASSWORD: password, XDG_CONFIG_HOME: config });
    expect(login.stderr).toContain(`logged in as ${email}`);
    expect(login.code).toBe(EXIT.succeeded);
    expect(statSync(join(config, "image-edit", "credentials.json")).mode & 0o777).toBe(0o600);
    const run = await edit(["comic", photo, "-o", "logged-in.png"], { EDIT_API_URL: stack.apiUrl, XDG_CONFIG_HOME: config });
    expect(run.code).toBe(EXIT.succeeded);
    const logout = await edit(["logout"], { XDG_CONFIG_HOME: config });
    expect(logout.code).toBe(EXIT.succeeded);
    const after = await edit(["comic", photo], { EDIT_API_URL: stack.apiUrl, XDG_CONFIG_HOME: config });
    expect(after.code).toBe(EXIT.unauthenticated);
    expect(after.stderr).toContain("run `edit login`");
  });

  it("edits a photo, following it through a Firestore listener, and says where the result is and how big", async () => {
    const run = await edit(["upscale", photo, "--param", "scale=2", "-o", "big.png"], { ...local(), FIRESTORE_EMULATOR_HOST: stack.firestoreHost, EDIT_PROJECT_ID: stack.projectId });
    expect(run.stderr).toContain("Uploading [########################] 100%");
    expect(run.stderr).toContain("through a Firestore listener");
    // Each status it shows, in lifecycle order, ending with succeeded (a quick job may skip some).
    const order = ["awaiting_upload", "queued", "running", "succeeded"];
    const shown = [...run.stderr.matchAll(/Status: (\w+)/g)].map((match) => order.indexOf(match[1]!));
    expect(shown.at(-1)).toBe(order.indexOf("succeeded"));
    expect(shown).toEqual([...shown].sort((a, b) => a - b));
    const size = statSync(join(work, "big.png")).size;
    const width = photoSize.width * 2;
    const height = photoSize.height * 2;
    expect(run.stdout.trim()).toBe(`Saved big.png (${width}×${height}, ${(size / 1024).toFixed(1)} KB)`);
    expect(run.code).toBe(EXIT.succeeded);
    expect(await sharp(join(work, "big.png")).metadata()).toMatchObject({ format: "png", width, height });
  });

  it("gives scripts one JSON object, following the job through the API when there is no listener", async () => {
    const run = await edit(["upscale", photo, "--json", "--direct"], local());
    expect(run.code).toBe(EXIT.succeeded);
    expect(run.stderr).toBe("");
    const result = JSON.parse(run.stdout) as { ok: boolean; jobId: string; output: { path: string; sizeBytes: number; width: number } };
    expect(result).toMatchObject({ ok: true, status: "succeeded", output: { path: photo.replace(/\.jpg$/, ".upscale.png"), width: photoSize.width * 4 } });
    expect(statSync(result.output.path).size).toBe(result.output.sizeBytes);
  });

  it("exits 1 when the edit fails, with the reason", async () => {
    // PNG's signature, then nothing a decoder can read: accepted as a PNG, refused by the worker.
    const broken = join(work, "broken.png");
    writeFileSync(broken, Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(2000, 7)]));
    const run = await edit(["upscale", broken, "--json"], local());
    const result = JSON.parse(run.stdout) as { ok: boolean; status: string; reason: { code: string; message: string } };
    expect(result).toMatchObject({ ok: false, status: "failed", exitCode: EXIT.editFailed });
    expect(result.reason.message.length).toBeGreaterThan(10);
    expect(run.code).toBe(EXIT.editFailed);
  });

  it.each([
    ["no file", ["upscale"]],
    ["a file that does not exist", ["upscale", "missing.jpg"]],
    ["a file that is not a photo", ["upscale", join(REPO_ROOT, "package.json")]],
    ["a parameter the service refuses", ["upscale", "PHOTO", "--param", "scale=3"]],
    ["an operation the service does not have", ["sharpen", "PHOTO"]],
  ])("exits 2 for bad usage: %s", async (_, args) => {
    const run = await edit(args.map((arg) => (arg === "PHOTO" ? photo : arg)), local());
    expect(run.stderr).toMatch(/^edit: /);
    expect(run.code).toBe(EXIT.usage);
  });

  it("exits 3 when the service cannot be reached", async () => {
    const run = await edit(["upscale", photo], { EDIT_API_URL: `http://127.0.0.1:${await freePort()}`, EDIT_TOKEN: token });
    expect(run.stderr).toContain("cannot be reached");
    expect(run.code).toBe(EXIT.unreachable);
  });

  it("exits 4 without a valid token", async () => {
    expect((await edit(["upscale", photo], { EDIT_API_URL: stack.apiUrl })).code).toBe(EXIT.unauthenticated);
    const refused = await edit(["upscale", photo], { EDIT_API_URL: stack.apiUrl, EDIT_TOKEN: "not-a-token" });
    expect(refused.stderr).toContain("sign in again");
    expect(refused.code).toBe(EXIT.unauthenticated);
  });
});
