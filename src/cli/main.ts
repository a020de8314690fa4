import { KeelError, describeError } from '../runtime/errors';
import { KEEL_VERSION } from '../runtime/version';
import { approvalCommands } from './commands/approvalCommands';
import { configCommands } from './commands/configCommands';
import { goldenCommands } from './commands/goldenCommands';
import { initCommands } from './commands/initCommands';
import { inspectCommands } from './commands/inspectCommands';
import { mcpCommands } from './commands/mcpCommands';
import { memoryCommands } from './commands/memoryCommands';
import { runCommands } from './commands/runCommands';
import { serveCommands } from './commands/serveCommands';
import { traceCommands } from './commands/traceCommands';
import { UsageError, out, type Command } from './shared';
import { styleFor } from './style';

/** Every command, in the order the usage text lists them. To add one, add its module's table here. */
const COMMANDS: Readonly<Record<string, Command>> = { ...initCommands, ...runCommands, ...approvalCommands, ...inspectCommands, ...traceCommands, ...goldenCommands, ...memoryCommands, ...mcpCommands, ...serveCommands, ...configCommands };

const USAGE = `keel: build LLM agents that survive production

Usage:
${Object.values(COMMANDS)
  .flatMap((command) => command.usage)
  .map((line) => `  ${line}`)
  .join('\n')}

Options:
  --db <path|url>   the run database: an SQLite file (default: .keel/keel.db in the workspace,
                    or KEEL_DB), or a postgres:// or postgresql:// connection string
  --model <spec>    run with another model, e.g. openai:gpt-4o-mini (any OpenAI-compatible
                    endpoint: set OPENAI_BASE_URL and OPENAI_API_KEY)
  --json            print JSON instead of text
  --restate-url <url>, --restate-admin <url>
                    Restate's ingress and admin API, for runs on Restate (default: KEEL_RESTATE_URL
                    or http://127.0.0.1:8080, KEEL_RESTATE_ADMIN_URL or http://127.0.0.1:9070)

Environment: KEEL_PRICES and KEEL_DAILY_USD (prices, a daily money pool), KEEL_SANDBOX (marked or
all: which tools run in the isolated-vm sandbox), KEEL_ENGINE (local or restate).

A run whose process dies is interrupted; \`keel resume\` goes on from its last checkpoint. An unsafe
tool call that was in flight then needs a decision (\`keel resolve\`): Keel never repeats it blindly.
A call that an approval rule stops waits for \`keel approve\` or \`keel reject\`.

Exit codes: 0 completed, 1 failed (or cancelled, or could not resume), 2 usage error,
3 waiting for a decision, 4 stopped at a budget limit, 130 interrupted with Ctrl-C.`;

async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  switch (name) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      out.write(`${USAGE}\n`);
      return name === undefined ? 2 : 0;
    case '--version':
    case 'version':
      out.write(`${KEEL_VERSION}\n`);
      return 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) throw new UsageError(`Unknown command "${name}".`);
  return command.run(rest);
}

// Output piped into a command that stopped reading (`keel runs | head`) ends keel quietly.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

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
