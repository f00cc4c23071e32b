/**
 * The local stand-in for a Google-held key: a service-account-shaped key, kept in
 * `.local/keys/`, that the Storage client signs upload and download URLs with (in production the
 * functions' service account signs through IAM).
 */
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LOCAL_DIR } from "./paths.js";

const KEYS = join(LOCAL_DIR, "keys");
export const LOCAL_SIGNER_KEY_FILE = join(KEYS, "url-signer.json");

/** Makes the key on first use; returns the path the functions read it from (STORAGE_SIGNER_KEY_FILE). */
export function ensureUrlSignerKey(): string {
  mkdirSync(KEYS, { recursive: true, mode: 0o700 });
  if (!existsSync(LOCAL_SIGNER_KEY_FILE)) {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const signer = {
      type: "service_account",
      client_email: "local-url-signer@image-edit-local.iam.gserviceaccount.com",
      private_key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    };
    writeFileSync(LOCAL_SIGNER_KEY_FILE, JSON.stringify(signer), { mode: 0o600 });
  }
  return LOCAL_SIGNER_KEY_FILE;
}
