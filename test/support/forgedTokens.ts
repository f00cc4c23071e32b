/**
 * Tokens the Auth emulator never issued, for tests of refusal: shaped like its own (unsigned,
 * `alg: none`), with one claim wrong, or signed by a key nobody trusts.
 */
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { SignJWT, importPKCS8 } from "jose";

/** An unsigned ID token for `projectId` with the emulator's claims, `overrides` on top. */
export function forgedIdToken(projectId: string, overrides: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const uid = `mallory-${randomUUID()}`;
  const claims = {
    iss: `https://securetoken.google.com/${projectId}`,
    aud: projectId,
    sub: uid,
    user_id: uid,
    iat: now,
    auth_time: now,
    exp: now + 3600,
    firebase: { sign_in_provider: "custom", identities: {} },
    ...overrides,
  };
  return `${part({ alg: "none", typ: "JWT" })}.${part(claims)}.`;
}

/** A well-formed ID token for `projectId`, RS256-signed by a key of its own (a stolen or made-up one). */
export async function foreignSignedToken(projectId: string): Promise<string> {
  const pem = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  return new SignJWT({})
    .setProtectedHeader({ alg: "RS256", kid: "stolen" })
    .setIssuer(`https://securetoken.google.com/${projectId}`)
    .setAudience(projectId)
    .setSubject(`mallory-${randomUUID()}`)
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(await importPKCS8(pem, "RS256"));
}
