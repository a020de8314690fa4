import type { RunEvent } from '../../runtime/agent/events';
import { loadAgentFile } from '../../runtime/agent/loader';
import { isOwnerAlive } from '../../runtime/agent/owner';
import { describeError } from '../../runtime/errors';
import { mergeLimits, type BudgetLimits } from '../../runtime/budget/budget';
import { forecastAgentRun } from '../../runtime/budget/forecast';
import type { Engine } from '../../runtime/engine/engine';
import { isRestateOwned } from '../../runtime/engine/restate/naming';
import type { Host } from '../../runtime/host/host';
import { approvalsOfTree, rootRunOf } from '../../runtime/store/runTree';
import { TERMINAL_STATES, type RunRecord, type RunState } from '../../runtime/store/checkpointStore';
import { runFlags } from '../../runtime/trace/runFlags';
import { ENGINE_FLAGS, RESTATE_FLAGS } from '../engines';
import { budgetWarningLine, forecastLines, overrunLine, pendingApproval, retryLine, runHeader, runOutcome, runSummary, stepLine } from '../render';
import { UsageError, type Command } from '../command';
import { out, parse, style, withHost } from '../shared';
import { flagLines } from '../traceSupport';

/** Commands that execute runs: start one, resume one, decide what happened to an interrupted call. */

/** A run's own limits, for keel run and for keel resume of a run that stopped at them. */
const BUDGET_FLAGS = {
  'budget-usd': { type: 'string' },
  'budget-tokens': { type: 'string' },
  'budget-steps': { type: 'string' },
  'budget-time': { type: 'string' },
} as const;

async function run(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    input: { type: 'string', short: 'i' },
    model: { type: 'string' },
    json: { type: 'boolean' },
    ...BUDGET_FLAGS,
    thread: { type: 'string' },
    task: { type: 'string' },
    'accept-mcp-tool': { type: 'string', multiple: true },
    'fail-on-flags': { type: 'boolean' },
    ...ENGINE_FLAGS,
  });
  const [file, ...extra] = positionals;
  if (!file || extra.length > 0) throw new UsageError('keel run takes one agent file: keel run <file.agent.ts> --input <text>');
  if (values.input === undefined) throw new UsageError('keel run needs --input <text>: what to ask the agent.');
  const json = values.json === true;
  // Loaded first: an agent file that cannot load leaves no database behind.
  const loaded = await loadAgentFile(file);

  const accepted = (values['accept-mcp-tool'] ?? []).flatMap((list) => list.split(',')).map((tool) => tool.trim()).filter((tool) => tool !== '');
  // Tool descriptions the injection screen flagged that the person running this accepts, as server/tool.
  if (accepted.length > 0) (await import('../../runtime/mcp/mcpManager.js')).sharedMcpManager().accept(accepted);

  return withHost(values, async (host) => {
    const budget = mergeLimits(host.config.runBudget, budgetFlags(values));
    if (!json) {
      const forecast = await forecastAgentRun(host.store, loaded.agent, { model: host.config.model, budget, pools: host.pools() });
      for (const line of forecastLines(forecast, style)) out.write(`${line}\n`);
    }
    const { engine } = host;
    const runId = await engine.start({
      agentFile: loaded.file,
      loaded,
      input: values.input ?? '',
      ...(host.config.model === undefined ? {} : { model: host.config.model }),
      ...(budget ? { budget } : {}),
      ...(values.thread === undefined ? {} : { threadId: values.thread }),
      ...(values.task === undefined ? {} : { taskId: values.task }),
      ...(json ? {} : { onEvent: liveView() }),
    });
    const code = engine.kind === 'local' ? await follow(host, runId, json) : await followElsewhere(host, engine, runId, json);
    // The detectors flagged a run that completed: exit 5 when asked to (CI).
    if (code === 0 && values['fail-on-flags'] === true && (await runFlags(host.store, runId, host.trace)).length > 0) return 5;
    return code;
  });
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
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, ...BUDGET_FLAGS, ...RESTATE_FLAGS });
  const [prefix, ...extra] = positionals;
  if (!prefix || extra.length > 0) throw new UsageError('keel resume takes one run id: keel resume <runId>');
  const budget = budgetFlags(values);
  return withHost(values, async (host) => {
    await host.store.markInterrupted(isOwnerAlive, Date.now());
    return resumeRun(host, await host.store.resolveRunId(prefix), values.json === true, undefined, budget);
  });
}

/**
 * Continues a run's tree and follows it: here, or on Restate when Restate executes it (`since`:
 * show its steps that ended from then on, such as since a decision).
 */
export async function resumeRun(host: Host, runId: string, json: boolean, since?: number, budget?: BudgetLimits): Promise<number> {
  const root = await rootRunOf(host.store, runId);
  if (isRestateOwned(root)) {
    if (budget) throw new UsageError(`Run ${root.id} runs on Restate, whose runs keep the budget they started with; --budget-… applies to runs executed here.`);
    const engine = host.restate;
    await engine.resume(root.id);
    if (!json) engine.follow(root.id, liveView(), since);
    return followElsewhere(host, engine, root.id, json);
  }
  // A tree goes on from its root: the sub-agent's run continues as its parent replays to it.
  if (root.id !== runId && !json) out.write(`${style.dim(`Run ${runId} is a sub-agent run under ${root.id}: continuing that run, which continues it.`)}\n`);
  return follow(host, await host.local.resume(root.id, { ...(json ? {} : { onEvent: liveView() }), ...(budget ? { budget } : {}) }), json);
}

/** Waits for a run executing here to stop (Ctrl-C cancels it), prints it as JSON if asked, and gives the exit code. */
export async function follow(host: Host, runId: string, json: boolean): Promise<number> {
  let interrupted = false;
  const onSigint = () => {
    interrupted = true;
    void host.local.cancel(runId).catch(() => undefined);
  };
  process.once('SIGINT', onSigint);
  const stopped = await host.local.wait(runId);
  process.off('SIGINT', onSigint);
  const code = await reportStopped(host, stopped, json);
  return interrupted ? 130 : code;
}

/**
 * Prints a run that stopped (as JSON if asked), with the decisions it waits for, its sub-agents'
 * included, and the detectors' flags once it has ended; sends the alerts it raised; gives its exit code.
 */
export async function reportStopped(host: Host, stopped: RunRecord, json: boolean): Promise<number> {
  const { store } = host;
  const approvals = await approvalsOfTree(store, stopped.id, 'pending');
  const flags = TERMINAL_STATES.includes(stopped.state) ? await runFlags(store, stopped.id, host.trace) : [];
  if (json) {
    const steps = await store.getSteps(stopped.id);
    out.write(`${JSON.stringify({ run: stopped, steps, approvals, flags }, null, 2)}\n`);
  } else {
    for (const approval of approvals) out.write(`${pendingApproval(approval, style, stopped)}\n`);
    if (flags.length > 0) {
      out.write(`${style.bold(`Flags (${flags.length})`)}  ${style.dim(`the detectors found what may be quiet failures: npx keel show ${stopped.id}`)}\n`);
      out.write(`${host.trace.redactor.redact(flagLines(flags, style).join('\n'))}\n`);
    }
  }
  await sendAlerts(host);
  return EXIT_CODES[stopped.state];
}

/** How long a command waits, before it exits, for the alerts it raised to be delivered. */
const ALERT_DRAIN_MS = 10_000;

/** Delivers the alerts raised so far; what cannot go yet stays in the outbox for the next process (keel alerts). */
async function sendAlerts(host: Host): Promise<void> {
  try {
    const { pending } = await host.alerts.flush(ALERT_DRAIN_MS);
    if (pending > 0) process.stderr.write(`${style.dim(`${pending} alert${pending === 1 ? '' : 's'} not delivered yet: they stay in the outbox (npx keel alerts).`)}\n`);
  } catch (error) {
    process.stderr.write(`keel: could not deliver alerts: ${describeError(error)}\n`);
  }
}

/**
 * Waits for a run another process executes (Restate) to stop, as `follow` does for one executing
 * here. Ctrl-C cancels the run there, as it would here; a second Ctrl-C stops waiting for it.
 */
async function followElsewhere(host: Host, engine: Engine, runId: string, json: boolean): Promise<number> {
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
  const code = await reportStopped(host, stopped, json);
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
export function liveView(): (event: RunEvent) => void {
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
      case 'provider_overrun':
        clearPending();
        out.write(`${overrunLine(event, style)}\n`);
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
      '         [--fail-on-flags]                    exit 5 when the detectors flag the completed run (for CI)',
    ],
    run,
  },
  resume: {
    usage: ['keel resume <runId> [--json]', '         [--budget-usd <n>] [--budget-tokens <n>] [--budget-steps <n>] [--budget-time <seconds>]   (a run that stopped at its budget)'],
    run: resume,
  },
};
