/**
 * The SSRF guard of webhooks: a webhook URL must be `https` and every address its host resolves
 * to must be public, so that nobody can make our functions call into Google's metadata server,
 * the VPC or loopback. Checked when the edit is requested and again at each delivery, where the
 * sender connects only to an address this guard passed (no second DNS answer in between) and
 * follows no redirect. The local stack's explicit switch, WEBHOOK_ALLOW_LOOPBACK_HTTP, also lets
 * `http` and loopback addresses through, and nothing else private.
 */
import { isIP } from "node:net";

export class WebhookUrlError extends Error {
  override readonly name = "WebhookUrlError";
}

export interface WebhookGuardOptions {
  /** The local stack's switch: also allow `http` and loopback addresses (127.0.0.0/8, ::1). */
  allowLoopbackHttp: boolean;
  /** Every address a host name resolves to (DNS); throws when it resolves to none. */
  resolve: (hostname: string) => Promise<string[]>;
}

export interface WebhookGuard {
  /** The URL, once its form is acceptable; throws `WebhookUrlError` with a sentence otherwise. */
  checkUrl(raw: string): URL;
  /**
   * The addresses the URL's host resolves to, each allowed; throws `WebhookUrlError` when any is
   * not (a host that answers one public and one private address is refused whole).
   */
  resolveAllowed(url: URL): Promise<string[]>;
  /** The URL checked in form and in address, as at request time. */
  check(raw: string): Promise<URL>;
}

/** Longest accepted URL. */
const MAX_URL_LENGTH = 2048;
/** Names that are private whatever DNS says. */
const PRIVATE_NAMES = /(^|\.)(localhost|internal|local|localdomain|home\.arpa)$/i;

export function createWebhookGuard(options: WebhookGuardOptions): WebhookGuard {
  const schemes = options.allowLoopbackHttp ? ["https:", "http:"] : ["https:"];

  function allowed(address: string): boolean {
    return isPublicAddress(address) || (options.allowLoopbackHttp && isLoopbackAddress(address));
  }

  function checkUrl(raw: string): URL {
    if (raw.length > MAX_URL_LENGTH) throw new WebhookUrlError(`webhook.url may be at most ${MAX_URL_LENGTH} characters`);
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new WebhookUrlError("webhook.url is not a URL; send an absolute https URL such as https://example.com/hooks/edits");
    }
    if (!schemes.includes(url.protocol)) {
      throw new WebhookUrlError(`webhook.url must use ${options.allowLoopbackHttp ? "https or http" : "https"}, not ${url.protocol.replace(/:$/, "")}`);
    }
    if (url.username !== "" || url.password !== "") throw new WebhookUrlError("webhook.url must not carry a user name or password");
    const host = hostOf(url);
    if (isIP(host) !== 0) {
      if (!allowed(host)) throw new WebhookUrlError(`webhook.url points at ${host}, which is not a public address`);
    } else if (PRIVATE_NAMES.test(host.replace(/\.$/, "")) && !(options.allowLoopbackHttp && /^localhost\.?$/i.test(host))) {
      throw new WebhookUrlError(`webhook.url's host ${host} is a private name`);
    } else if (!host.includes(".") && !options.allowLoopbackHttp) {
      throw new WebhookUrlError(`webhook.url's host ${host} is not a fully qualified name`);
    }
    return url;
  }

  async function resolveAllowed(url: URL): Promise<string[]> {
    const host = hostOf(url);
    let addresses: string[];
    if (isIP(host) !== 0) addresses = [host];
    else {
      try {
        addresses = await options.resolve(host);
      } catch {
        throw new WebhookUrlError(`webhook.url's host ${host} does not resolve`);
      }
    }
    if (addresses.length === 0) throw new WebhookUrlError(`webhook.url's host ${host} does not resolve`);
    const refused = addresses.find((address) => !allowed(address));
    if (refused !== undefined) throw new WebhookUrlError(`webhook.url's host ${host} resolves to ${refused}, which is not a public address`);
    return addresses;
  }

  return {
    checkUrl,
    resolveAllowed,
    async check(raw) {
      const url = checkUrl(raw);
      await resolveAllowed(url);
      return url;
    },
  };
}

/** The URL's host without IPv6 brackets. */
function hostOf(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, "$1");
}

/** IPv4 ranges that are not the public internet (RFC 6890 and friends). */
const PRIVATE_V4: ReadonlyArray<[string, number]> = [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // carrier-grade NAT
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, the metadata server 169.254.169.254 included
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // documentation
  ["192.88.99.0", 24], // 6to4 relay anycast
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // documentation
  ["203.0.113.0", 24], // documentation
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, broadcast included
];

/** IPv6 ranges that are not the public internet; IPv4-mapped and -translated forms are checked as IPv4. */
const PRIVATE_V6: ReadonlyArray<[string, number]> = [
  ["::", 128], // unspecified
  ["::1", 128], // loopback
  ["100::", 64], // discard
  ["64:ff9b:1::", 48], // local-use IPv4/IPv6 translation
  ["2001::", 23], // IETF protocol assignments, Teredo included
  ["2001:db8::", 32], // documentation
  ["2002::", 16], // 6to4, which wraps any IPv4 address
  ["fc00::", 7], // unique local, fd00:ec2::254 (a cloud metadata address) included
  ["fe80::", 10], // link-local
  ["fec0::", 10], // site-local (deprecated)
  ["ff00::", 8], // multicast
];

/** True for an address on the public internet; false for private, loopback, link-local, metadata, reserved or malformed ones. */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return !PRIVATE_V4.some(([base, bits]) => inV4(address, base, bits));
  if (family !== 6) return false;
  const groups = v6Groups(address);
  if (!groups) return false;
  const embedded = embeddedV4(groups);
  if (embedded !== undefined) return isPublicAddress(embedded);
  return !PRIVATE_V6.some(([base, bits]) => inV6(groups, v6Groups(base) as number[], bits));
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopbackAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return inV4(address, "127.0.0.0", 8);
  if (family !== 6) return false;
  const groups = v6Groups(address);
  if (!groups) return false;
  const embedded = embeddedV4(groups);
  if (embedded !== undefined) return isLoopbackAddress(embedded);
  return groups.every((group, index) => group === (index === 7 ? 1 : 0));
}

function v4Number(address: string): number {
  return address.split(".").reduce((value, part) => value * 256 + Number(part), 0);
}

function inV4(address: string, base: string, bits: number): boolean {
  const size = 2 ** (32 - bits);
  return Math.floor(v4Number(address) / size) === Math.floor(v4Number(base) / size);
}

/** The eight 16-bit groups of an IPv6 address (a zone id dropped, a dotted IPv4 tail read). */
function v6Groups(address: string): number[] | undefined {
  let text = address.split("%")[0] ?? "";
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted?.[1]) {
    const value = v4Number(dotted[1]);
    text = text.slice(0, -dotted[1].length) + `${(value >>> 16).toString(16)}:${(value & 0xffff).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((group) => parseInt(group, 16)));
  const left = parse(head);
  const right = tail === undefined ? [] : parse(tail);
  const missing = 8 - left.length - right.length;
  if (missing < 0 || (tail === undefined && missing !== 0)) return undefined;
  const groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  return groups.every((group) => Number.isInteger(group) && group >= 0 && group <= 0xffff) ? groups : undefined;
}

/**
 * The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d),
 * SIIT (::ffff:0:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) address.
 */
function embeddedV4(groups: number[]): string | undefined {
  const zeros = (from: number, to: number) => groups.slice(from, to).every((group) => group === 0);
  const mapped = zeros(0, 5) && groups[5] === 0xffff;
  const compatible = zeros(0, 6) && !(groups[6] === 0 && (groups[7] ?? 0) <= 1);
  const siit = zeros(0, 4) && groups[4] === 0xffff && groups[5] === 0;
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && zeros(2, 6);
  if (!mapped && !compatible && !siit && !nat64) return undefined;
  const high = groups[6] ?? 0;
  const low = groups[7] ?? 0;
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

function inV6(groups: number[], base: number[], bits: number): boolean {
  for (let index = 0; index < 8; index++) {
    const take = Math.max(0, Math.min(16, bits - index * 16));
    if (take === 0) return true;
    const mask = (0xffff << (16 - take)) & 0xffff;
    if (((groups[index] ?? 0) & mask) !== ((base[index] ?? 0) & mask)) return false;
  }
  return true;
}
