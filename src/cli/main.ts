import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { Runtime } from '../runtime/agent/runtime';
import { loadAgentFile } from '../runtime/agent/loader';
import { KeelError, describeError } from '../runtime/errors';
import type { RunEvent } from '../runtime/agent/events';
import type { CheckpointStore } from '../runtime/store/checkpointStore';
import { openSqliteStore } from '../runtime/store/sqliteStore';
import { databasePathFor, findWorkspaceRoot } from '../runtime/workspace';
import { runDetail, runHeader, runOutcome, runSummary, runsTable, stepLine } from './render';
import { styleFor } from './style';

const USAGE = `keel: build LLM agents that survive production

Usage:
  keel run <file.agent.ts> --input <text> [--model <spec>] [--json]
  keel runs [--limit <n>] [--json]
  keel show <runId> [--json]

Options:
  --db <path>       the run database (default: .keel/keel.db in the workspace)
  --model <spec>    run with another model, e.g. openai:gpt-4o-mini (any OpenAI-compatible
                    endpoint: set OPENAI_BASE_URL and OPENAI_API_KEY)
  --json            print JSON instead of text

Exit codes: 0 completed, 1 failed (or cancelled), 2 usage error, 130 interrupted.`;

class UsageError extends KeelError {}

const out = process.stdout;
const style = styleFor(out);


async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return run(rest);
    case 'runs':
      return runs(rest);
    case 'show':
      return show(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      out.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    case '--version':
    case 'version':
      out.write(`${process.env['KEEL_VERSION'] ?? 'dev'}\n`);
      return 0;
    default:
      throw new UsageError(`Unknown command "${command}".`);
  }
}

function parse<T extends ParseArgsOptionsConfig>(args: readonly string[], options: T) {
  try {
    return parseArgs({ args: [...args], options: { db: { type: 'string' as const }, ...options }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(describeError(error));
  }
}

function openStore(db: string | undefined): CheckpointStore {
  return openSqliteStore(db ?? process.env['KEEL_DB'] ?? databasePathFor(findWorkspaceRoot(process.cwd())));
}

async function run(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    input: { type: 'string', short: 'i' },
    model: { type: 'string' },
    json: { type: 'boolean' },
  });
  const [file, ...extra] = positionals;
  if (!file || extra.length > 0) throw new UsageError('keel run takes one agent file: keel run <file.agent.ts> --input <text>');
  if (values.input === undefined) throw new UsageError('keel run needs --input <text>: what to ask the agent.');
  const json = values.json === true;

  const { agent, file: agentFile } = await loadAgentFile(file);
  const store = openStore(values.db);
  try {
    const runtime = new Runtime({ store });
    const handle = await runtime.start(agent, {
      input: values.input,
      agentFile,
      ...(values.model === undefined ? {} : { model: values.model }),
      onEvent: json ? undefined : liveView(),
    });
    let interrupted = false;
    const onSigint = () => {
      interrupted = true;
      handle.cancel();
    };
    process.once('SIGINT', onSigint);
    const finished = await handle.done;
    process.off('SIGINT', onSigint);
    if (json) {
      out.write(`${JSON.stringify({ run: finished, steps: await store.getSteps(finished.id) }, null, 2)}\n`);
    }
    if (interrupted) return 130;
    return finished.state === 'completed' ? 0 : 1;
  } finally {
    await store.close();
  }
}

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
      case 'model_delta':
        break;
      case 'run_finished':
        clearPending();
        out.write(`${runSummary(event.run, style)}\n${runOutcome(event.run)}\n`);
        break;
    }
  };
}

async function runs(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, limit: { type: 'string' } });
  if (positionals.length > 0) throw new UsageError('keel runs takes no arguments.');
  const limit = values.limit === undefined ? 50 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a whole number of at least 1.');
  const store = openStore(values.db);
  try {
    const list = await store.listRuns({ limit });
    out.write(values.json ? `${JSON.stringify(list, null, 2)}\n` : `${runsTable(list, style)}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

async function show(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } });
  const [prefix, ...extra] = positionals;
  if (!prefix || extra.length > 0) throw new UsageError('keel show takes one run id: keel show <runId>');
  const store = openStore(values.db);
  try {
    const runId = await store.resolveRunId(prefix);
    const record = await store.getRun(runId);
    if (!record) throw new KeelError(`No run ${runId}.`);
    const steps = await store.getSteps(runId);
    out.write(values.json ? `${JSON.stringify({ run: record, steps }, null, 2)}\n` : `${runDetail(record, steps, style)}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const err = styleFor(process.stderr);
    if (error instanceof UsageError) {
      process.stderr.write(`${err.red('keel:')} ${error.message}\nRun \`keel help\` for usage.\n`);
      process.exitCode = 2;
    } else if (error instanceof KeelError) {
      process.stderr.write(`${err.red('keel:')} ${error.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(
        `${err.red('keel: unexpected error:')} ${describeError(error)}\n` +
          (process.env['KEEL_DEBUG'] ? `${(error as Error).stack ?? ''}\n` : 'Set KEEL_DEBUG=1 to see where it happened.\n'),
      );
      process.exitCode = 1;
    }
  },
);
