/**
 * The local stack's stand-ins for two Google-held keys, kept in `.local/keys/`:
 * - the token issuer: an RSA key that signs ID tokens shaped like Firebase Auth's, published
 *   as a JWKS file that the API verifies against, with the same code as in production;
 * - the URL signer: a service-account-shaped key the Storage client signs upload and
 *   download URLs with (in production the functions' service account signs through IAM).
 */
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SignJWT, importPKCS8 } from "jose";
import { LOCAL_DIR } from "../stack/paths.js";

const KEYS = join(LOCAL_DIR, "keys");
export const LOCAL_ISSUER = "https://local-issuer.image-edit.invalid";
export const LOCAL_JWKS_FILE = join(KEYS, "issuer-jwks.json");
const ISSUER_KEY_FILE = join(KEYS, "issuer-key.json");
export const LOCAL_SIGNER_KEY_FILE = join(KEYS, "url-signer.json");

interface IssuerKey {
  kid: string;
  privateKeyPem: string;
}

function ensureKeys(): IssuerKey {
  mkdirSync(KEYS, { recursive: true, mode: 0o700 });
  if (!existsSync(ISSUER_KEY_FILE) || !existsSync(LOCAL_JWKS_FILE)) {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const kid = randomUUID();
    const jwk = { ...(publicKey.export({ format: "jwk" }) as Record<string, unknown>), kid, alg: "RS256", use: "sig" };
    writeFileSync(LOCAL_JWKS_FILE, JSON.stringify({ keys: [jwk] }, null, 2));
    const key: IssuerKey = { kid, privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
    writeFileSync(ISSUER_KEY_FILE, JSON.stringify(key), { mode: 0o600 });
  }
  if (!existsSync(LOCAL_SIGNER_KEY_FILE)) {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const signer = {
      type: "service_account",
      client_email: "local-url-signer@image-edit-local.iam.gserviceaccount.com",
      private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    };
    writeFileSync(LOCAL_SIGNER_KEY_FILE, JSON.stringify(signer), { mode: 0o600 });
  }
  return JSON.parse(readFileSync(ISSUER_KEY_FILE, "utf8")) as IssuerKey;
}

/** Makes sure both keys exist; returns what the API's auth configuration needs. */
export function localAuthSettings(audience: string): { AUTH_ISSUER: string; AUTH_AUDIENCE: string; AUTH_JWKS: string; STORAGE_SIGNER_KEY_FILE: string } {
  ensureKeys();
  return { AUTH_ISSUER: LOCAL_ISSUER, AUTH_AUDIENCE: audience, AUTH_JWKS: LOCAL_JWKS_FILE, STORAGE_SIGNER_KEY_FILE: LOCAL_SIGNER_KEY_FILE };
}

export interface TokenOptions {
  audience: string;
  /** Seconds until it expires (default one hour, as Firebase's). */
  expiresInSeconds?: number;
  /** Override claims, for tests of bad tokens. */
  issuer?: string;
}

/** An ID token for `userId`, signed by the local issuer. */
export async function signLocalToken(userId: string, options: TokenOptions): Promise<string> {
  const key = ensureKeys();
  const privateKey = await importPKCS8(key.privateKeyPem, "RS256");
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ auth_time: now, firebase: { sign_in_provider: "custom" } })
    .setProtectedHeader({ alg: "RS256", kid: key.kid, typ: "JWT" })
    .setIssuer(options.issuer ?? LOCAL_ISSUER)
    .setAudience(options.audience)
    .setSubject(userId)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.expiresInSeconds ?? 3600))
    .sign(privateKey);
}

/** The issuer's public key set, for tests that verify in-process. */
export function localJwks(): { keys: Array<Record<string, unknown>> } {
  ensureKeys();
  return JSON.parse(readFileSync(LOCAL_JWKS_FILE, "utf8")) as { keys: Array<Record<string, unknown>> };
}

