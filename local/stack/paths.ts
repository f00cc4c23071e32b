/** Where the local stack keeps what it installs and writes: `.local/` under the repository root. */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const LOCAL_DIR = join(REPO_ROOT, ".local");
