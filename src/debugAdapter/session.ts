import {
  Event,
  Handles,
  InitializedEvent,
  LoggingDebugSession,
  OutputEvent,
  Scope,
  Source,
  StackFrame,
  StoppedEvent,
  TerminatedEvent,
  Thread,
} from '@vscode/debugadapter';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { runIdOfTranscript, transcriptUri, type StoppedAt } from '../protocol/debug';
import { loadAgentFile } from '../runtime/agent/loader';
import type { ServerConsent } from '../runtime/host/serverConsent';
import { Host } from '../runtime/host/host';
import { KEEL_VERSION } from '../runtime/version';
import { describeError } from '../runtime/errors';
import { forkDocument } from '../runtime/replay/fork';
import { LiveRun } from '../runtime/replay/liveRun';
import { loadRecording } from '../runtime/replay/recording';
import { agentsOf, replayRecording } from '../runtime/replay/replay';
import { EXCEPTION_FILTERS, ReplayEngine, type FunctionBreakpoint, type LineBreakpoint, type Stop } from '../runtime/replay/replayEngine';
import { evaluateExpression } from '../runtime/replay/sandboxEval';
import type { Position } from '../runtime/replay/timeline';
import type { CheckpointStore } from '../runtime/store/checkpointStore';

/** What a `keel` launch configuration holds (see package.json, contributes.debuggers). */
export interface KeelLaunchArguments extends DebugProtocol.LaunchRequestArguments {
  /** Replay this recorded run (an id or a unique prefix of one). */
  readonly runId?: string;
  /** Or run this agent file live, pausing before its tool calls. */
  readonly agent?: string;
  /** The live run's input. */
  readonly input?: string;
  /** A model spec overriding the agent's, for a live run. */
  readonly model?: string;
  /** The run database: a file path or a postgres:// URL. The extension fills it in. */
  readonly databasePath?: string;
  /** Stop at the first step. Default: true for a replay, false for a live run. */
  readonly stopOnEntry?: boolean;
  /** A live run stops before every tool call (default true); otherwise only at breakpoints. */
  readonly pauseBeforeTools?: boolean;
  /** Re-execute the agent's code to check the recording (default true); false replays the recording alone. */
  readonly verify?: boolean;
  /** The `keel.*` settings the person set, by full name; the extension fills them in. */
  readonly settings?: Readonly<Record<string, unknown>>;
  /** The servers the person allowed for this workspace; the extension fills them in. */
  readonly serverConsent?: ServerConsent;
}

/** What a Variables entry expands to: JSON data, or a step's messages (read when expanded). */
type Container = { readonly value: unknown } | { readonly messagesOf: Position };

const THREAD = 1;
/** DAP error ids, one per kind of refusal. */
const LAUNCH_FAILED = 1001;
const NOT_STOPPED = 1002;

/**
 * The Debug Adapter Protocol side of the replay debugger: it only translates requests to the
 * ReplayEngine (and LiveRun) and the engine's stops to events, as vscode-mock-debug's session
 * does for its runtime. Frames are steps (a sub-agent run's steps above the tool step that started
 * it); sources are run transcripts (`keel-transcript:` documents the extension provides).
 */
export class KeelDebugSession extends LoggingDebugSession {
  private engine: ReplayEngine | undefined;
  private live: LiveRun | undefined;
  private host: Host | undefined;
  /** Settles once a live run has stopped and what follows a run (trace export, alerts, review sampling) is done. */
  private liveStopped: Promise<void> = Promise.resolve();
  private readonly handles = new Handles<Container>();
  private functionBreakpoints: FunctionBreakpoint[] = [];
  private readonly lineBreakpoints = new Map<string, LineBreakpoint[]>();
  private filters: string[] = ['divergence'];
  private nextBreakpointId = 1;
  private threadName = 'Keel';
  private configured: () => void = () => undefined;
  private readonly configurationDone = new Promise<void>((resolve) => {
    this.configured = resolve;
  });

  constructor() {
    super();
    this.setDebuggerLinesStartAt1(true);
    this.setDebuggerColumnsStartAt1(true);
  }

  protected override initializeRequest(response: DebugProtocol.InitializeResponse): void {
    response.body = {
      supportsConfigurationDoneRequest: true,
      supportsStepBack: true,
      supportsFunctionBreakpoints: true,
      supportsConditionalBreakpoints: true,
      supportsGotoTargetsRequest: true,
      supportsExceptionInfoRequest: true,
      supportsTerminateRequest: true,
      supportsEvaluateForHovers: false,
      exceptionBreakpointFilters: [
        { filter: 'divergence', label: 'Divergence', description: 'Where the agent no longer matches the recording', default: true },
        { filter: 'errors', label: 'Failed steps', description: 'A tool error or a failed model call', default: false },
        { filter: 'flags', label: 'Flagged steps', description: 'A step the failure detectors flagged', default: false },
      ],
    };
    this.sendResponse(response);
    this.sendEvent(new InitializedEvent());
  }

  protected override configurationDoneRequest(response: DebugProtocol.ConfigurationDoneResponse): void {
    this.configured();
    this.sendResponse(response);
  }

  protected override launchRequest(response: DebugProtocol.LaunchResponse, args: KeelLaunchArguments): void {
    void this.launch(response, args);
  }

  private async launch(response: DebugProtocol.LaunchResponse, args: KeelLaunchArguments): Promise<void> {
    let stopOnEntry: boolean;
    try {
      // The workspace's configuration applies (found from the adapter's folder, the workspace's), the launch configuration's settings on top.
      this.host = await Host.open({
        cwd: process.cwd(),
        settings: { ...args.settings, ...(args.databasePath ? { 'keel.databasePath': args.databasePath } : {}) },
        version: KEEL_VERSION,
        ...(args.serverConsent ? { serverConsent: args.serverConsent } : {}),
      });
      if (args.runId) {
        await this.replay(this.host.store, args.runId, args.verify !== false);
        stopOnEntry = args.stopOnEntry ?? true;
      } else if (args.agent) {
        await this.runLive(this.host, args);
        stopOnEntry = args.stopOnEntry ?? false;
      } else {
        throw new Error('A keel launch configuration needs "runId" (to replay a run) or "agent" (to run one live).');
      }
    } catch (error) {
      await this.host?.close().catch(() => undefined);
      this.host = undefined;
      this.sendErrorResponse(response, { id: LAUNCH_FAILED, format: describeError(error), showUser: true });
      return;
    }
    await this.configurationDone;
    this.go(response, (engine) => engine.start(stopOnEntry));
  }

  private async replay(store: CheckpointStore, runId: string, verify: boolean): Promise<void> {
    const recording = await loadRecording(store, await store.resolveRunId(runId));
    const { run } = recording;
    let unchecked: string | undefined;
    let agents;
    if (!verify) unchecked = 'the launch configuration says "verify": false';
    else if (!run.agentFile) unchecked = 'the run was not started from an agent file';
    else {
      try {
        agents = agentsOf((await loadAgentFile(run.agentFile, { agent: run.agent })).agent);
      } catch (error) {
        unchecked = `its agent file no longer loads: ${describeError(error)}`;
      }
    }
    const timeline = await replayRecording(recording, { ...(agents ? { agents } : {}), ...(unchecked ? { unchecked } : {}) });
    this.threadName = `${run.agent} ${run.id}`;
    this.output(`Replaying run ${run.id} (${run.agent}): ${timeline.positions.length} steps in ${timeline.runs.size} run(s).`);
    for (const replayed of timeline.runs.values()) {
      const label = replayed.parent ? `Sub-agent run ${replayed.run.id} (${replayed.run.agent})` : `Run ${replayed.run.id}`;
      const unchecked = replayed.unchecked ? `replayed from its recording alone, not checked against its agent (${replayed.unchecked}). ` : '';
      this.output(`${label}: ${unchecked}${replayed.outcome ?? ''}`);
    }
    this.useEngine(new ReplayEngine(timeline));
  }

  private async runLive(host: Host, args: KeelLaunchArguments): Promise<void> {
    const { agent, file } = await loadAgentFile(args.agent ?? '');
    const model = args.model ?? host.config.model;
    const live = new LiveRun({
      runtime: host.runtime,
      agent,
      agentFile: file,
      input: args.input ?? '',
      ...(model ? { model } : {}),
      ...(host.config.runBudget ? { budget: host.config.runBudget } : {}),
      onChange: (runId) => this.sendEvent(new Event('keel/runChanged', { runId })),
    });
    this.live = live;
    this.useEngine(new ReplayEngine(live.timeline, live, args.pauseBeforeTools ?? true));
    const runId = await live.start();
    this.threadName = `${agent.name} ${runId}`;
    this.output(`Running ${agent.name} live (run ${runId}); it waits before each step until you step or continue.`);
    this.liveStopped = live.done.then(
      async (run) => {
        this.output(live.outcome ?? 'The run stopped.');
        // As after any run a host executes: its trace exported, its alerts raised, its calls sampled for review.
        if (run) await host.afterRun(run);
      },
      () => this.output(live.outcome ?? 'The run stopped.'),
    );
  }

  private useEngine(engine: ReplayEngine): void {
    engine.setFunctionBreakpoints(this.functionBreakpoints);
    for (const [runId, breakpoints] of this.lineBreakpoints) engine.setLineBreakpoints(runId, breakpoints);
    engine.setExceptionFilters(this.filters);
    engine.on('stopped', (stop) => this.stopped(stop));
    this.engine = engine;
  }

  private stopped(stop: Stop): void {
    if (!this.engine?.position) {
      // A run that stopped before its first step: there is nothing to stop at.
      this.output(stop.description);
      this.sendEvent(new TerminatedEvent());
      return;
    }
    this.handles.reset();
    for (const message of this.engine?.conditionErrors.splice(0) ?? []) this.output(message, 'stderr');
    const event = new StoppedEvent(stop.reason, THREAD, stop.text) as DebugProtocol.StoppedEvent;
    event.body.description = stop.description;
    event.body.allThreadsStopped = true;
    if (stop.breakpointIds) event.body.hitBreakpointIds = [...stop.breakpointIds];
    this.sendEvent(event);
  }

  /** Answers a request that moves the session, then moves: the stop comes as an event. */
  private go(response: DebugProtocol.Response, move: (engine: ReplayEngine) => Promise<Stop>): void {
    const engine = this.engine;
    if (!engine) {
      this.sendErrorResponse(response, { id: NOT_STOPPED, format: 'The session has not started yet.' });
      return;
    }
    this.sendResponse(response);
    void this.move(() => move(engine));
  }

  /** Runs an engine move; a failure (the store went away, say) ends the session with its reason. */
  private async move(operation: () => Promise<Stop>): Promise<void> {
    try {
      await operation();
    } catch (error) {
      this.output(`The session stopped: ${describeError(error)}`, 'stderr');
      this.sendEvent(new TerminatedEvent());
    }
  }

  protected override setFunctionBreakPointsRequest(response: DebugProtocol.SetFunctionBreakpointsResponse, args: DebugProtocol.SetFunctionBreakpointsArguments): void {
    this.functionBreakpoints = args.breakpoints.map((breakpoint) => ({
      id: this.nextBreakpointId++,
      name: breakpoint.name,
      ...(breakpoint.condition ? { condition: breakpoint.condition } : {}),
    }));
    this.engine?.setFunctionBreakpoints(this.functionBreakpoints);
    response.body = { breakpoints: this.functionBreakpoints.map(({ id }) => ({ id, verified: true })) };
    this.sendResponse(response);
  }

  protected override setBreakPointsRequest(response: DebugProtocol.SetBreakpointsResponse, args: DebugProtocol.SetBreakpointsArguments): void {
    const runId = runIdOfTranscript(args.source.path ?? '');
    const requested = args.breakpoints ?? [];
    if (!runId) {
      response.body = { breakpoints: requested.map(() => ({ verified: false, message: 'Keel breakpoints go in run transcripts.' })) };
      this.sendResponse(response);
      return;
    }
    const breakpoints = requested.map((breakpoint) => ({
      id: this.nextBreakpointId++,
      line: breakpoint.line,
      ...(breakpoint.condition ? { condition: breakpoint.condition } : {}),
    }));
    this.lineBreakpoints.set(runId, breakpoints);
    this.engine?.setLineBreakpoints(runId, breakpoints);
    response.body = { breakpoints: breakpoints.map(({ id, line }) => ({ id, line, verified: true })) };
    this.sendResponse(response);
  }

  protected override setExceptionBreakPointsRequest(response: DebugProtocol.SetExceptionBreakpointsResponse, args: DebugProtocol.SetExceptionBreakpointsArguments): void {
    this.filters = args.filters.filter((filter) => (EXCEPTION_FILTERS as readonly string[]).includes(filter));
    this.engine?.setExceptionFilters(this.filters);
    response.body = { breakpoints: args.filters.map(() => ({ verified: true })) };
    this.sendResponse(response);
  }

  protected override threadsRequest(response: DebugProtocol.ThreadsResponse): void {
    response.body = { threads: [new Thread(THREAD, this.threadName)] };
    this.sendResponse(response);
  }

  protected override stackTraceRequest(response: DebugProtocol.StackTraceResponse, args: DebugProtocol.StackTraceArguments): void {
    const engine = this.engine;
    const position = engine?.position;
    if (!engine || !position) {
      response.body = { stackFrames: [], totalFrames: 0 };
      this.sendResponse(response);
      return;
    }
    const frames = engine.timeline.frames(position).map((frame) => {
      const { run } = frame.run;
      const line = engine.transcript(run.id)?.lines.get(frame.seq) ?? 1;
      const name = `${run.agent} · step ${frame.seq} · ${frame.kind === 'model' ? 'model' : frame.name}${frame.divergence ? ' (diverged)' : ''}`;
      const source = new Source(`${run.agent} ${run.id}.keel-transcript`, transcriptUri(run.id));
      return new StackFrame(frame.index + 1, name, source, line, 1);
    });
    const start = args.startFrame ?? 0;
    const shown = frames.slice(start, args.levels ? start + args.levels : undefined);
    response.body = { stackFrames: shown, totalFrames: frames.length };
    this.sendResponse(response);
  }

  protected override scopesRequest(response: DebugProtocol.ScopesResponse, args: DebugProtocol.ScopesArguments): void {
    const position = this.positionOf(args.frameId);
    if (!this.engine || !position) {
      this.sendErrorResponse(response, { id: NOT_STOPPED, format: 'There is no such step.' });
      return;
    }
    const view = this.engine.view(position);
    const scope = (name: string, container: Container, expensive = false) => new Scope(name, this.handles.create(container), expensive);
    response.body = {
      scopes: [
        position.kind === 'model'
          ? scope('Model output', { value: view.output ?? null })
          : scope('Tool call', { value: { tool: position.name, arguments: view.args, result: view.result, content: view.content, error: view.error } }),
        { ...scope('Messages', { messagesOf: position }, true), indexedVariables: position.messageCount },
        scope('Budget', { value: view.budget }),
        scope('Flags', { value: view.flags }),
        scope('State', { value: view.state }),
        scope('Step', { value: view.step }),
      ],
    };
    this.sendResponse(response);
  }

  protected override variablesRequest(response: DebugProtocol.VariablesResponse, args: DebugProtocol.VariablesArguments): void {
    const container = this.handles.get(args.variablesReference);
    const value = container === undefined ? undefined : 'value' in container ? container.value : this.messagesAt(container.messagesOf);
    const entries: [string, unknown][] = Array.isArray(value)
      ? value.map((item, index): [string, unknown] => [String(index), item])
      : value !== null && typeof value === 'object'
        ? Object.entries(value)
        : [];
    const start = args.start ?? 0;
    const page = args.count ? entries.slice(start, start + args.count) : entries;
    response.body = { variables: page.map(([name, item]) => this.variable(name, item)) };
    this.sendResponse(response);
  }

  protected override evaluateRequest(response: DebugProtocol.EvaluateResponse, args: DebugProtocol.EvaluateArguments): void {
    const position = this.positionOf(args.frameId);
    if (!this.engine || !position) {
      this.sendErrorResponse(response, { id: NOT_STOPPED, format: 'Stop at a step first: expressions are evaluated over a step.' });
      return;
    }
    try {
      const result = evaluateExpression(args.expression, { ...this.engine.view(position, args.expression.includes('messages')) });
      if ('text' in result) {
        response.body = { result: result.text, variablesReference: 0 };
      } else {
        const shown = this.variable('', JSON.parse(result.json) as unknown);
        response.body = { result: shown.value, variablesReference: shown.variablesReference };
      }
      this.sendResponse(response);
    } catch (error) {
      this.sendErrorResponse(response, { id: NOT_STOPPED, format: describeError(error) });
    }
  }

  protected override continueRequest(response: DebugProtocol.ContinueResponse): void {
    response.body = { allThreadsContinued: true };
    this.go(response, (engine) => engine.continue());
  }

  protected override nextRequest(response: DebugProtocol.NextResponse): void {
    this.go(response, (engine) => engine.next());
  }

  protected override stepInRequest(response: DebugProtocol.StepInResponse): void {
    this.go(response, (engine) => engine.stepIn());
  }

  protected override stepOutRequest(response: DebugProtocol.StepOutResponse): void {
    this.go(response, (engine) => engine.stepOut());
  }

  protected override stepBackRequest(response: DebugProtocol.StepBackResponse): void {
    this.go(response, (engine) => engine.stepBack());
  }

  protected override reverseContinueRequest(response: DebugProtocol.ReverseContinueResponse): void {
    this.go(response, (engine) => engine.reverseContinue());
  }

  protected override pauseRequest(response: DebugProtocol.PauseResponse): void {
    this.engine?.pause();
    this.sendResponse(response);
  }

  protected override gotoTargetsRequest(response: DebugProtocol.GotoTargetsResponse, args: DebugProtocol.GotoTargetsArguments): void {
    const runId = runIdOfTranscript(args.source.path ?? '');
    const position = runId ? this.engine?.positionAtLine(runId, args.line) : undefined;
    const line = position && runId ? this.engine?.transcript(runId)?.lines.get(position.seq) : undefined;
    response.body = { targets: position ? [{ id: position.index + 1, label: `step ${position.seq}`, line: line ?? args.line }] : [] };
    this.sendResponse(response);
  }

  protected override gotoRequest(response: DebugProtocol.GotoResponse, args: DebugProtocol.GotoArguments): void {
    this.go(response, (engine) => engine.goTo(args.targetId - 1));
  }

  protected override exceptionInfoRequest(response: DebugProtocol.ExceptionInfoResponse): void {
    const stop = this.engine?.stop;
    response.body = {
      exceptionId: stop?.exception ?? 'none',
      description: stop?.text ?? stop?.description ?? '',
      breakMode: 'always',
      details: { message: stop?.text ?? '' },
    };
    this.sendResponse(response);
  }

  protected override customRequest(command: string, response: DebugProtocol.Response, args: unknown): void {
    const { runId, frameId } = (typeof args === 'object' && args !== null ? args : {}) as { runId?: unknown; frameId?: unknown };
    switch (command) {
      case 'keel/transcript': {
        const transcript = typeof runId === 'string' ? this.engine?.transcript(runId) : undefined;
        if (!transcript) return this.sendErrorResponse(response, { id: NOT_STOPPED, format: `This session has no run ${String(runId)}.` });
        response.body = { text: transcript.text };
        return this.sendResponse(response);
      }
      case 'keel/position': {
        const position = this.positionOf(typeof frameId === 'number' ? frameId : undefined);
        if (!position) return this.sendErrorResponse(response, { id: NOT_STOPPED, format: 'The session is not stopped at a step.' });
        const rootRunId = this.engine?.timeline.root?.run.id ?? null;
        const step = position.step;
        const body: StoppedAt = {
          runId: position.run.run.id,
          rootRunId,
          seq: position.seq,
          kind: position.kind,
          name: position.name,
          index: position.index,
          steps: this.engine?.timeline.positions.length ?? 0,
          // What Keel: Fork Run from Here opens for editing.
          forkDocument: step ? forkDocument(position.run.run, step) : null,
        };
        response.body = body;
        return this.sendResponse(response);
      }
      default:
        return super.customRequest(command, response, args);
    }
  }

  protected override terminateRequest(response: DebugProtocol.TerminateResponse): void {
    this.live?.cancel();
    this.sendResponse(response);
    this.sendEvent(new TerminatedEvent());
  }

  protected override disconnectRequest(response: DebugProtocol.DisconnectResponse): void {
    void this.disconnect(response);
  }

  private async disconnect(response: DebugProtocol.DisconnectResponse): Promise<void> {
    this.live?.cancel();
    if (this.live) await Promise.race([this.liveStopped, new Promise((resolve) => setTimeout(resolve, 5000))]);
    await this.host?.close().catch(() => undefined);
    this.host = undefined;
    this.sendResponse(response);
  }

  private positionOf(frameId: number | undefined): Position | undefined {
    if (frameId === undefined) return this.engine?.position;
    return this.engine?.timeline.positions[frameId - 1];
  }

  private messagesAt(position: Position): unknown[] {
    return this.engine?.view(position, true).messages?.slice() ?? [];
  }

  private variable(name: string, value: unknown): DebugProtocol.Variable {
    if (Array.isArray(value)) {
      return {
        name,
        value: `Array(${value.length})`,
        variablesReference: value.length > 0 ? this.handles.create({ value }) : 0,
        indexedVariables: value.length,
      };
    }
    if (value !== null && typeof value === 'object') {
      const keys = Object.keys(value);
      return {
        name,
        value: `{${keys.slice(0, 5).join(', ')}${keys.length > 5 ? ', …' : ''}}`,
        variablesReference: keys.length > 0 ? this.handles.create({ value }) : 0,
        namedVariables: keys.length,
      };
    }
    const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
    return { name, value: text.length > 500 ? `${text.slice(0, 499)}…` : text, variablesReference: 0 };
  }

  private output(text: string, category: 'console' | 'stderr' = 'console'): void {
    this.sendEvent(new OutputEvent(`${text}\n`, category));
  }
}
