import type { RunEvent } from '../../runtime/agent/events';
import { loadAgentFile } from '../../runtime/agent/loader';
import { isOwnerAlive } from '../../runtime/agent/owner';
import { Runtime, type RunHandle } from '../../runtime/agent/runtime';
import { KeelError, describeError } from '../../runtime/errors';
import type { BudgetLimits } from '../../runtime/budget/budget';
import { costOptions, costSettingsFromEnv } from '../../runtime/budget/config';
import { forecast } from '../../runtime/budget/forecast';
import { sandboxOptionsFromEnv } from '../../runtime/sandbox/toolRunner';
import type { Engine } from '../../runtime/engine/engine';
import { isRestateOwned } from '../../runtime/engine/restate/naming';
import { approvalsOfTree, rootRunOf } from '../../runtime/store/runTree';
import type { CheckpointStore, RunRecord, RunState } from '../../runtime/store/checkpointStore';
import { ENGINE_FLAGS, RESTATE_FLAGS, engineKind, restateEngine } from '../engines';
import { budgetWarningLine, forecastLine, pendingApproval, retryLine, runHeader, runOutcome, runSummary, stepLine } from '../render';
import { UsageError, out, parse, style, withStore, type Command } from '../shared';
import { exportEndedTrace } from '../traceSupport';

/** Commands that execute runs: start one, resume one, decide what happened to an interrupted call. */

async function run(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    input: { type: 'string', short: 'i' },
    model: { type: 'string' },
    json: { type: 'boolean' },
    'budget-usd': { type: 'string' },
    'budget-tokens': { type: 'string' },
    'budget-steps': { type: 'string' },
    'budget-time': { type: 'string' },
    thread: { type: 'string' },
    task: { type: 'string' },
    'accept-mcp-tool': { type: 'string', multiple: true },
    ...ENGINE_FLAGS,
  });
  const [file, ...extra] = positionals;
  if (!file || extra.length > 0) throw new UsageError('keel run takes one agent file: keel run <file.agent.ts> --input <text>');
  if (values.input === undefined) throw new UsageError('keel run needs --input <text>: what to ask the agent.');
  const json = values.json === true;
  const budget = budgetFlags(values);
  const engine = engineKind(values.engine);

  const { agent, file: agentFile } = await loadAgentFile(file);
  const accepted = (values['accept-mcp-tool'] ?? []).flatMap((list) => list.split(',')).map((tool) => tool.trim()).filter((tool) => tool !== '');
  // Tool descriptions the injection screen flagged that the person running this accepts, as server/tool.
  if (accepted.length > 0) (await import('../../runtime/mcp/mcpManager.js')).sharedMcpManager().accept(accepted);
  return withStore(values.db, async (store) => {
    if (!json) {
      const expected = await forecast(store, agent.name);
      if (expected) out.write(`${style.dim(forecastLine(expected))}\n`);
    }
    if (engine === 'restate') {
      const restate = restateEngine(store, values);
      const runId = await restate.start({
        agentFile,
        input: values.input ?? '',
        ...(values.model === undefined ? {} : { model: values.model }),
        ...(budget ? { budget } : {}),
        ...(values.thread === undefined ? {} : { threadId: values.thread }),
        ...(values.task === undefined ? {} : { taskId: values.task }),
        ...(json ? {} : { onEvent: liveView() }),
      });
      return followElsewhere(restate, runId, json);
    }
    const handle = await newRuntime(store).start(agent, {
      input: values.input ?? '',
      agentFile,
      ...(values.model === undefined ? {} : { model: values.model }),
      ...(budget ? { budget } : {}),
      ...(values.thread === undefined ? {} : { threadId: values.thread }),
      ...(values.task === undefined ? {} : { taskId: values.task }),
      onEvent: json ? undefined : liveView(),
    });
    return follow(store, handle, json);
  });
}

/** A runtime with the cost and sandbox settings of the environment (KEEL_PRICES, KEEL_DAILY_USD, KEEL_SANDBOX). */
function newRuntime(store: CheckpointStore): Runtime {
  return new Runtime({ store, ...costOptions(costSettingsFromEnv()), sandbox: sandboxOptionsFromEnv() });
}

function budgetFlags(values: {
  'budget-usd'?: string | undefined;
  'budget-tokens'?: string | undefined;
  'budget-steps'?: string | undefined;
  'budget-time'?: string | undefined;
}): BudgetLimits | undefined {
  const number = (flag: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    const value = Number(text.replace(/^\$/, '').replace(/s$/, ''));
    if (!Number.isFinite(value) || value < 0) throw new UsageError(`--${flag} needs a number of at least 0 (got "${text}").`);
    return value;
  };
  const usd = number('budget-usd', values['budget-usd']);
  const tokens = number('budget-tokens', values['budget-tokens']);
  const steps = number('budget-steps', values['budget-steps']);
  const seconds = number('budget-time', values['budget-time']);
  const limits: BudgetLimits = {
    ...(usd === undefined ? {} : { usd }),
    ...(tokens === undefined ? {} : { tokens }),
    ...(steps === undefined ? {} : { steps }),
    ...(seconds === undefined ? {} : { wallTimeMs: seconds * 1000 }),
  };
  return Object.keys(limits).length > 0 ? limits : undefined;
}

async function resume(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, ...RESTATE_FLAGS });
  const [prefix, ...extra] = positionals;
  if (!prefix || extra.length > 0) throw new UsageError('keel resume takes one run id: keel resume <runId>');
  return withStore(values.db, async (store) => {
    await store.markInterrupted(isOwnerAlive, Date.now());
    return resumeRun(store, await store.resolveRunId(prefix), values.json === true, { flags: values });
  });
}

/**
 * Continues a run and follows it: here, or on Restate when Restate executes it (`restate.flags`: where
 * its ingress and admin API are; `restate.since`: show its steps that ended from then on, such as
 * since a decision).
 */
export async function resumeRun(
  store: CheckpointStore,
  runId: string,
  json: boolean,
  restate: { flags?: { 'restate-url'?: string | undefined; 'restate-admin'?: string | undefined }; since?: number } = {},
): Promise<number> {
  const record = await rootRunOf(store, runId);
  if (isRestateOwned(record)) {
    const engine = restateEngine(store, restate.flags ?? {});
    await engine.resume(runId);
    if (!json) engine.follow(runId, liveView(), restate.since);
    return followElsewhere(engine, runId, json);
  }
  // A tree goes on from its root: the sub-agent's run continues as its parent replays to it.
  if (record.id !== runId && !json) out.write(`${style.dim(`Run ${runId} is a sub-agent run under ${record.id}: continuing that run, which continues it.`)}\n`);
  if (!record.agentFile) {
    throw new KeelError(`Run ${record.id} was not started from an agent file, so the CLI cannot resume it; resume it in code with runtime.resume(agent, runId).`);
  }
  const { agent } = await loadAgentFile(record.agentFile, { agent: record.agent });
  const handle = await newRuntime(store).resume(agent, record.id, { onEvent: json ? undefined : liveView() });
  return follow(store, handle, json);
}

/** Waits for a run to stop (Ctrl-C cancels it), prints it as JSON if asked, and gives the exit code. */
async function follow(store: CheckpointStore, handle: RunHandle, json: boolean): Promise<number> {
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    handle.cancel();
  };
  process.once('SIGINT', onSigint);
  const stopped = await handle.done;
  process.off('SIGINT', onSigint);
  await exportEndedTrace(store, stopped.id);
  const code = await reportStopped(store, stopped, json);
  return interrupted ? 130 : code;
}

/**
 * Prints a run that stopped (as JSON if asked), with the decisions it waits for, its sub-agents'
 * included, and gives its exit code.
 */
export async function reportStopped(store: CheckpointStore, stopped: RunRecord, json: boolean): Promise<number> {
  const approvals = await approvalsOfTree(store, stopped.id, 'pending');
  if (json) {
    const steps = await store.getSteps(stopped.id);
    out.write(`${JSON.stringify({ run: stopped, steps, approvals }, null, 2)}\n`);
  } else {
    for (const approval of approvals) out.write(`${pendingApproval(approval, style, stopped)}\n`);
  }
  return EXIT_CODES[stopped.state];
}

/**
 * Waits for a run another process executes (Restate) to stop, as `follow` does for one executing
 * here. Ctrl-C cancels the run there, as it would here; a second Ctrl-C stops waiting for it.
 */
async function followElsewhere(engine: Engine, runId: string, json: boolean): Promise<number> {
  const controller = new AbortController();
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) {
      controller.abort();
      return;
    }
    interrupted = true;
    engine.cancel(runId).catch((error: unknown) => {
      process.stderr.write(`keel: could not cancel run ${runId}: ${describeError(error)}\n`);
      controller.abort();
    });
  };
  process.on('SIGINT', onSigint);
  let stopped: RunRecord;
  try {
    stopped = await engine.wait(runId, { signal: controller.signal });
  } catch (error) {
    if (!controller.signal.aborted) throw error;
    process.stderr.write(`Stopped following run ${runId}; it goes on in Restate (keel show ${runId}).\n`);
    return 130;
  } finally {
    process.off('SIGINT', onSigint);
  }
  const code = await reportStopped(engine.store, stopped, json);
  return interrupted ? 130 : code;
}

const EXIT_CODES: Record<RunState, number> = {
  completed: 0,
  failed: 1,
  cancelled: 1,
  running: 1,
  interrupted: 1,
  waiting_approval: 3,
  budget_exceeded: 4,
};

/** Prints each step as it finishes; on a terminal, shows the step in progress until then. */
function liveView(): (event: RunEvent) => void {
  const tty = out.isTTY === true;
  let pending = false;
  const clearPending = () => {
    if (pending) out.write('\r\x1b[K');
    pending = false;
  };
  return (event) => {
    switch (event.type) {
      case 'run_started':
        out.write(`${runHeader(event.run, style)}\n`);
        break;
      case 'step_started':
        if (tty) {
          clearPending();
          out.write(stepLine(event.step, style));
          pending = true;
        }
        break;
      case 'step_finished':
        clearPending();
        out.write(`${stepLine(event.step, style)}\n`);
        break;
      case 'tool_log':
        clearPending();
        out.write(`${style.dim(`        log: ${event.message}`)}\n`);
        break;
      case 'step_retry':
        clearPending();
        out.write(`${retryLine(event.failure, style)}\n`);
        break;
      case 'budget_warning':
        clearPending();
        out.write(`${budgetWarningLine(event, style)}\n`);
        break;
      case 'approval_requested':
        break;
      case 'model_delta':
        break;
      case 'run_finished':
        clearPending();
        // A paused run's reason is printed with its pending approval, after this.
        out.write(`${runSummary(event.run, style)}\n${event.run.state === 'waiting_approval' ? '' : `${runOutcome(event.run)}\n`}`);
        break;
    }
  };
}


export const runCommands: Readonly<Record<string, Command>> = {
  run: {
    usage: [
      'keel run <file.agent.ts> --input <text> [--model <spec>] [--json]',
      '         [--budget-usd <n>] [--budget-tokens <n>] [--budget-steps <n>] [--budget-time <seconds>]',
      '         [--thread <id>] [--task <id>]       continue a thread (new ids start one); work on a task',
      '         [--accept-mcp-tool <server/tool>]    run with an MCP tool whose description the injection screen flagged',
      '         [--engine local|restate] [--restate-url <ingress>]   run it here, or on Restate (keel serve)',
    ],
    run,
  },
  resume: { usage: ['keel resume <runId> [--json]'], run: resume },
};
