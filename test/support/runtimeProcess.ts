import { join } from 'node:path';
import type { DaemonNotifications, DaemonRequests } from '../../src/protocol/daemon';
import { RpcPeer } from '../../src/protocol/jsonRpc';
import { runIdOfEvent, type RunEvent } from '../../src/runtime/agent/events';
import type { ApprovalRecord, RunRecord, RunState } from '../../src/runtime/store/checkpointStore';
import { REPO_ROOT, spawnNode, testEnv, within, type NodeProcess } from './processes';

export const DAEMON = join(REPO_ROOT, 'dist', 'daemon.js');

/** The runtime process (node dist/daemon.js), spoken to with the RpcPeer the extension uses. */
export class RuntimeProcess {
  readonly proc: NodeProcess;
  readonly events: RunEvent[] = [];
  /** Every other notification (an alert for the editor, reviews queued), in order. */
  readonly notifications: { readonly method: string; readonly params: unknown }[] = [];
  private readonly peer: RpcPeer<Record<never, never>, DaemonRequests, DaemonNotifications, Record<never, never>>;
  private readonly watchers = new Set<() => void>();
  private exited = false;

  constructor(
    readonly workspace: string,
    env: Readonly<Record<string, string>> = {},
  ) {
    this.proc = spawnNode(DAEMON, [], { cwd: workspace, env: testEnv(env) });
    this.peer = new RpcPeer((line) => this.proc.child.stdin.write(line), {});
    this.peer.onNotification((method, params) => {
      if (method !== 'runEvent') {
        this.notifications.push({ method, params });
        for (const watcher of this.watchers) watcher();
        return;
      }
      this.events.push(params);
      for (const watcher of this.watchers) watcher();
    });
    this.proc.child.stdout.on('data', (chunk: string) => this.peer.receive(chunk));
    void this.proc.exited.then(() => {
      this.exited = true;
      this.peer.close(`The runtime process exited.\nstderr:\n${this.proc.stderr()}`);
      for (const watcher of this.watchers) watcher();
    });
  }

  get pid(): number {
    return this.proc.child.pid ?? 0;
  }

  get running(): boolean {
    return !this.exited;
  }

  request<M extends keyof DaemonRequests & string>(method: M, params: DaemonRequests[M]['params']): Promise<DaemonRequests[M]['result']> {
    return within(this.peer.request(method, params), `an answer to ${method}`);
  }

  async initialize(): Promise<void> {
    await this.request('initialize', { workspaceRoot: this.workspace });
  }

  /** The first event, received already or still to come, that `matches`. */
  until<E extends RunEvent>(matches: (event: RunEvent) => event is E, what: string, timeoutMs?: number): Promise<E>;
  until(matches: (event: RunEvent) => boolean, what: string, timeoutMs?: number): Promise<RunEvent>;
  until(matches: (event: RunEvent) => boolean, what: string, timeoutMs?: number): Promise<RunEvent> {
    const waiting = new Promise<RunEvent>((resolve, reject) => {
      const check = (): void => {
        const found = this.events.find(matches);
        if (found) {
          this.watchers.delete(check);
          resolve(found);
        } else if (this.exited) {
          this.watchers.delete(check);
          reject(new Error(`the runtime process exited before ${what}; stderr:\n${this.proc.stderr()}`));
        }
      };
      this.watchers.add(check);
      check();
    });
    return within(waiting, what, timeoutMs);
  }

  /** The approval a run asked for, as announced. */
  async approvalRequested(runId: string): Promise<ApprovalRecord> {
    const event = await this.until(
      (candidate): candidate is Extract<RunEvent, { type: 'approval_requested' }> =>
        candidate.type === 'approval_requested' && candidate.approval.runId === runId,
      `run ${runId} asking for approval`,
    );
    return event.approval;
  }

  /** The run as an execution of it stopped in `state`. */
  async stopped(runId: string, state: RunState, timeoutMs?: number): Promise<RunRecord> {
    const event = await this.until(
      (candidate): candidate is Extract<RunEvent, { type: 'run_finished' }> =>
        candidate.type === 'run_finished' && candidate.run.id === runId && candidate.run.state === state,
      `run ${runId} stopping ${state}`,
      timeoutMs,
    );
    return event.run;
  }

  /** The run as an execution of it stopped, in whatever state. */
  async finished(runId: string, timeoutMs?: number): Promise<RunRecord> {
    const event = await this.until(
      (candidate): candidate is Extract<RunEvent, { type: 'run_finished' }> => candidate.type === 'run_finished' && candidate.run.id === runId,
      `run ${runId} finishing`,
      timeoutMs,
    );
    return event.run;
  }

  eventsOf(runId: string): RunEvent[] {
    return this.events.filter((event) => runIdOfEvent(event) === runId);
  }

  /** Kills it as a crash would (SIGKILL) and waits until it is gone. */
  async kill(): Promise<void> {
    if (!this.exited) this.proc.child.kill('SIGKILL');
    await this.proc.exited;
  }
}
