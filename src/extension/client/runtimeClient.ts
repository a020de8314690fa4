import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as vscode from 'vscode';
import {
  EXIT_UNSUPPORTED_NODE,
  type DaemonNotifications,
  type DaemonRequests,
  type InitializeResult,
} from '../../protocol/daemon';
import { RpcError, RpcPeer } from '../../protocol/jsonRpc';
import type { ServerConsentParams } from '../../protocol/daemon';
import type { RunEvent } from '../../protocol/events';
import type { Run } from '../../protocol/records';
import { databasePathFor, isPostgresUrl } from '../../shared/storeLocation';
import { locateRuntime } from './runtimeLocator';
import { isStopped } from '../../shared/runText';

type Peer = RpcPeer<Record<never, never>, DaemonRequests, DaemonNotifications, Record<never, never>>;

interface Connection {
  readonly child: ChildProcessWithoutNullStreams;
  readonly peer: Peer;
  readonly ready: Promise<InitializeResult>;
}

export interface RuntimeClientOptions {
  readonly extensionPath: string;
  readonly workspaceRoot: string | undefined;
  readonly log: vscode.LogOutputChannel;
  readonly nodePath: () => string;
  readonly databasePath: () => string | undefined;
  /** The `keel.*` settings the person set, given to each runtime process as it starts. */
  readonly settings: () => Record<string, unknown>;
  /** Whether the workspace is trusted: if not, only the extension's own runtime runs, and it runs nothing of the workspace. */
  readonly trusted: () => boolean;
  readonly serverConsent: () => ServerConsentParams;
  /** Asks the person whether Keel may connect to a server the workspace names; true once allowed (and remembered). */
  readonly askConsent: (request: { message: string; server: string }) => Promise<boolean>;
}

/**
 * The extension's side of the runtime process: spawns it on a real Node on first use, speaks
 * JSON-RPC with it, and if it dies says so once and starts a new one on the next request.
 */
export class RuntimeClient implements vscode.Disposable {
  private connection: Connection | undefined;
  private readonly runEvents = new vscode.EventEmitter<RunEvent>();
  private readonly started = new vscode.EventEmitter<InitializeResult>();
  private readonly lostConnection = new vscode.EventEmitter<void>();
  private readonly goldenEvents = new vscode.EventEmitter<DaemonNotifications['goldenEvent']>();
  private readonly alerts = new vscode.EventEmitter<DaemonNotifications['alert']>();
  private readonly reviewsQueued = new vscode.EventEmitter<DaemonNotifications['reviewsQueued']>();
  /** Progress of golden runs: cases started and finished, by the token their run was started with. */
  readonly onGoldenEvent = this.goldenEvents.event;
  /** An alert for the `editor` channel of keel.config.ts. */
  readonly onAlert = this.alerts.event;
  /** Tool calls of a run that stopped were sampled for review. */
  readonly onReviewsQueued = this.reviewsQueued.event;
  /** Every event of every run the runtime process reports. */
  readonly onRunEvent = this.runEvents.event;
  /** A runtime process started and answered `initialize`, naming the interrupted runs it found. */
  readonly onDidStart = this.started.event;

  constructor(private readonly options: RuntimeClientOptions) {}

  async request<M extends keyof DaemonRequests & string>(
    method: M,
    params: DaemonRequests[M]['params'],
  ): Promise<DaemonRequests[M]['result']> {
    const connection = this.connect();
    await connection.ready;
    return connection.peer.request(method, params);
  }

  /**
   * Resolves when the run stops, however quickly that happens: when it ends, pauses for a
   * decision or is interrupted. If the runtime process dies meanwhile, a new one reads the run
   * (which it then finds interrupted).
   */
  async waitForRun(runId: string): Promise<Run> {
    return new Promise<Run>((resolve, reject) => {
      const subscriptions: vscode.Disposable[] = [];
      const settle = (outcome: () => void) => {
        for (const subscription of subscriptions.splice(0)) subscription.dispose();
        outcome();
      };
      let checking: Promise<void> | undefined;
      const check = () => {
        // One look at a time: a runtime that dies while starting fails the look rather than start another.
        checking ??= this.request('getRun', { runId }).then(
          ({ run }) => {
            checking = undefined;
            if (isStopped(run)) settle(() => resolve(run));
          },
          (error: unknown) => settle(() => reject(error instanceof Error ? error : new Error(String(error)))),
        );
      };
      subscriptions.push(
        this.onRunEvent((event) => {
          if (event.type === 'run_finished' && event.run.id === runId) settle(() => resolve(event.run));
        }),
        this.lostConnection.event(check),
      );
      check();
    });
  }

  /** The database the runtime process opens for this workspace: a file path, or a PostgreSQL connection string. */
  databasePath(): string | undefined {
    const { workspaceRoot } = this.options;
    return this.options.databasePath() ?? (workspaceRoot === undefined ? undefined : databasePathFor(workspaceRoot));
  }

  /**
   * Whether there may be runs to show already: a PostgreSQL database, or a database file that
   * exists (a workspace that never ran an agent starts no runtime process just to find none).
   */
  hasDatabase(): boolean {
    const database = this.databasePath();
    return database !== undefined && (isPostgresUrl(database) || existsSync(database));
  }

  /** Whether a runtime process is running (or starting) now. */
  get connected(): boolean {
    return this.connection !== undefined;
  }

  /** The running runtime's own description, starting it if needed. */
  info(): Promise<InitializeResult> {
    return this.connect().ready;
  }

  dispose(): void {
    if (this.connection) this.stop(this.connection, 'Keel is shutting down.');
    this.runEvents.dispose();
    this.started.dispose();
    this.lostConnection.dispose();
    this.goldenEvents.dispose();
    this.alerts.dispose();
    this.reviewsQueued.dispose();
  }

  private connect(): Connection {
    if (this.connection) return this.connection;
    const { log, workspaceRoot, extensionPath } = this.options;
    const trusted = this.options.trusted();
    const location = locateRuntime(trusted ? workspaceRoot : undefined, extensionPath);
    const nodePath = this.options.nodePath();
    log.info(`Starting the Keel runtime (${location.source}): ${nodePath} ${location.script}`);
    // --no-node-snapshot: isolated-vm (sandboxed tools) asks for it on Node 20 and later.
    const child = spawn(nodePath, ['--no-node-snapshot', location.script], {
      cwd: workspaceRoot ?? extensionPath,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: undefined },
    });
    const peer: Peer = new RpcPeer((line) => child.stdin.write(line), {});
    peer.onNotification((method, params) => {
      if (method === 'runEvent') this.runEvents.fire(params as RunEvent);
      else if (method === 'goldenEvent') this.goldenEvents.fire(params as DaemonNotifications['goldenEvent']);
      else if (method === 'alert') this.alerts.fire(params as DaemonNotifications['alert']);
      else if (method === 'reviewsQueued') this.reviewsQueued.fire(params as DaemonNotifications['reviewsQueued']);
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => peer.receive(chunk));
    const stderrLines: string[] = [];
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      for (const line of chunk.split('\n').filter((text) => text.trim() !== '')) {
        stderrLines.push(line);
        if (stderrLines.length > 20) stderrLines.shift();
        log.info(`[runtime] ${line}`);
      }
    });

    let reportFailure: (error: Error) => void = () => undefined;
    const failed = new Promise<never>((_, reject) => {
      reportFailure = reject;
    });
    failed.catch(() => undefined);

    child.on('error', (error: NodeJS.ErrnoException) => {
      const message =
        error.code === 'ENOENT'
          ? `Keel could not start its runtime: "${nodePath}" was not found. Install Node.js 24 or set keel.nodePath to a Node 22+ executable.`
          : `Keel could not start its runtime with "${nodePath}": ${error.message}`;
      this.lost(connection, message, reportFailure);
    });
    child.on('exit', (code, signal) => {
      const message =
        code === EXIT_UNSUPPORTED_NODE
          ? (stderrLines.at(-1) ?? 'The Node.js that keel.nodePath points at is too old for Keel.')
          : `Keel's runtime process stopped (${signal ? `signal ${signal}` : `exit code ${code}`}); it will restart on the next request.`;
      this.lost(connection, message, reportFailure);
    });

    const initialize = peer.request('initialize', {
      workspaceRoot: workspaceRoot ?? extensionPath,
      settings: this.options.settings(),
      trusted,
      serverConsent: this.options.serverConsent(),
    });
    const ready = Promise.race([initialize, failed]);
    ready.then(
      (result) => {
        log.info(`Keel runtime ${result.version} on Node ${result.nodeVersion}, runs in ${result.databasePath}`);
        if (this.connection === connection) this.started.fire(result);
      },
      (error: unknown) => {
        if (error instanceof RpcError && error.data.name === 'ServerConsentError') void this.consent(connection, error);
      },
    );
    const connection: Connection = { child, peer, ready };
    this.connection = connection;
    return connection;
  }

  /**
   * The workspace names a server the person has not allowed: the runtime process connected to
   * nothing. Asked once per start; allowed, a new runtime process starts with the consent.
   */
  private async consent(connection: Connection, error: RpcError): Promise<void> {
    const server = String(error.data.context?.['server'] ?? '');
    this.options.log.warn(error.message);
    if (!(await this.options.askConsent({ message: error.message, server }))) return;
    this.restart(connection);
  }

  /** Stops this runtime process and starts a new one (the folder became trusted, or a server was allowed). */
  restart(connection: Connection | undefined = this.connection): void {
    if (!connection || this.connection !== connection) return;
    this.stop(connection, 'Keel restarts its runtime.');
    void this.info().catch(() => undefined);
  }

  private stop(connection: Connection, reason: string): void {
    this.connection = undefined;
    connection.peer.close(reason);
    connection.child.stdin.end();
    connection.child.kill();
  }

  private lost(connection: Connection, message: string, reportFailure: (error: Error) => void): void {
    if (this.connection !== connection) return;
    this.connection = undefined;
    connection.peer.close(message);
    reportFailure(new Error(message));
    this.options.log.error(message);
    void vscode.window.showErrorMessage(message);
    this.lostConnection.fire();
  }
}
