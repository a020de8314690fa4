import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { domainToASCII } from 'node:url';
import { EgressDeniedError } from './sandboxError';

/**
 * One entry of a sandboxed tool's egress allow-list. As a string:
 * `[METHODS ][scheme://]host[:port]`, for example `api.example.com` (https, port 443, GET and
 * HEAD), `https://*.example.com`, `GET,POST https://api.example.com`, `http://127.0.0.1:8080` or
 * `https://api.example.com:*` (any port). As an object, the same parts by name.
 */
export type EgressRule = string | EgressRuleObject;

export interface EgressRuleObject {
  /**
   * `api.example.com`; `*.example.com` (its subdomains at any depth, not example.com itself);
   * `*` (any host); an IP address (`127.0.0.1`, `::1`); or a CIDR range (`10.1.0.0/16`).
   */
  readonly host: string;
  /** Default `['https']`. */
  readonly schemes?: readonly string[];
  /** Default: the scheme's own port (443 for https, 80 for http); `'*'` for any. */
  readonly ports?: readonly number[] | '*';
  /** Default `['GET', 'HEAD']`; `'*'` for any. */
  readonly methods?: readonly string[] | '*';
  /**
   * Let a host name of this rule reach private, loopback and link-local addresses when it resolves
   * to them. Without it such addresses are reachable only through a rule that names them (an IP
   * address, a CIDR range or `localhost`). Default false.
   */
  readonly allowPrivate?: boolean;
}

/** An address a host name resolved to. */
export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

/** Resolves a host name to every address it has (the sandbox checks them all). */
export type Resolve = (hostname: string) => Promise<readonly ResolvedAddress[]>;

export const systemResolve: Resolve = async (hostname) => {
  const found = await lookup(hostname, { all: true, verbatim: true });
  return found.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
};

type HostPattern =
  | { readonly kind: 'any' }
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'suffix'; readonly suffix: string }
  /** `single`: the one address the rule names (canonical), when it names one rather than a range. */
  | { readonly kind: 'address'; readonly list: BlockList; readonly text: string; readonly single: string | undefined };

interface Rule {
  readonly text: string;
  readonly host: HostPattern;
  readonly schemes: readonly string[];
  readonly ports: readonly number[] | '*';
  readonly methods: readonly string[] | '*';
  readonly allowPrivate: boolean;
}

const SCHEMES = ['http', 'https'];
const DEFAULT_PORTS: Readonly<Record<string, number>> = { http: 80, https: 443 };
const DEFAULT_METHODS = ['GET', 'HEAD'];
const METHOD = /^[A-Z]+$/;
const RULE_TEXT = /^(?:(?<methods>\*|[A-Za-z]+(?:,[A-Za-z]+)*)\s+)?(?:(?<scheme>[A-Za-z][A-Za-z0-9+.-]*):\/\/)?(?<host>\[[^\]]+\]|[^\s:/[\]]+)(?::(?<port>\d+|\*))?\/?$/;

/**
 * Addresses a tool reaches only when a rule names them: loopback, private, link-local (cloud
 * metadata services live there), carrier-grade NAT, unspecified, multicast and reserved ranges.
 */
const SPECIAL_RANGES: readonly (readonly [string, number, 'ipv4' | 'ipv6', string])[] = [
  ['0.0.0.0', 8, 'ipv4', 'unspecified'],
  ['10.0.0.0', 8, 'ipv4', 'private'],
  ['100.64.0.0', 10, 'ipv4', 'carrier-grade NAT'],
  ['127.0.0.0', 8, 'ipv4', 'loopback'],
  ['169.254.0.0', 16, 'ipv4', 'link-local'],
  ['172.16.0.0', 12, 'ipv4', 'private'],
  ['192.0.0.0', 24, 'ipv4', 'reserved'],
  ['192.168.0.0', 16, 'ipv4', 'private'],
  ['198.18.0.0', 15, 'ipv4', 'reserved'],
  ['224.0.0.0', 4, 'ipv4', 'multicast'],
  ['240.0.0.0', 4, 'ipv4', 'reserved'],
  ['::', 128, 'ipv6', 'unspecified'],
  ['::1', 128, 'ipv6', 'loopback'],
  ['fc00::', 7, 'ipv6', 'unique-local (private)'],
  ['fe80::', 10, 'ipv6', 'link-local'],
  ['fec0::', 10, 'ipv6', 'site-local'],
  ['ff00::', 8, 'ipv6', 'multicast'],
];
/**
 * Cloud metadata and platform services, which hand out credentials to whatever reaches them. They
 * are reachable only through a rule that names the address itself: never under `*`, a CIDR range
 * or allowPrivate, even where the address is otherwise public (Azure's WireServer).
 */
const METADATA_ADDRESSES: ReadonlyMap<string, string> = new Map([
  ['169.254.169.254', 'cloud metadata'],
  ['169.254.170.2', 'cloud metadata (AWS ECS)'],
  ['169.254.170.23', 'cloud metadata (AWS EKS Pod Identity)'],
  ['fd00:ec2::254', 'cloud metadata (AWS)'],
  ['fd00:ec2::23', 'cloud metadata (AWS EKS Pod Identity)'],
  ['168.63.129.16', 'cloud metadata (Azure WireServer)'],
  ['100.100.100.200', 'cloud metadata (Alibaba Cloud)'],
  ['192.0.0.192', 'cloud metadata (Oracle Cloud)'],
]);
/** Host names of metadata services, refused by name whatever they resolve to, unless a rule names them. */
const METADATA_NAMES: ReadonlyMap<string, string> = new Map([
  ['metadata.google.internal', 'Google Cloud'],
  ['metadata.goog', 'Google Cloud'],
  ['metadata', 'Google Cloud'],
  ['instance-data', 'AWS'],
  ['instance-data.ec2.internal', 'AWS'],
]);

const specialLists = SPECIAL_RANGES.map(([network, prefix, family, label]) => {
  const list = new BlockList();
  list.addSubnet(network, prefix, family);
  return { list, family, label };
});

/**
 * What an address is when it is not an ordinary public one (`loopback`, `private`,
 * `cloud metadata (Azure WireServer)`...), or undefined. IPv4 addresses embedded in IPv6 ones
 * (IPv4-mapped `::ffff:127.0.0.1`, IPv4-translated `::ffff:0:7f00:1`, NAT64 `64:ff9b::7f00:1`,
 * 6to4 `2002:7f00:1::`) count as the IPv4 address; the local-use NAT64 prefix `64:ff9b:1::/48`
 * leads to a translator of the local network, so an address there is never public.
 */
export function specialAddressKind(withZone: string): string | undefined {
  const address = withZone.replace(/%.*$/, '');
  const family = isIP(address);
  if (family === 0) return 'unparseable';
  const metadata = METADATA_ADDRESSES.get(canonicalAddress(address));
  if (metadata !== undefined) return metadata;
  const embedded = family === 6 ? embeddedIPv4(address) : undefined;
  if (embedded !== undefined) return specialAddressKind(embedded.address) ?? embedded.kind;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  return specialLists.find((entry) => entry.family === type && entry.list.check(address, type))?.label;
}

/** Whether an address is a cloud metadata service's (embedded in IPv6 or not). */
function isMetadataAddress(address: string): boolean {
  return specialAddressKind(address)?.startsWith('cloud metadata') === true;
}

/**
 * The IPv4 address inside an IPv4-mapped, IPv4-translated, IPv4-compatible, NAT64 or 6to4 IPv6
 * address, and what the IPv6 address is when that IPv4 address is public (undefined: public too).
 */
function embeddedIPv4(address: string): { readonly address: string; readonly kind: string | undefined } | undefined {
  const words = ipv6Words(address);
  if (!words) return undefined;
  const v4 = (high: number, low: number) => `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
  const zero = (from: number, to: number) => words.slice(from, to).every((word) => word === 0);
  const last = v4(words[6]!, words[7]!);
  if (zero(0, 5) && (words[5] === 0xffff || (words[5] === 0 && (words[6] !== 0 || words[7]! > 1)))) return { address: last, kind: undefined };
  if (zero(0, 4) && words[4] === 0xffff && words[5] === 0) return { address: last, kind: undefined };
  if (words[0] === 0x64 && words[1] === 0xff9b && zero(2, 6)) return { address: last, kind: undefined };
  if (words[0] === 0x64 && words[1] === 0xff9b && words[2] === 1) return { address: last, kind: 'local-use NAT64' };
  if (words[0] === 0x2002) return { address: v4(words[1]!, words[2]!), kind: undefined };
  return undefined;
}

/** The eight 16-bit words of an IPv6 address (a trailing dotted IPv4 part included). */
function ipv6Words(address: string): number[] | undefined {
  let text = address.toLowerCase().replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (part: string | undefined) => (part ? part.split(':').map((word) => parseInt(word, 16)) : []);
  const head = parse(halves[0]);
  const tail = parse(halves[1]);
  const words = halves.length === 2 ? [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail] : head;
  return words.length === 8 && words.every((word) => Number.isInteger(word) && word >= 0 && word <= 0xffff) ? words : undefined;
}

function canonicalAddress(address: string): string {
  if (isIP(address) !== 6) return address;
  const words = ipv6Words(address);
  return words ? new URL(`http://[${words.map((word) => word.toString(16)).join(':')}]`).hostname.slice(1, -1) : address;
}

/** The host of a URL without IPv6 brackets or a trailing dot, as rules compare it. */
export function urlHost(url: URL): string {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return host.endsWith('.') ? host.slice(0, -1) : host;
}

function defaultPort(scheme: string): number | undefined {
  return DEFAULT_PORTS[scheme];
}

/** `api.example.com`, `127.0.0.1:8080` or `[::1]:8080`: the host, and the port when it is not the scheme's own. */
export function describeTarget(url: URL): string {
  return url.port ? url.host : url.hostname;
}

/** The decision on a URL and method, before any name is resolved. */
export type EgressMatch = { readonly ok: true; readonly rules: readonly Rule[] } | { readonly ok: false; readonly reason: string };

/**
 * A sandboxed tool's egress allow-list. A request is permitted when one rule matches its scheme,
 * host, port and method, and every address its host resolves to is an ordinary public address or
 * one the matching rule names. Redirects are checked again, hop by hop, by the caller.
 */
export class EgressPolicy {
  static readonly NONE = new EgressPolicy([]);

  private constructor(private readonly rules: readonly Rule[]) {}

  /** Throws an Error naming the rule and what is wrong with it. */
  static parse(rules: readonly EgressRule[]): EgressPolicy {
    if (!Array.isArray(rules)) throw new Error("egress must be a list of rules, such as ['api.example.com'].");
    return new EgressPolicy(rules.map((rule, index) => parseRule(rule, index)));
  }

  get isEmpty(): boolean {
    return this.rules.length === 0;
  }

  /**
   * `method` undefined is a tunnel (an HTTPS CONNECT through the OS tier's proxy): the method is
   * not known, so any rule that permits the scheme, host and port is enough.
   */
  match(url: URL, method: string | undefined): EgressMatch {
    const scheme = url.protocol.slice(0, -1);
    const host = urlHost(url);
    const port = url.port === '' ? defaultPort(scheme) : Number(url.port);
    const target = describeTarget(url);
    const byHost = this.rules.filter((rule) => hostMatches(rule.host, host));
    if (byHost.length === 0) {
      return {
        ok: false,
        reason: `it tried to reach ${target}, which its egress allow-list does not permit${this.isEmpty ? ' (it has none: a sandboxed tool reaches no network unless granted `sandbox: { egress: [...] }`)' : ''}`,
      };
    }
    const byScheme = byHost.filter((rule) => rule.schemes.includes(scheme));
    if (byScheme.length === 0) {
      return {
        ok: false,
        reason: `it tried to reach ${target} over ${scheme}, which its egress allow-list does not permit (it allows ${unique(byHost.flatMap((rule) => rule.schemes)).join(' or ')} there)`,
      };
    }
    const byPort = byScheme.filter((rule) => rule.ports === '*' || (port !== undefined && rule.ports.includes(port)));
    if (byPort.length === 0) {
      const ports = unique(byScheme.flatMap((rule) => (rule.ports === '*' ? [] : rule.ports.map(String))));
      return {
        ok: false,
        reason: `it tried to reach ${url.hostname} on port ${String(port)}, which its egress allow-list does not permit (it allows port ${ports.join(' or ')} there)`,
      };
    }
    if (method === undefined) return { ok: true, rules: byPort };
    const byMethod = byPort.filter((rule) => rule.methods === '*' || rule.methods.includes(method));
    if (byMethod.length === 0) {
      const methods = unique(byPort.flatMap((rule) => (rule.methods === '*' ? [] : rule.methods)));
      return {
        ok: false,
        reason: `it tried to ${method} ${target}, which its egress allow-list does not permit (it allows ${methods.join(', ')} there)`,
      };
    }
    return { ok: true, rules: byMethod };
  }

  /**
   * Checks a tunnel to host:port (a CONNECT through the OS tier's proxy), whose method and scheme
   * cannot be seen: a rule that permits https there, or http (clients tunnel plain HTTP too), is
   * enough. A denial is explained for the scheme the rules name for that host, https first.
   */
  async checkTunnel(hostname: string, port: number, resolve: Resolve): Promise<readonly ResolvedAddress[]> {
    const host = hostname.startsWith('[') ? hostname : isIP(hostname) === 6 ? `[${hostname}]` : hostname;
    const urls = SCHEMES.map((scheme) => new URL(`${scheme}://${host}:${port}/`));
    const named = (url: URL) => this.rules.some((rule) => hostMatches(rule.host, urlHost(url)) && rule.schemes.includes(url.protocol.slice(0, -1)));
    const ordered = [...urls.filter(named).reverse(), ...urls.filter((url) => !named(url)).reverse()];
    let first: unknown;
    for (const url of ordered) {
      try {
        return await this.check(url, undefined, resolve);
      } catch (error) {
        if (!(error instanceof EgressDeniedError)) throw error;
        first ??= error;
      }
    }
    throw first;
  }

  /**
   * Checks a request completely: the URL and method, then every address the host resolves to.
   * Returns the checked addresses, the only ones to connect to (so that a second lookup cannot
   * answer differently: DNS rebinding), or throws an EgressDeniedError whose message completes
   * "<tool> failed: ".
   */
  async check(url: URL, method: string | undefined, resolve: Resolve, redirectedFrom?: URL): Promise<readonly ResolvedAddress[]> {
    const deny = (reason: string): never => {
      const from = redirectedFrom ? `it followed a redirect from ${redirectedFrom.origin}${redirectedFrom.pathname} and tried to ` : undefined;
      throw new EgressDeniedError(from ? reason.replace(/^it tried to /, from) : reason, { url: url.href, method });
    };
    const decision = this.match(url, method);
    if (!decision.ok) return deny(decision.reason);
    const host = urlHost(url);
    const service = METADATA_NAMES.get(host);
    if (service !== undefined && !decision.rules.some((rule) => rule.host.kind === 'name' && rule.host.name === host)) {
      return deny(`it tried to reach ${describeTarget(url)}, the cloud metadata service of ${service}, which its egress allow-list does not permit (only a rule naming that host allows it)`);
    }
    const literal = isIP(host);
    const addresses: readonly ResolvedAddress[] = literal ? [{ address: host, family: literal === 6 ? 6 : 4 }] : await resolve(host);
    if (addresses.length === 0) throw new Error(`${host} did not resolve to any address`);
    for (const { address } of addresses) {
      const kind = specialAddressKind(address);
      if (kind === undefined || decision.rules.some((rule) => coversSpecial(rule, host, address))) continue;
      const what = `${/^(?:[aeio]|un(?!i))/.test(kind) ? 'an' : 'a'} ${kind} address`;
      const how = isMetadataAddress(address) ? 'only a rule naming the address itself allows it' : undefined;
      return deny(
        literal
          ? `it tried to reach ${describeTarget(url)}, ${what}, which its egress allow-list does not permit (${how ?? 'name the address in a rule to allow it'})`
          : `it tried to reach ${describeTarget(url)}, which resolves to ${address}, ${what} its egress allow-list does not permit (${how ?? 'name the address in a rule, or set allowPrivate on the rule, to allow it'})`,
      );
    }
    return addresses;
  }
}

function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}

function hostMatches(pattern: HostPattern, host: string): boolean {
  switch (pattern.kind) {
    case 'any':
      return true;
    case 'name':
      return pattern.name === host;
    case 'suffix':
      return isIP(host) === 0 && host.endsWith(`.${pattern.suffix}`);
    case 'address': {
      const family = isIP(host);
      return family !== 0 && pattern.list.check(host, family === 4 ? 'ipv4' : 'ipv6');
    }
  }
}

/**
 * Whether a rule names a special address: by address or range, as `localhost`, or with
 * allowPrivate. A metadata address only by the address itself.
 */
function coversSpecial(rule: Rule, host: string, address: string): boolean {
  if (isMetadataAddress(address)) return rule.host.kind === 'address' && rule.host.single === canonicalAddress(address.replace(/%.*$/, ''));
  if (rule.allowPrivate) return true;
  if (rule.host.kind === 'name' && rule.host.name === 'localhost' && host === 'localhost') {
    return specialAddressKind(address) === 'loopback';
  }
  if (rule.host.kind !== 'address') return false;
  const bare = address.replace(/%.*$/, '');
  const family = isIP(bare);
  return family !== 0 && rule.host.list.check(bare, family === 4 ? 'ipv4' : 'ipv6');
}

function parseRule(rule: EgressRule, index: number): Rule {
  const where = `egress rule ${index + 1} (${JSON.stringify(rule)})`;
  const fail = (why: string): never => {
    throw new Error(`${where}: ${why}`);
  };
  if (typeof rule === 'string') {
    const match = RULE_TEXT.exec(rule.trim());
    if (!match?.groups) {
      return fail('write it as [METHODS ][scheme://]host[:port], such as `api.example.com`, `https://*.example.com` or `GET,POST http://127.0.0.1:8080`');
    }
    const { methods, scheme, host, port } = match.groups;
    return build(rule, {
      host: host!,
      ...(scheme ? { schemes: [scheme] } : {}),
      ...(port ? { ports: port === '*' ? '*' : [Number(port)] } : {}),
      ...(methods ? { methods: methods === '*' ? '*' : methods.split(',') } : {}),
    });
  }
  if (typeof rule !== 'object' || rule === null) return fail('a rule is a string or an object with a `host`');
  return build(JSON.stringify(rule), rule);

  function build(text: string, spec: EgressRuleObject): Rule {
    if (typeof spec.host !== 'string' || spec.host.trim() === '') return fail('`host` must be a non-empty string');
    const schemes = (spec.schemes ?? ['https']).map((scheme) => String(scheme).toLowerCase());
    if (schemes.length === 0 || schemes.some((scheme) => !SCHEMES.includes(scheme))) {
      return fail(`schemes must be http or https (got ${schemes.join(', ') || 'none'})`);
    }
    const ports = spec.ports ?? schemes.map((scheme) => DEFAULT_PORTS[scheme]!);
    if (ports !== '*' && (!Array.isArray(ports) || ports.some((port) => !Number.isInteger(port) || port < 1 || port > 65535))) {
      return fail('ports must be whole numbers from 1 to 65535, or "*"');
    }
    const methods = spec.methods === '*' ? '*' : (spec.methods ?? DEFAULT_METHODS).map((method) => String(method).toUpperCase());
    if (methods !== '*' && (methods.length === 0 || methods.some((method) => !METHOD.test(method)))) {
      return fail('methods must be HTTP method names such as GET or POST, or "*"');
    }
    if (spec.allowPrivate !== undefined && typeof spec.allowPrivate !== 'boolean') return fail('allowPrivate must be true or false');
    return { text, host: parseHost(spec.host.trim(), fail), schemes: unique(schemes), ports, methods, allowPrivate: spec.allowPrivate === true };
  }
}

function parseHost(text: string, fail: (why: string) => never): HostPattern {
  if (text === '*') return { kind: 'any' };
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const cidr = /^(?<network>[^/]+)\/(?<prefix>\d{1,3})$/.exec(bare);
  if (cidr?.groups) {
    const network = cidr.groups['network']!;
    const prefix = Number(cidr.groups['prefix']);
    const family = isIP(network);
    if (family === 0 || prefix > (family === 4 ? 32 : 128)) return fail(`${text} is not a CIDR range such as 10.1.0.0/16 or fd00::/8`);
    const list = new BlockList();
    list.addSubnet(network, prefix, family === 4 ? 'ipv4' : 'ipv6');
    return { kind: 'address', list, text, single: undefined };
  }
  const family = isIP(bare);
  if (family !== 0) {
    const list = new BlockList();
    list.addAddress(bare, family === 4 ? 'ipv4' : 'ipv6');
    return { kind: 'address', list, text, single: canonicalAddress(bare) };
  }
  const wildcard = bare.startsWith('*.');
  const name = wildcard ? bare.slice(2) : bare;
  if (name.includes('*')) return fail('a wildcard may only stand for whole labels at the start, as in *.example.com');
  const ascii = domainToASCII(name.replace(/\.$/, '').toLowerCase());
  if (ascii === '' || /[^a-z0-9.-]/.test(ascii)) return fail(`${text} is not a host name, IP address or CIDR range`);
  return wildcard ? { kind: 'suffix', suffix: ascii } : { kind: 'name', name: ascii };
}
