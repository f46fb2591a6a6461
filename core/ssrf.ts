/**
 * The SSRF guard for callback URLs: the one place for the rule. A callback must reach a public host over
 * https. It is checked when the task is submitted (callbackUrlProblem) and again at delivery after DNS
 * resolution (resolveCallbackTarget), and the delivery then connects to the vetted address only, so that
 * a name that resolves differently the second time (DNS rebinding) cannot reach an inner address.
 *
 * Loopback (and http to it) can be allowed for a developer's own receiver on the local stack. Private,
 * link-local, metadata and other special-purpose addresses are refused everywhere.
 */
import { isIPv4, isIPv6 } from "node:net";
import type { Resolver } from "./ports.ts";

export interface CallbackPolicy {
  /** Allow loopback hosts (127.0.0.0/8, ::1, localhost), and plain http to them. Local stack only. */
  allowLoopback: boolean;
}

/** What an address is, as far as the guard cares; only `public` (and `loopback` when allowed) may be reached. */
export type AddressKind =
  | "public"
  | "loopback"
  | "private"
  | "link-local"
  | "metadata"
  | "unspecified"
  | "multicast"
  | "reserved";

/** A URL refused by the guard. Not worth retrying: the same URL is refused again. */
export class CallbackRefused extends Error {
  constructor(readonly problem: string) {
    super(problem);
    this.name = "CallbackRefused";
  }
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** Where a delivery goes: the URL, its host as the HTTP client wants it, and the vetted addresses. */
export interface CallbackTarget {
  url: URL;
  /** The host without IPv6 brackets; also the Host header and the TLS server name. */
  hostname: string;
  /** Every address the host resolved to, all checked; the request connects only to these. */
  addresses: ResolvedAddress[];
}

/** Cloud metadata endpoints, by address. Most are also link-local or private; this names them plainly. */
const METADATA_ADDRESSES = new Set([
  "169.254.169.254", // AWS, GCP, Azure, OpenStack, …
  "169.254.170.2", // ECS task metadata and credentials
  "100.100.100.200", // Alibaba Cloud
  "192.0.0.192", // Oracle Cloud
  "fd00:ec2::254", // AWS, over IPv6
]);

/** Cloud metadata endpoints, by name. */
const METADATA_NAMES = new Set(["metadata.google.internal", "metadata.goog", "metadata", "instance-data"]);

/** Special-use or private DNS suffixes that never name a public host. */
const PRIVATE_SUFFIXES = ["internal", "local", "localdomain", "home.arpa", "intranet", "lan", "corp"];

type Ipv4Range = [base: number, prefix: number, kind: Exclude<AddressKind, "public">];

const v4 = (dotted: string) => dotted.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0);

/** Special-purpose IPv4 ranges (RFC 6890 and friends). Anything else is public. */
const IPV4_RANGES: Ipv4Range[] = [
  [v4("0.0.0.0"), 8, "unspecified"],
  [v4("10.0.0.0"), 8, "private"],
  [v4("100.64.0.0"), 10, "private"], // carrier-grade NAT
  [v4("127.0.0.0"), 8, "loopback"],
  [v4("169.254.0.0"), 16, "link-local"],
  [v4("172.16.0.0"), 12, "private"],
  [v4("192.0.0.0"), 24, "reserved"], // IETF protocol assignments
  [v4("192.0.2.0"), 24, "reserved"], // documentation
  [v4("192.88.99.0"), 24, "reserved"], // 6to4 relay anycast
  [v4("192.168.0.0"), 16, "private"],
  [v4("198.18.0.0"), 15, "reserved"], // benchmarking
  [v4("198.51.100.0"), 24, "reserved"], // documentation
  [v4("203.0.113.0"), 24, "reserved"], // documentation
  [v4("224.0.0.0"), 4, "multicast"],
  [v4("240.0.0.0"), 4, "reserved"], // future use, and the broadcast address
];

function ipv4Kind(value: number, dotted: string): AddressKind {
  if (METADATA_ADDRESSES.has(dotted)) return "metadata";
  for (const [base, prefix, kind] of IPV4_RANGES) {
    const size = 2 ** (32 - prefix);
    if (value >= base && value < base + size) return kind;
  }
  return "public";
}

const dottedOf = (value: number) =>
  [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join(".");

/** The eight 16-bit groups of an IPv6 address (with or without an embedded dotted IPv4 tail). */
function ipv6Groups(address: string): number[] {
  let text = address.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (dotted) {
    const value = v4(dotted);
    text = `${text.slice(0, -dotted.length)}${(value >>> 16).toString(16)}:${(value & 0xffff).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const part = (s: string) => (s === "" ? [] : s.split(":").map((g) => Number.parseInt(g, 16)));
  const left = part(head);
  const right = tail === undefined ? [] : part(tail);
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length;
  return [...left, ...new Array<number>(zeros).fill(0), ...right];
}

function ipv6Kind(address: string): AddressKind {
  const g = ipv6Groups(address);
  const at = (i: number) => g[i] ?? 0;
  const embedded = (hi: number, lo: number) => {
    const value = at(hi) * 0x10000 + at(lo);
    return ipv4Kind(value, dottedOf(value));
  };
  const zeroUpTo = (n: number) => g.slice(0, n).every((x) => x === 0);
  const canonical = g.map((x) => x.toString(16)).join(":");
  if (canonical === "fd00:ec2:0:0:0:0:0:254") return "metadata";
  if (zeroUpTo(8)) return "unspecified";
  if (zeroUpTo(7) && at(7) === 1) return "loopback";
  // IPv4-mapped ::ffff:a.b.c.d and SIIT ::ffff:0:a.b.c.d reach the IPv4 address: judge that.
  if (zeroUpTo(5) && at(5) === 0xffff) return embedded(6, 7);
  if (zeroUpTo(4) && at(4) === 0xffff && at(5) === 0) return embedded(6, 7);
  // IPv4-compatible ::a.b.c.d (deprecated) is never a real destination.
  if (zeroUpTo(6)) return "reserved";
  // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) carry an IPv4 address: judged by it, but they never reach
  // this host's loopback, so a loopback inside is no loopback (and not allowed anywhere).
  const translated = (kind: AddressKind): AddressKind => (kind === "loopback" ? "reserved" : kind);
  if (at(0) === 0x64 && at(1) === 0xff9b && g.slice(2, 6).every((x) => x === 0)) {
    return translated(embedded(6, 7));
  }
  if (at(0) === 0x64 && at(1) === 0xff9b && at(2) === 1) return "private"; // local-use NAT64
  if (at(0) === 0x2002) return translated(embedded(1, 2));
  if (at(0) === 0x2001 && at(1) === 0) return "reserved"; // Teredo: the IPv4 inside is obfuscated
  if (at(0) === 0x2001 && at(1) === 0xdb8) return "reserved"; // documentation
  if ((at(0) & 0xfe00) === 0xfc00) return "private"; // unique local fc00::/7
  if ((at(0) & 0xffc0) === 0xfe80) return "link-local"; // fe80::/10
  if ((at(0) & 0xffc0) === 0xfec0) return "private"; // site-local (deprecated) fec0::/10
  if ((at(0) & 0xff00) === 0xff00) return "multicast";
  // Only 2000::/3 is global unicast.
  if ((at(0) & 0xe000) !== 0x2000) return "reserved";
  return "public";
}

/** What an IP address literal is; undefined when `address` is not one. IPv6 may come with brackets. */
export function addressKind(address: string): AddressKind | undefined {
  const bare = address.replace(/^\[(.*)\]$/, "$1");
  if (isIPv4(bare)) return ipv4Kind(v4(bare), bare);
  if (isIPv6(bare)) return ipv6Kind(bare);
  return undefined;
}

const allowed = (kind: AddressKind, policy: CallbackPolicy) =>
  kind === "public" || (kind === "loopback" && policy.allowLoopback);

const describe = (kind: AddressKind) => `${/^[aeiou]/.test(kind) ? "an" : "a"} ${kind} address`;

/** What a host name (not an address) is, by name alone; undefined for an ordinary public-looking name. */
function nameProblem(name: string): { kind: AddressKind; reason: string } | undefined {
  if (name === "localhost" || name.endsWith(".localhost")) {
    return { kind: "loopback", reason: `${name} is a loopback name` };
  }
  if (METADATA_NAMES.has(name)) return { kind: "metadata", reason: `${name} is a cloud metadata endpoint` };
  const suffix = PRIVATE_SUFFIXES.find((s) => name === s || name.endsWith(`.${s}`));
  if (suffix) return { kind: "private", reason: `${name} is a private name (.${suffix})` };
  if (!name.includes(".")) {
    return { kind: "private", reason: `${name} is not a fully qualified domain name` };
  }
  return undefined;
}

/**
 * Why a callback URL may not be used, or undefined when it may. Synchronous, by the URL alone: run at
 * submit. Numeric tricks (http://2130706433/, http://0x7f.1/, octal) are parsed by the WHATWG URL parser
 * into dotted addresses before they are judged.
 */
export function callbackUrlProblem(url: string, policy: CallbackPolicy): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "is not a valid URL";
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return "must use https";
  if (parsed.username || parsed.password) return "must not contain a user name or password";
  const host = hostOf(parsed);
  if (host === "") return "has no host";
  const kind = addressKind(host);
  const byName = kind === undefined ? nameProblem(host) : undefined;
  const loopback = kind === "loopback" || byName?.kind === "loopback";
  if (parsed.protocol === "http:" && !(policy.allowLoopback && loopback)) {
    return policy.allowLoopback ? "must use https (http only to a loopback host)" : "must use https";
  }
  if (kind !== undefined && !allowed(kind, policy)) return `${host} is ${describe(kind)}`;
  if (byName && !allowed(byName.kind, policy)) return byName.reason;
  return undefined;
}

/** The host as a client connects to it: no IPv6 brackets, no trailing dot, lower case. */
function hostOf(url: URL): string {
  return url.hostname
    .replace(/^\[(.*)\]$/, "$1")
    .replace(/\.+$/, "")
    .toLowerCase();
}

/**
 * Checks the URL again, resolves its host and checks every address it resolves to: one forbidden
 * address refuses the whole URL (a name that answers both public and private addresses is a rebinding
 * attempt). Throws CallbackRefused when refused; a failed lookup throws as the lookup does (retryable).
 */
export async function resolveCallbackTarget(
  url: string,
  policy: CallbackPolicy,
  resolve: Resolver,
): Promise<CallbackTarget> {
  const problem = callbackUrlProblem(url, policy);
  if (problem) throw new CallbackRefused(problem);
  const parsed = new URL(url);
  const hostname = hostOf(parsed);
  if (addressKind(hostname) !== undefined) {
    return { url: parsed, hostname, addresses: [{ address: hostname, family: isIPv4(hostname) ? 4 : 6 }] };
  }
  const addresses = await resolve(hostname);
  if (addresses.length === 0) throw new Error(`${hostname} did not resolve to any address`);
  for (const { address } of addresses) {
    const kind = addressKind(address) ?? "reserved";
    if (!allowed(kind, policy))
      throw new CallbackRefused(`${hostname} resolves to ${address}, ${describe(kind)}`);
    // Plain http is allowed to a loopback host only, so every address must be loopback.
    if (parsed.protocol === "http:" && kind !== "loopback") {
      throw new CallbackRefused(`${hostname} resolves to ${address}, which is not loopback: use https`);
    }
  }
  return { url: parsed, hostname, addresses };
}
