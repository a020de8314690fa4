import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/** Receivers for alert tests: a local webhook endpoint and a real local SMTP server. */

export interface ReceivedHook {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Record<string, unknown>;
}

/** What the webhook answers a request with: a status, headers, or (hold) no answer at all until it closes. */
export type HookAnswer = { readonly status: number; readonly headers?: Readonly<Record<string, string>> } | 'hold';

export interface WebhookReceiver {
  readonly url: string;
  readonly port: number;
  readonly received: ReceivedHook[];
  /** The distinct idempotency keys received: what a receiver that drops repeats would act on. */
  distinctKeys(): string[];
  /** Resolves once `count` requests have arrived. */
  until(count: number, timeoutMs?: number): Promise<ReceivedHook[]>;
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 that records every POST; `answer` decides the reply to each (200 by default). */
export async function startWebhookReceiver(options: { port?: number; answer?: (request: ReceivedHook, index: number) => HookAnswer } = {}): Promise<WebhookReceiver> {
  const received: ReceivedHook[] = [];
  const waiters = new Set<() => void>();
  const server: Server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      const hook: ReceivedHook = { path: req.url ?? '/', headers: req.headers, body: JSON.parse(text || '{}') as Record<string, unknown> };
      received.push(hook);
      for (const waiter of waiters) waiter();
      const answer = options.answer?.(hook, received.length - 1) ?? { status: 200 };
      if (answer === 'hold') return;
      res.writeHead(answer.status, answer.headers);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    distinctKeys: () => [...new Set(received.map((hook) => String(hook.headers['idempotency-key'])))],
    until: (count, timeoutMs) => untilCount(received, waiters, count, timeoutMs, 'webhook requests'),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface ReceivedMail {
  readonly envelopeTo: readonly string[];
  readonly mail: ParsedMail;
}

export interface MailReceiver {
  readonly port: number;
  /** `smtp://127.0.0.1:<port>`, for an email channel. */
  readonly url: string;
  readonly received: ReceivedMail[];
  until(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
}

/**
 * A real SMTP server (smtp-server) on 127.0.0.1 without TLS or authentication, parsing each
 * message with mailparser. `reject` answers the DATA of a message with an SMTP error instead.
 */
export async function startMailReceiver(options: { reject?: (index: number) => { code: number; message: string } | undefined } = {}): Promise<MailReceiver> {
  const received: ReceivedMail[] = [];
  const waiters = new Set<() => void>();
  let index = 0;
  const server = new SMTPServer({
    secure: false,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const refusal = options.reject?.(index++);
      simpleParser(stream).then(
        (mail) => {
          if (refusal) {
            callback(Object.assign(new Error(refusal.message), { responseCode: refusal.code }));
            return;
          }
          received.push({ envelopeTo: session.envelope.rcptTo.map((to) => to.address), mail });
          for (const waiter of waiters) waiter();
          callback();
        },
        (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
      );
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    received,
    until: (count, timeoutMs) => untilCount(received, waiters, count, timeoutMs, 'SMTP messages'),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Resolves with what arrived once `count` items have; rejects, naming what arrived, after `timeoutMs`. */
function untilCount<T>(received: T[], waiters: Set<() => void>, count: number, timeoutMs = 20_000, what: string): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiters.delete(check);
      reject(new Error(`${received.length} of ${count} ${what} arrived within ${timeoutMs} ms`));
    }, timeoutMs);
    const check = () => {
      if (received.length < count) return;
      clearTimeout(timer);
      waiters.delete(check);
      resolve(received.slice());
    };
    waiters.add(check);
    check();
  });
}
