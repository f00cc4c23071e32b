/**
 * Users of the Firebase Auth emulator, through the Identity Toolkit REST API it serves (the API
 * the Firebase SDKs call): sign a named user in, creating them on first use, or sign up with an
 * email and a password. The ID tokens are the emulator's own (unsigned, `alg: none`), which the
 * API, the rules and firebase-admin accept only while FIREBASE_AUTH_EMULATOR_HOST points at it.
 */

/** The emulator takes any API key; the SDKs must send one. */
export const EMULATOR_API_KEY = "local-emulator-key";

export interface SignedIn {
  userId: string;
  idToken: string;
  refreshToken: string;
}

async function call(host: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<any> {
  const response = await fetch(`http://${host}/identitytoolkit.googleapis.com/v1/${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const answer = (await response.json()) as any;
  if (!response.ok) throw new Error(`Auth emulator ${path}: ${response.status} ${answer?.error?.message ?? JSON.stringify(answer)}`);
  return answer;
}

/**
 * Signs in the user whose uid is `userId`, creating them if new: the emulator takes a custom
 * token written as plain JSON in place of one signed by a service account. The uid is the name
 * given, so `npm run token -- alice` is always the same user.
 */
export async function signInAs(host: string, userId: string): Promise<SignedIn> {
  const answer = await call(host, `accounts:signInWithCustomToken?key=${EMULATOR_API_KEY}`, { token: JSON.stringify({ uid: userId }), returnSecureToken: true });
  return { userId, idToken: answer.idToken as string, refreshToken: answer.refreshToken as string };
}

/** Signs up a new email/password user, as the web app's sign-up form does. */
export async function signUp(host: string, email: string, password: string): Promise<SignedIn> {
  const answer = await call(host, `accounts:signUp?key=${EMULATOR_API_KEY}`, { email, password, returnSecureToken: true });
  return { userId: answer.localId as string, idToken: answer.idToken as string, refreshToken: answer.refreshToken as string };
}

/** Signs a guest in without an account (anonymous sign-in), as "try it without an account" does. */
export async function signInAnonymously(host: string): Promise<SignedIn> {
  const answer = await call(host, `accounts:signUp?key=${EMULATOR_API_KEY}`, { returnSecureToken: true });
  return { userId: answer.localId as string, idToken: answer.idToken as string, refreshToken: answer.refreshToken as string };
}

/** An ID token for `userId`; what the tests and `npm run token` hand to the API. */
export async function emulatorIdToken(host: string, userId: string): Promise<string> {
  return (await signInAs(host, userId)).idToken;
}

/** Disables an account, as an operator would in the console (the admin API: `Bearer owner`). */
export async function disableUser(host: string, projectId: string, userId: string): Promise<void> {
  await call(host, `projects/${projectId}/accounts:update`, { localId: userId, disableUser: true }, { authorization: "Bearer owner" });
}
