import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EgressPolicy, specialAddressKind, type EgressRule, type Resolve } from '../../src/runtime/sandbox/egress';
import { egressFetch } from '../../src/runtime/sandbox/egressFetch';
import { EgressDeniedError } from '../../src/runtime/sandbox/sandboxError';

/** A resolver answering from a table, as DNS would (including with private addresses). */
function dns(table: Readonly<Record<string, readonly string[]>>): Resolve {
  return (hostname) => {
    const addresses = table[hostname];
    if (!addresses) return Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }));
    return Promise.resolve(addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }) as const));
  };
}

const noDns: Resolve = (hostname) => Promise.reject(new Error(`no lookup expected, got one for ${hostname}`));

function allows(rules: readonly EgressRule[], url: string, method = 'GET'): boolean {
  return EgressPolicy.parse(rules).match(new URL(url), method).ok;
}

function reason(rules: readonly EgressRule[], url: string, method = 'GET'): string {
  const decision = EgressPolicy.parse(rules).match(new URL(url), method);
  assert.equal(decision.ok, false, `${method} ${url} should be denied by ${JSON.stringify(rules)}`);
  return decision.ok ? '' : decision.reason;
}

async function denial(rules: readonly EgressRule[], url: string, resolve: Resolve, method = 'GET'): Promise<string> {
  try {
    await EgressPolicy.parse(rules).check(new URL(url), method, resolve);
  } catch (error) {
    assert.ok(error instanceof EgressDeniedError, `expected an EgressDeniedError, got ${String(error)}`);
    return error.message;
  }
  return assert.fail(`${method} ${url} should be denied by ${JSON.stringify(rules)}`);
}

describe('egress allow-list', () => {
  describe('host patterns', () => {
    it('a bare host means https on port 443, GET and HEAD, that host only', () => {
      const rules = ['api.example.com'];
      assert.ok(allows(rules, 'https://api.example.com/v1/search?q=x'));
      assert.ok(allows(rules, 'https://api.example.com:443/'));
      assert.ok(allows(rules, 'https://api.example.com/', 'HEAD'));
      assert.ok(allows(rules, 'https://API.Example.COM./'), 'case and a trailing dot do not matter');
      assert.equal(reason(rules, 'https://www.example.com/'), 'it tried to reach www.example.com, which its egress allow-list does not permit');
      assert.ok(!allows(rules, 'https://api.example.com.evil.net/'));
      assert.ok(!allows(rules, 'https://evilapi.example.com/'));
    });

    it('*.example.com covers subdomains at any depth, not example.com itself or look-alikes', () => {
      const rules = ['*.example.com'];
      assert.ok(allows(rules, 'https://a.example.com/'));
      assert.ok(allows(rules, 'https://a.b.example.com/'));
      assert.ok(!allows(rules, 'https://example.com/'));
      assert.ok(!allows(rules, 'https://badexample.com/'));
      assert.ok(!allows(rules, 'https://example.com.attacker.net/'));
    });

    it('* covers every host, and international names are compared in their ASCII form', () => {
      assert.ok(allows(['*'], 'https://anything.example.org/'));
      assert.ok(allows(['bücher.example'], 'https://xn--bcher-kva.example/'));
      assert.ok(allows(['xn--bcher-kva.example'], 'https://bücher.example/'));
    });

    it('an empty list denies everything and says how to grant', () => {
      assert.match(reason([], 'https://api.example.com/'), /it has none: a sandboxed tool reaches no network unless granted `sandbox: \{ egress: \[\.\.\.\] \}`/);
    });
  });

  describe('schemes, ports and methods', () => {
    it('schemes', () => {
      assert.equal(
        reason(['api.example.com'], 'http://api.example.com/'),
        'it tried to reach api.example.com over http, which its egress allow-list does not permit (it allows https there)',
      );
      assert.ok(allows(['http://api.example.com'], 'http://api.example.com/'));
      assert.ok(!allows(['http://api.example.com'], 'https://api.example.com/'));
      assert.ok(allows([{ host: 'api.example.com', schemes: ['http', 'https'] }], 'http://api.example.com/'));
      assert.match(reason(['*'], 'ftp://api.example.com/'), /over ftp/);
      assert.match(reason(['*'], 'file:///etc/passwd'), /does not permit/);
    });

    it('ports', () => {
      assert.equal(
        reason(['api.example.com'], 'https://api.example.com:8443/'),
        'it tried to reach api.example.com on port 8443, which its egress allow-list does not permit (it allows port 443 there)',
      );
      assert.ok(allows(['https://api.example.com:8443'], 'https://api.example.com:8443/'));
      assert.ok(!allows(['https://api.example.com:8443'], 'https://api.example.com/'));
      assert.ok(allows(['https://api.example.com:*'], 'https://api.example.com:9999/'));
      assert.ok(allows([{ host: 'api.example.com', ports: [443, 8443] }], 'https://api.example.com:8443/'));
    });

    it('methods', () => {
      assert.equal(
        reason(['api.example.com'], 'https://api.example.com/orders', 'POST'),
        'it tried to POST api.example.com, which its egress allow-list does not permit (it allows GET, HEAD there)',
      );
      assert.ok(allows(['GET,POST https://api.example.com'], 'https://api.example.com/', 'POST'));
      assert.ok(!allows(['GET,POST https://api.example.com'], 'https://api.example.com/', 'DELETE'));
      assert.ok(allows(['* https://api.example.com'], 'https://api.example.com/', 'DELETE'));
      assert.ok(allows([{ host: 'api.example.com', methods: ['put'] }], 'https://api.example.com/', 'PUT'));
    });

    it('several rules for one host add up', () => {
      const rules: EgressRule[] = ['*.example.com', 'POST https://hooks.example.com'];
      assert.ok(allows(rules, 'https://hooks.example.com/', 'POST'));
      assert.ok(allows(rules, 'https://hooks.example.com/', 'GET'));
      assert.ok(!allows(rules, 'https://other.example.com/', 'POST'));
    });
  });

  describe('rules that cannot be understood are refused, naming the rule', () => {
    const cases: readonly [EgressRule, RegExp][] = [
      ['ftp://files.example.com', /egress rule 1 \("ftp:\/\/files.example.com"\): schemes must be http or https/],
      ['a*b.example.com', /a wildcard may only stand for whole labels at the start/],
      ['https://api.example.com:70000', /ports must be whole numbers from 1 to 65535/],
      ['https://api.example.com/some/path', /write it as \[METHODS \]\[scheme:\/\/\]host\[:port\]/],
      ['GET! https://api.example.com', /write it as/],
      [{ host: '' }, /`host` must be a non-empty string/],
      [{ host: '10.0.0.0/33' }, /is not a CIDR range/],
      [{ host: 'api.example.com', methods: ['GET POST'] }, /methods must be HTTP method names/],
      [{ host: 'api.example.com', allowPrivate: 'yes' as unknown as boolean }, /allowPrivate must be true or false/],
    ];
    for (const [rule, message] of cases) {
      it(JSON.stringify(rule), () => assert.throws(() => EgressPolicy.parse([rule]), message));
    }
  });

  describe('addresses', () => {
    it('classifies private, loopback, link-local and metadata ranges, IPv4 and IPv6', () => {
      const table: Readonly<Record<string, string | undefined>> = {
        '127.0.0.1': 'loopback',
        '127.255.255.254': 'loopback',
        '10.1.2.3': 'private',
        '172.16.0.1': 'private',
        '172.31.255.255': 'private',
        '172.32.0.1': undefined,
        '192.168.1.1': 'private',
        '169.254.169.254': 'cloud metadata',
        '169.254.1.1': 'link-local',
        '0.0.0.0': 'unspecified',
        '100.100.100.200': 'cloud metadata (Alibaba Cloud)',
        '100.100.1.1': 'carrier-grade NAT',
        '224.0.0.1': 'multicast',
        '8.8.8.8': undefined,
        '::1': 'loopback',
        '::': 'unspecified',
        'fc00::1': 'unique-local (private)',
        'fd12:3456::1': 'unique-local (private)',
        'fd00:ec2::254': 'cloud metadata (AWS)',
        'fe80::1': 'link-local',
        'fe80::1%eth0': 'link-local',
        '::ffff:127.0.0.1': 'loopback',
        '::ffff:7f00:1': 'loopback',
        '::ffff:a9fe:a9fe': 'cloud metadata',
        '64:ff9b::a9fe:a9fe': 'cloud metadata',
        '2002:a00:1::': 'private',
        '2606:4700:4700::1111': undefined,
        '::ffff:8.8.8.8': undefined,
      };
      for (const [address, kind] of Object.entries(table)) assert.equal(specialAddressKind(address), kind, address);
    });

    it('judges the IPv4 address inside IPv4-mapped, IPv4-translated and NAT64 addresses; local-use NAT64 is never public', () => {
      const table: Readonly<Record<string, string | undefined>> = {
        '::ffff:0:7f00:1': 'loopback',
        '::ffff:0:a00:1': 'private',
        '::ffff:0:a9fe:a9fe': 'cloud metadata',
        '::ffff:0:808:808': undefined,
        '64:ff9b:1::7f00:1': 'loopback',
        '64:ff9b:1::a00:5': 'private',
        '64:ff9b:1::808:808': 'local-use NAT64',
        '64:ff9b:1:ffff::808:808': 'local-use NAT64',
        '64:ff9b::808:808': undefined,
        '::ffff:a83f:8110': 'cloud metadata (Azure WireServer)',
      };
      for (const [address, kind] of Object.entries(table)) assert.equal(specialAddressKind(address), kind, address);
    });

    it('cloud metadata addresses are denied under *, allowPrivate and ranges; only a rule naming the address itself allows one', async () => {
      const everything: EgressRule[] = [{ host: '*', schemes: ['http', 'https'], ports: '*', allowPrivate: true }];
      const metadata: readonly [string, string][] = [
        ['168.63.129.16', 'cloud metadata (Azure WireServer)'],
        ['169.254.169.254', 'cloud metadata'],
        ['169.254.170.2', 'cloud metadata (AWS ECS)'],
        ['100.100.100.200', 'cloud metadata (Alibaba Cloud)'],
        ['192.0.0.192', 'cloud metadata (Oracle Cloud)'],
        ['[fd00:ec2::254]', 'cloud metadata (AWS)'],
        ['[::ffff:a83f:8110]', 'cloud metadata (Azure WireServer)'],
      ];
      for (const [host, kind] of metadata) {
        assert.equal(
          await denial(everything, `http://${host}/metadata`, noDns),
          `it tried to reach ${host}, a ${kind} address, which its egress allow-list does not permit (only a rule naming the address itself allows it)`,
        );
      }
      assert.match(await denial([{ host: '168.63.0.0/16', schemes: ['http'] }], 'http://168.63.129.16/', noDns), /Azure WireServer/);
      assert.match(
        await denial([{ host: '*.example.com', allowPrivate: true }], 'https://imds.example.com/', dns({ 'imds.example.com': ['168.63.129.16'] })),
        /resolves to 168\.63\.129\.16, a cloud metadata \(Azure WireServer\) address/,
      );
      assert.deepEqual(await EgressPolicy.parse(['http://168.63.129.16']).check(new URL('http://168.63.129.16/'), 'GET', noDns), [{ address: '168.63.129.16', family: 4 }]);
    });

    it('metadata host names are denied by name, whatever they resolve to, unless a rule names them', async () => {
      const resolve = dns({ 'metadata.google.internal': ['8.8.4.4'] });
      assert.equal(
        await denial(['*'], 'https://metadata.google.internal/computeMetadata/v1/', resolve),
        'it tried to reach metadata.google.internal, the cloud metadata service of Google Cloud, which its egress allow-list does not permit (only a rule naming that host allows it)',
      );
      assert.match(await denial(['*'], 'https://metadata.goog/', resolve), /the cloud metadata service of Google Cloud/);
      assert.deepEqual(await EgressPolicy.parse(['metadata.google.internal']).check(new URL('https://metadata.google.internal/'), 'GET', resolve), [
        { address: '8.8.4.4', family: 4 },
      ]);
    });

    it('a tunnel is checked by host and port, whichever scheme a rule names there', async () => {
      const policy = EgressPolicy.parse(['api.example.com', 'http://127.0.0.1:8080']);
      const resolve = dns({ 'api.example.com': ['93.184.216.34'] });
      assert.deepEqual(await policy.checkTunnel('api.example.com', 443, resolve), [{ address: '93.184.216.34', family: 4 }]);
      assert.deepEqual(await policy.checkTunnel('127.0.0.1', 8080, noDns), [{ address: '127.0.0.1', family: 4 }]);
      await assert.rejects(policy.checkTunnel('127.0.0.1', 9090, noDns), {
        message: 'it tried to reach 127.0.0.1 on port 9090, which its egress allow-list does not permit (it allows port 8080 there)',
      });
      await assert.rejects(policy.checkTunnel('api.example.com', 8443, resolve), /on port 8443/);
    });

    it('denies private and metadata IP literals unless a rule names them', async () => {
      const anyHttp: EgressRule[] = [{ host: '*', schemes: ['http', 'https'], ports: '*' }];
      assert.equal(
        await denial(anyHttp, 'http://169.254.169.254/latest/meta-data/', noDns),
        'it tried to reach 169.254.169.254, a cloud metadata address, which its egress allow-list does not permit (only a rule naming the address itself allows it)',
      );
      assert.match(await denial(anyHttp, 'http://127.0.0.1:8080/', noDns), /127\.0\.0\.1:8080, a loopback address/);
      assert.match(await denial(anyHttp, 'http://[::1]:8080/', noDns), /\[::1\]:8080, a loopback address/);
      assert.match(await denial(anyHttp, 'http://[::ffff:127.0.0.1]/', noDns), /a loopback address/);
      assert.match(await denial(anyHttp, 'http://[fd00:ec2::254]/', noDns), /cloud metadata/);
      assert.match(await denial(anyHttp, 'http://[fe80::1]/', noDns), /a link-local address/);
      assert.match(await denial(anyHttp, 'http://0.0.0.0:8080/', noDns), /an unspecified address/);
      assert.match(await denial(anyHttp, 'http://10.0.0.7/', noDns), /a private address/);
      assert.match(await denial(anyHttp, 'http://2130706433/', noDns), /127\.0\.0\.1, a loopback address/, 'a decimal IPv4 is 127.0.0.1');
      assert.match(await denial(anyHttp, 'http://0x7f.1/', noDns), /127\.0\.0\.1, a loopback address/, 'a hex IPv4 is 127.0.0.1');
      assert.deepEqual(await EgressPolicy.parse(anyHttp).check(new URL('http://93.184.216.34/'), 'GET', noDns), [{ address: '93.184.216.34', family: 4 }]);
    });

    it('allows a private address that a rule names: by address, by range, or as localhost', async () => {
      const byAddress = EgressPolicy.parse(['http://127.0.0.1:8080']);
      assert.deepEqual(await byAddress.check(new URL('http://127.0.0.1:8080/x'), 'GET', noDns), [{ address: '127.0.0.1', family: 4 }]);
      assert.equal(byAddress.match(new URL('http://127.0.0.2:8080/'), 'GET').ok, false, 'only that address');
      const byRange = EgressPolicy.parse([{ host: '10.20.0.0/16', schemes: ['http'] }]);
      assert.deepEqual(await byRange.check(new URL('http://10.20.3.4/'), 'GET', noDns), [{ address: '10.20.3.4', family: 4 }]);
      assert.equal(byRange.match(new URL('http://10.21.0.1/'), 'GET').ok, false);
      const v6 = EgressPolicy.parse(['http://[::1]:9000']);
      assert.deepEqual(await v6.check(new URL('http://[::1]:9000/'), 'GET', noDns), [{ address: '::1', family: 6 }]);
      const localhost = EgressPolicy.parse(['http://localhost:3000']);
      assert.deepEqual(await localhost.check(new URL('http://localhost:3000/'), 'GET', dns({ localhost: ['127.0.0.1'] })), [{ address: '127.0.0.1', family: 4 }]);
    });
  });

  describe('host names are checked by the addresses they resolve to', () => {
    const resolve = dns({
      'api.example.com': ['93.184.216.34'],
      'internal.example.com': ['10.0.0.5'],
      'rebind.example.com': ['93.184.216.34', '127.0.0.1'],
      'metadata.example.com': ['169.254.169.254'],
      'v6.example.com': ['2606:4700:4700::1111'],
      'dual.example.com': ['93.184.216.34', '2606:4700:4700::1111'],
      'v6-private.example.com': ['fd00::5'],
      'mapped.example.com': ['::ffff:10.0.0.1'],
    });

    it('a public name gives the addresses to connect to', async () => {
      assert.deepEqual(await EgressPolicy.parse(['*.example.com']).check(new URL('https://api.example.com/'), 'GET', resolve), [{ address: '93.184.216.34', family: 4 }]);
      assert.deepEqual(await EgressPolicy.parse(['*.example.com']).check(new URL('https://v6.example.com/'), 'GET', resolve), [{ address: '2606:4700:4700::1111', family: 6 }]);
    });

    it('a name with several public addresses gives them all: the connection may use only those', async () => {
      assert.deepEqual(await EgressPolicy.parse(['*.example.com']).check(new URL('https://dual.example.com/'), 'GET', resolve), [
        { address: '93.184.216.34', family: 4 },
        { address: '2606:4700:4700::1111', family: 6 },
      ]);
    });

    it('an allowed name that resolves to a private address is denied', async () => {
      assert.equal(
        await denial(['*.example.com'], 'https://internal.example.com/', resolve),
        'it tried to reach internal.example.com, which resolves to 10.0.0.5, a private address its egress allow-list does not permit (name the address in a rule, or set allowPrivate on the rule, to allow it)',
      );
      assert.match(await denial(['*.example.com'], 'https://metadata.example.com/', resolve), /resolves to 169\.254\.169\.254, a cloud metadata address/);
      assert.match(await denial(['*.example.com'], 'https://v6-private.example.com/', resolve), /resolves to fd00::5, a unique-local \(private\) address/);
      assert.match(await denial(['*.example.com'], 'https://mapped.example.com/', resolve), /resolves to ::ffff:10\.0\.0\.1, a private address/);
    });

    it('one private address among several is enough to deny (DNS may answer either)', async () => {
      assert.match(await denial(['*.example.com'], 'https://rebind.example.com/', resolve), /resolves to 127\.0\.0\.1, a loopback address/);
    });

    it('allowPrivate lets a named internal host through', async () => {
      const policy = EgressPolicy.parse([{ host: 'internal.example.com', allowPrivate: true }]);
      assert.deepEqual(await policy.check(new URL('https://internal.example.com/'), 'GET', resolve), [{ address: '10.0.0.5', family: 4 }]);
    });

    it('nothing is resolved for a request the rules already deny', async () => {
      assert.match(await denial(['api.example.com'], 'https://elsewhere.example.net/', noDns), /elsewhere\.example\.net/);
    });

    it('says when a request was redirected', async () => {
      const message = await (async () => {
        try {
          await EgressPolicy.parse(['api.example.com']).check(new URL('https://evil.example.net/'), 'GET', resolve, new URL('https://api.example.com/r?x=1'));
        } catch (error) {
          return error instanceof Error ? error.message : String(error);
        }
        return '';
      })();
      assert.equal(
        message,
        'it followed a redirect from https://api.example.com/r and tried to reach evil.example.net, which its egress allow-list does not permit',
      );
    });
  });
});

describe('egress fetch', () => {
  it('a response over the size limit is refused, saying it was over the limit, with or without a Content-Length', async () => {
    const body = 'x'.repeat(3 * 2 ** 20);
    const server = createServer((request, response) => {
      response.writeHead(200, request.url === '/declared' ? { 'content-length': String(Buffer.byteLength(body)) } : {});
      response.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      for (const path of ['/declared', '/streamed']) {
        await assert.rejects(
          egressFetch(
            { url: `http://127.0.0.1:${port}${path}`, method: 'GET', headers: [], body: undefined, redirect: 'follow' },
            { policy: EgressPolicy.parse([`http://127.0.0.1:${port}`]), resolve: noDns, signal: new AbortController().signal, maxResponseBytes: 2 ** 20 },
          ),
          { message: `the response from 127.0.0.1:${port} is larger than 1048576 bytes, the most a sandboxed tool may read, so it was refused` },
          path,
        );
      }
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
