import { createServer, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { describeError } from '../errors';
import type { EgressPolicy, ResolvedAddress, Resolve } from './egress';
import { pinnedLookup } from './egressFetch';
import { EgressDeniedError } from './sandboxError';

/** Where the proxy listens: a Unix socket (bound into a bubblewrap sandbox) or a loopback TCP port (macOS). */
export type ProxyListen = { readonly path: string } | { readonly port: 0 };

export interface EgressProxy {
  /** The proxy's URL when it listens on TCP; undefined on a Unix socket. */
  readonly url: string | undefined;
  close(): Promise<void>;
}

/** Headers that concern the hop to the proxy, not the request it forwards. */
const HOP_HEADERS = new Set(['proxy-authorization', 'proxy-connection', 'connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

/**
 * The only way out to the network for a tool in the OS tier: an HTTP proxy that enforces the
 * tool's egress allow-list with the same policy as the isolate tier's `ctx.fetch`. A plain HTTP
 * request (absolute form) is checked by scheme, host, port and method; an HTTPS tunnel (CONNECT)
 * by host and port, since what travels inside TLS cannot be seen. Either way every address the
 * host resolves to is checked, and the connection goes to a checked address. A request denied is
 * answered 403 and reported through `onDenied`, which fails the call.
 */
export async function startEgressProxy(
  policy: EgressPolicy,
  resolve: Resolve,
  listen: ProxyListen,
  onDenied: (error: EgressDeniedError) => void,
): Promise<EgressProxy> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((request, response) => void forward(request, response));
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('connect', (request: IncomingMessage, socket: Socket, head: Buffer) => void tunnel(request, socket, head));

  const deny = (error: unknown): string => {
    if (error instanceof EgressDeniedError) onDenied(error);
    return describeError(error);
  };

  async function tunnel(request: IncomingMessage, client: Socket, head: Buffer): Promise<void> {
    client.on('error', () => undefined);
    let target: URL;
    try {
      target = new URL(`https://${request.url ?? ''}`);
    } catch {
      client.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const port = Number(target.port || '443');
    let addresses: readonly ResolvedAddress[];
    try {
      addresses = await policy.checkTunnel(target.hostname, port, resolve);
    } catch (error) {
      client.end(`HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n\r\n${deny(error)}`);
      return;
    }
    const upstream = connect({ host: addresses[0]!.address, port });
    upstream.on('error', (error) => client.end(`HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\n\r\n${describeError(error)}`));
    upstream.on('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    client.on('close', () => upstream.destroy());
  }

  async function forward(request: IncomingMessage, response: ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(request.url ?? '');
    } catch {
      response.writeHead(400, { 'content-type': 'text/plain' }).end('the proxy takes absolute URLs (http://host/path), and HTTPS through CONNECT');
      return;
    }
    const method = request.method ?? 'GET';
    let addresses: readonly ResolvedAddress[];
    try {
      if (url.protocol !== 'http:') throw new Error(`the proxy forwards http:// URLs; ${url.protocol}// goes through CONNECT`);
      addresses = await policy.check(url, method, resolve);
    } catch (error) {
      response.writeHead(403, { 'content-type': 'text/plain' }).end(deny(error));
      return;
    }
    const headers: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(request.headers)) if (!HOP_HEADERS.has(name) && value !== undefined) headers[name] = value;
    const upstream = httpRequest(
      {
        hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
        port: url.port === '' ? 80 : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method,
        headers,
        agent: false,
        lookup: pinnedLookup(addresses),
      },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.rawHeaders);
        answer.pipe(response);
      },
    );
    upstream.on('error', (error) => {
      if (!response.headersSent) response.writeHead(502, { 'content-type': 'text/plain' });
      response.end(describeError(error));
    });
    request.pipe(upstream);
  }

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    if ('path' in listen) server.listen(listen.path, resolveListen);
    else server.listen(0, '127.0.0.1', resolveListen);
  });
  const address = server.address();
  return {
    url: typeof address === 'object' && address !== null ? `http://127.0.0.1:${address.port}` : undefined,
    close: () =>
      new Promise((resolveClose) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolveClose());
      }),
  };
}
