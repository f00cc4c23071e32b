/**
 * The command line of `edit`, read into options. Pure: the arguments and the environment come in,
 * so that every rule is a table in test/unit/editArgs.unit.test.ts.
 */

export const USAGE = `Usage: edit <operation> <file> [-o out] [--param name=value ...] [options]
       edit login --email <address> [--api-key <key>] [--auth-emulator <host:port>]
       edit logout

Edits a photo with the image-edit service: uploads it with a progress bar, follows the job live,
and saves the result.

  <operation>              upscale, enhance, remove_background, comic or aged (see GET /v1/models)
  <file>                   a JPEG, PNG, WebP or AVIF photo (HEIC: convert it to JPEG first)
  -o, --output <path>      where to save the result (default: <file>.<operation>.png beside it)
  -p, --param name=value   a parameter of the edit, such as --param scale=2 (repeatable)
  --api <url>              the service (env EDIT_API_URL; default http://127.0.0.1:8080, the local stack)
  --token <jwt>            a Firebase ID token (env EDIT_TOKEN); for the local stack,
                           \`npm run -s token -- <name>\` prints one. Without one, the session
                           of \`edit login\` is used, its token refreshed when it runs out
  --firestore-emulator <host:port>
                           follow the job through a Firestore listener on the emulator (env
                           FIRESTORE_EMULATOR_HOST); without it the job is followed through the API
  --project <id>           the Firebase project of the listener (env EDIT_PROJECT_ID; default image-edit-local)
  --direct                 send the photo in the request itself instead of a signed upload (small photos)
  --priority <level>       interactive (default) or batch: batch jobs wait while interactive ones run
  --no-cache               run the model even if an earlier identical request of yours has a result
                           (also --cache=false)
  --webhook <url>          also POST the job's end to this https URL, signed (docs/webhooks.md)
  --webhook-events <list>  which events the webhook tells: comma-separated of running, progress,
                           succeeded, failed, canceled (default succeeded,failed,canceled)
  --format <png|jpeg|webp> the result's format (default png; jpeg for remove_background needs --background)
  --quality <1-100>        jpeg or webp quality (default 90)
  --background <#rrggbb>   lay transparency on this colour
  --wait <1-60>            wait up to this many seconds in the request itself for the result
                           (Prefer: wait); implies --direct
  --json                   print one JSON object on stdout and no progress
  -h, --help               this text

login signs in with an email and a password (the password from EDIT_PASSWORD, else read from
stdin) and keeps the session in $XDG_CONFIG_HOME/image-edit/credentials.json (~/.config/…), 0600.
  --email <address>        the account (env EDIT_EMAIL)
  --api-key <key>          the Firebase web API key of a deployed project (env EDIT_API_KEY)
  --auth-emulator <host:port>
                           the Firebase Auth emulator (env FIREBASE_AUTH_EMULATOR_HOST; default
                           127.0.0.1:9099, the local stack's, unless an API key is given)

Exit codes: 0 the edit succeeded; 1 the edit failed or was canceled; 2 bad usage (arguments, the
file, or a request the service refused as invalid); 3 the service could not be reached or is
unavailable; 4 not signed in (no token, or a token the service refused).`;

export const EXIT = { succeeded: 0, editFailed: 1, usage: 2, unreachable: 3, unauthenticated: 4 } as const;

export interface EditOptions {
  operation: string;
  file: string;
  output?: string;
  params: Record<string, string>;
  apiUrl: string;
  auth: { token: string } | undefined;
  firestoreEmulatorHost?: string;
  projectId: string;
  direct: boolean;
  json: boolean;
  /** `interactive` or `batch`; absent, the service's default (interactive). */
  priority?: "interactive" | "batch";
  /** False with --no-cache: no answer from the result cache. */
  cache: boolean;
  /** Where the service POSTs the job's events, and which ones (default the final ones). */
  webhook?: { url: string; events?: string[] };
  /** The result's format, as the service takes it; absent, PNG. */
  format?: { format: "png" | "jpeg" | "webp"; quality?: number; background?: string };
  /** Seconds to wait in the request for the result (direct flow). */
  waitSeconds?: number;
}

export interface LoginOptions {
  email: string;
  /** The password, when the environment gives one (EDIT_PASSWORD); otherwise it is read from stdin. */
  password?: string;
  apiKey: string;
  /** host:port of the Auth emulator; absent for a deployed project's Firebase Auth. */
  emulatorHost?: string;
}

export type ParsedArgs =
  | { kind: "run"; options: EditOptions }
  | { kind: "login"; options: LoginOptions }
  | { kind: "logout" }
  | { kind: "help" }
  | { kind: "usage_error"; message: string };

/** The local stack's Auth emulator, and the key the emulator takes (any). */
const LOCAL_AUTH_EMULATOR = "127.0.0.1:9099";
const EMULATOR_API_KEY = "local-emulator-key";

const WITH_VALUE = new Map([
  ["-o", "output"],
  ["--output", "output"],
  ["-p", "param"],
  ["--param", "param"],
  ["--api", "api"],
  ["--token", "token"],
  ["--firestore-emulator", "firestore"],
  ["--project", "project"],
  ["--priority", "priority"],
  ["--cache", "cache"],
  ["--webhook", "webhook"],
  ["--webhook-events", "webhookEvents"],
  ["--format", "format"],
  ["--quality", "quality"],
  ["--background", "background"],
  ["--wait", "wait"],
  ["--email", "email"],
  ["--api-key", "apiKey"],
  ["--auth-emulator", "authEmulator"],
]);

export function parseEditArgs(argv: readonly string[], env: Record<string, string | undefined>): ParsedArgs {
  const positional: string[] = [];
  const values: Record<string, string> = {};
  const params: Record<string, string> = {};
  let json = false;
  let direct = false;
  let cache = true;
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!;
    if (arg === "-h" || arg === "--help") return { kind: "help" };
    if (arg === "--json") {
      json = true;
      continue;
    }
    if (arg === "--direct") {
      direct = true;
      continue;
    }
    if (arg === "--no-cache") {
      cache = false;
      continue;
    }
    if (arg === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
    let inline: string | undefined;
    const equals = arg.indexOf("=");
    if (arg.startsWith("--") && equals > 0) {
      inline = arg.slice(equals + 1);
      arg = arg.slice(0, equals);
    }
    const name = WITH_VALUE.get(arg);
    if (name === undefined) {
      if (arg.startsWith("-") && arg !== "-") return { kind: "usage_error", message: `unknown option ${arg}` };
      positional.push(arg);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined || value === "") return { kind: "usage_error", message: `${arg} needs a value` };
    if (name === "param") {
      const split = value.indexOf("=");
      if (split < 1 || split === value.length - 1) return { kind: "usage_error", message: `--param takes name=value, not "${value}"` };
      params[value.slice(0, split)] = value.slice(split + 1);
    } else {
      values[name] = value;
    }
  }
  if (positional[0] === "logout" && positional.length === 1) return { kind: "logout" };
  if (positional[0] === "login") return parseLogin(positional, values, env);
  if (positional.length !== 2) {
    return { kind: "usage_error", message: positional.length < 2 ? "give an operation and a file" : `unexpected argument "${positional[2]}"` };
  }
  const [operation, file] = positional as [string, string];
  if (!/^[a-z_]+$/.test(operation)) return { kind: "usage_error", message: `"${operation}" is not an operation name` };
  const apiUrl = (values.api ?? env.EDIT_API_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
  try {
    const url = new URL(apiUrl);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("scheme");
  } catch {
    return { kind: "usage_error", message: `--api must be an http(s) URL, not "${apiUrl}"` };
  }
  const priority = values.priority;
  if (priority !== undefined && priority !== "interactive" && priority !== "batch") {
    return { kind: "usage_error", message: `--priority takes interactive or batch, not "${priority}"` };
  }
  if (values.cache !== undefined) {
    if (values.cache !== "true" && values.cache !== "false") return { kind: "usage_error", message: `--cache takes true or false, not "${values.cache}"` };
    cache = cache && values.cache === "true";
  }
  const token = values.token ?? env.EDIT_TOKEN;
  const auth = token ? { token } : undefined;
  if (values.format !== undefined && !["png", "jpeg", "webp"].includes(values.format)) {
    return { kind: "usage_error", message: `--format is png, jpeg or webp, not "${values.format}"` };
  }
  const quality = values.quality === undefined ? undefined : Number(values.quality);
  if (quality !== undefined && !(Number.isInteger(quality) && quality >= 1 && quality <= 100)) {
    return { kind: "usage_error", message: `--quality is a whole number from 1 to 100, not "${values.quality}"` };
  }
  if ((quality !== undefined || values.background !== undefined) && values.format === undefined) {
    return { kind: "usage_error", message: "--quality and --background go with --format" };
  }
  if (values.background !== undefined && !/^#[0-9a-fA-F]{6}$/.test(values.background)) {
    return { kind: "usage_error", message: `--background is a colour #rrggbb, not "${values.background}"` };
  }
  const waitSeconds = values.wait === undefined ? undefined : Number(values.wait);
  if (waitSeconds !== undefined && !(Number.isInteger(waitSeconds) && waitSeconds >= 1 && waitSeconds <= 60)) {
    return { kind: "usage_error", message: `--wait is a whole number of seconds from 1 to 60, not "${values.wait}"` };
  }
  const format =
    values.format === undefined
      ? undefined
      : {
          format: values.format as "png" | "jpeg" | "webp",
          ...(quality === undefined ? {} : { quality }),
          ...(values.background === undefined ? {} : { background: values.background }),
        };
  const firestoreEmulatorHost = values.firestore ?? env.FIRESTORE_EMULATOR_HOST;
  if (firestoreEmulatorHost !== undefined && !/^[^:\s]+:\d{1,5}$/.test(firestoreEmulatorHost)) {
    return { kind: "usage_error", message: `the Firestore emulator must be host:port, not "${firestoreEmulatorHost}"` };
  }
  if (values.webhookEvents !== undefined && values.webhook === undefined) {
    return { kind: "usage_error", message: "--webhook-events needs --webhook" };
  }
  let webhook: EditOptions["webhook"];
  if (values.webhook !== undefined) {
    try {
      const url = new URL(values.webhook);
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("scheme");
    } catch {
      return { kind: "usage_error", message: `--webhook must be an https URL, not "${values.webhook}"` };
    }
    const events = values.webhookEvents?.split(",").map((event) => event.trim()).filter(Boolean);
    webhook = { url: values.webhook, ...(events === undefined ? {} : { events }) };
  }
  return {
    kind: "run",
    options: {
      operation,
      file,
      ...(values.output === undefined ? {} : { output: values.output }),
      params,
      apiUrl,
      auth,
      ...(firestoreEmulatorHost ? { firestoreEmulatorHost } : {}),
      projectId: values.project ?? env.EDIT_PROJECT_ID ?? "image-edit-local",
      direct: direct || waitSeconds !== undefined,
      json,
      ...(priority === undefined ? {} : { priority }),
      cache,
      ...(webhook === undefined ? {} : { webhook }),
      ...(format === undefined ? {} : { format }),
      ...(waitSeconds === undefined ? {} : { waitSeconds }),
    },
  };
}

function parseLogin(positional: string[], values: Record<string, string>, env: Record<string, string | undefined>): ParsedArgs {
  if (positional.length !== 1) return { kind: "usage_error", message: `unexpected argument "${positional[1]}"` };
  const email = values.email ?? env.EDIT_EMAIL;
  if (!email) return { kind: "usage_error", message: "login needs --email (or EDIT_EMAIL)" };
  const givenKey = values.apiKey ?? env.EDIT_API_KEY;
  const emulatorHost = values.authEmulator ?? env.FIREBASE_AUTH_EMULATOR_HOST ?? (givenKey ? undefined : LOCAL_AUTH_EMULATOR);
  if (emulatorHost !== undefined && !/^[^:\s]+:\d{1,5}$/.test(emulatorHost)) {
    return { kind: "usage_error", message: `the Auth emulator must be host:port, not "${emulatorHost}"` };
  }
  return {
    kind: "login",
    options: {
      email,
      ...(env.EDIT_PASSWORD ? { password: env.EDIT_PASSWORD } : {}),
      apiKey: givenKey ?? EMULATOR_API_KEY,
      ...(emulatorHost === undefined ? {} : { emulatorHost }),
    },
  };
}

/** The content type a photo's first bytes show, or undefined when it is none we accept. */
export function sniffPhotoType(bytes: Uint8Array): "image/jpeg" | "image/png" | "image/webp" | "image/avif" | "image/heic" | undefined {
  const starts = (...prefix: number[]) => prefix.every((byte, i) => bytes[i] === byte);
  if (starts(0xff, 0xd8, 0xff)) return "image/jpeg";
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "image/png";
  if (starts(0x52, 0x49, 0x46, 0x46) && String.fromCharCode(...bytes.subarray(8, 12)) === "WEBP") return "image/webp";
  if (String.fromCharCode(...bytes.subarray(4, 8)) === "ftyp") {
    // ISO media: the major and compatible brands say AVIF or HEIC/HEIF.
    const size = Math.min(bytes.length, ((bytes[0] ?? 0) << 24) | ((bytes[1] ?? 0) << 16) | ((bytes[2] ?? 0) << 8) | (bytes[3] ?? 0));
    const brands = [String.fromCharCode(...bytes.subarray(8, 12))];
    for (let at = 16; at + 4 <= size; at += 4) brands.push(String.fromCharCode(...bytes.subarray(at, at + 4)));
    if (brands.some((brand) => brand === "avif" || brand === "avis")) return "image/avif";
    if (brands.some((brand) => /^(hei[cxms]|hev[cxms]|mif1|msf1)$/.test(brand))) return "image/heic";
  }
  return undefined;
}

/** `photo.jpg` + `upscale` + `image/png` → `photo.upscale.png`, beside the input. */
export function defaultOutputPath(file: string, operation: string, contentType: string): string {
  const extension = contentType === "image/jpeg" ? "jpg" : contentType === "image/webp" ? "webp" : "png";
  const slash = Math.max(file.lastIndexOf("/"), file.lastIndexOf("\\"));
  const dot = file.lastIndexOf(".");
  const stem = dot > slash + 1 ? file.slice(0, dot) : file;
  return `${stem}.${operation}.${extension}`;
}

/** A text progress bar: `[#########-----------]  45%`. */
export function progressBar(done: number, total: number, width = 24): string {
  const fraction = total <= 0 ? 1 : Math.min(1, Math.max(0, done / total));
  const filled = Math.round(fraction * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** The exit code for an error, by what a script would do next: fix the call, retry later, or sign in. */
export function exitCodeFor(error: unknown): number {
  const named = error as { name?: string; status?: number; code?: string };
  if (named.name === "ServiceUnreachableError") return EXIT.unreachable;
  if (named.name === "EditApiError" || named.name === "UploadError") {
    const status = named.status ?? 0;
    if (status === 401) return EXIT.unauthenticated;
    if (status === 0 || status >= 500) return EXIT.unreachable;
    return EXIT.usage;
  }
  if (named.code === "permission-denied" || named.code === "unauthenticated") return EXIT.unauthenticated;
  return EXIT.unreachable;
}
