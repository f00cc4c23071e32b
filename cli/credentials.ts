/**
 * `edit login`'s session: an email/password sign-in with Firebase Auth's REST API (the Identity
 * Toolkit; the Auth emulator's when one is named), and the refresh token it returns, kept in the
 * user's config folder (`$XDG_CONFIG_HOME/image-edit/credentials.json`, else
 * `~/.config/image-edit/`) readable by the user alone (0600). Later commands exchange the refresh
 * token for a fresh ID token whenever the one kept has less than a minute left.
 */
import { chmod, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";

export interface AuthEndpoint {
  /** The Firebase web API key of the project (the emulator takes any). */
  apiKey: string;
  /** host:port of the Auth emulator; absent for the real Firebase Auth. */
  emulatorHost?: string;
}

export interface StoredSession extends AuthEndpoint {
  email: string;
  userId: string;
  idToken: string;
  refreshToken: string;
  /** When `idToken` expires, in ms since the epoch. */
  expiresAtMs: number;
}

export class LoginError extends Error {
  override readonly name = "LoginError";
}

/** Where the session is kept. */
export function credentialsFile(env: Record<string, string | undefined>): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), ".config");
  return join(base, "image-edit", "credentials.json");
}

function identityToolkit(endpoint: AuthEndpoint, method: string): string {
  const base = endpoint.emulatorHost ? `http://${endpoint.emulatorHost}/identitytoolkit.googleapis.com` : "https://identitytoolkit.googleapis.com";
  return `${base}/v1/accounts:${method}?key=${encodeURIComponent(endpoint.apiKey)}`;
}

function secureToken(endpoint: AuthEndpoint): string {
  const base = endpoint.emulatorHost ? `http://${endpoint.emulatorHost}/securetoken.googleapis.com` : "https://securetoken.googleapis.com";
  return `${base}/v1/token?key=${encodeURIComponent(endpoint.apiKey)}`;
}

async function post(url: string, body: string, contentType: string): Promise<any> {
  const response = await fetch(url, { method: "POST", headers: { "content-type": contentType }, body, signal: AbortSignal.timeout(30_000) });
  const answer = (await response.json().catch(() => ({}))) as any;
  if (!response.ok) throw new LoginError(answer?.error?.message ?? `the sign-in service answered ${response.status}`);
  return answer;
}

/** Signs in with an email and a password, and keeps the session in `file` (0600). */
export async function login(endpoint: AuthEndpoint, email: string, password: string, file: string, now = Date.now()): Promise<StoredSession> {
  const answer = await post(identityToolkit(endpoint, "signInWithPassword"), JSON.stringify({ email, password, returnSecureToken: true }), "application/json");
  const session: StoredSession = {
    ...endpoint,
    email,
    userId: answer.localId as string,
    idToken: answer.idToken as string,
    refreshToken: answer.refreshToken as string,
    expiresAtMs: now + Number(answer.expiresIn ?? 3600) * 1000,
  };
  await save(file, session);
  return session;
}

async function save(file: string, session: StoredSession): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await writeFile(file, JSON.stringify(session, null, 2), { mode: 0o600 });
  // writeFile's mode applies only to a new file: an older file is narrowed too.
  await chmod(file, 0o600);
}

/** The kept session, or undefined when nobody has logged in. */
export async function loadSession(file: string): Promise<StoredSession | undefined> {
  const text = await readFile(file, "utf8").catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ENOENT") return undefined;
    throw error;
  });
  return text === undefined ? undefined : (JSON.parse(text) as StoredSession);
}

/**
 * A current ID token from the kept session: the kept one while it has a minute left, else a new
 * one from the refresh token (saved back). A refresh token the service refuses (revoked, account
 * disabled) is a LoginError: log in again.
 */
export async function currentIdToken(file: string, now = Date.now()): Promise<string> {
  const session = await loadSession(file);
  if (!session) throw new LoginError("not logged in");
  if (session.expiresAtMs - now > 60_000) return session.idToken;
  const body = new URLSearchParams({ grant_type: "refresh_token", refresh_token: session.refreshToken }).toString();
  const answer = await post(secureToken(session), body, "application/x-www-form-urlencoded");
  const refreshed: StoredSession = {
    ...session,
    idToken: answer.id_token as string,
    refreshToken: answer.refresh_token as string,
    expiresAtMs: now + Number(answer.expires_in ?? 3600) * 1000,
  };
  await save(file, refreshed);
  return refreshed.idToken;
}

/** Forgets the kept session. */
export async function logout(file: string): Promise<void> {
  await rm(file, { force: true });
}
