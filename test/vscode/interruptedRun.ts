import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Real interrupted runs for the tests in VS Code: an agent whose tool can be held mid-call, and
 * the CLI running it killed with SIGKILL while it is held. Plain Node: the integration tests (in
 * the extension host) and the UI tests (in the runner) both use it.
 */

export type Effect = 'idempotent' | 'unsafe';

export interface GatedAgent {
  /** The agent file, `<name>.agent.ts` in the workspace; the agent is called `<name>`. */
  readonly file: string;
  /** The idempotency keys the tool was called with, in order. */
  calls(): string[];
  /** From now on the tool waits when it is called. */
  close(): void;
  /** The tool goes on. */
  open(): void;
  /** Writes the agent again with other instructions (so that a run's journal no longer matches it). */
  rewrite(instructions: string): void;
  /** Removes the agent and its files. */
  remove(): void;
}

/** What the tool logs as it starts; the CLI prints it as `log: …`. */
export const TOOL_STARTED = 'slow step started';

/**
 * An agent with one tool, `slow_step`, that records the idempotency key of every call in
 * `<name>.calls`, logs TOOL_STARTED, and then waits for as long as the file `<name>.gate` exists:
 * slow exactly while the test wants it to be. Its scripted model calls the tool once, then answers
 * "Finished.".
 */
export function gatedAgent(workspace: string, name: string, effect: Effect): GatedAgent {
  const file = join(workspace, `${name}.agent.ts`);
  const calls = join(workspace, `${name}.calls`);
  const gate = join(workspace, `${name}.gate`);
  const write = (instructions: string) =>
    writeFileSync(
      file,
      `import { appendFileSync, existsSync } from 'node:fs';
import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';

const slowStep = defineTool({
  name: 'slow_step',
  description: 'Waits while its gate file exists.',
  args: z.object({}),
  effect: '${effect}',
  run: async (_args, ctx) => {
    appendFileSync(${JSON.stringify(calls)}, ctx.idempotencyKey + '\\n');
    ctx.log(${JSON.stringify(TOOL_STARTED)});
    while (existsSync(${JSON.stringify(gate)})) await new Promise((resolve) => setTimeout(resolve, 50));
    return 'slept';
  },
});

export default defineAgent({
  name: '${name}',
  instructions: ${JSON.stringify(instructions)},
  model: scriptedModel([{ toolCalls: [{ name: 'slow_step' }] }, 'Finished.']),
  tools: [slowStep],
});
`,
    );
  write('Take the slow step.');
  return {
    file,
    calls: () => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : []),
    close: () => writeFileSync(gate, ''),
    open: () => rmSync(gate, { force: true }),
    rewrite: write,
    remove: () => {
      for (const path of [file, calls, gate]) rmSync(path, { force: true });
    },
  };
}

/**
 * `node <keel.js> run <agent> --input go` in the workspace (recording in its .keel/keel.db), as a
 * person would from a terminal, killed with SIGKILL once the tool has started. The agent's gate
 * must be closed. Resolves with the run's id.
 */
export function killCliMidTool(keelJs: string, workspace: string, agent: GatedAgent): Promise<string> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env['ELECTRON_RUN_AS_NODE'];
    const args = [keelJs, 'run', agent.file, '--input', 'go', '--db', join(workspace, '.keel', 'keel.db')];
    const child = spawn('node', args, { cwd: workspace, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let killed = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the CLI's tool did not start within 30 s:\n${output}`));
    }, 30_000);
    const watch = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (!killed && output.includes(`log: ${TOOL_STARTED}`)) {
        killed = true;
        child.kill('SIGKILL');
      }
    };
    child.stdout.on('data', watch);
    child.stderr.on('data', watch);
    child.once('error', (error) => reject(new Error(`could not start node for the CLI: ${error.message}`)));
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const runId = /\brun_[0-9a-z]+/.exec(output)?.[0];
      if (signal !== 'SIGKILL' || !runId) reject(new Error(`keel run ended (${signal ?? `exit code ${code}`}) before it could be killed:\n${output}`));
      else resolve(runId);
    });
  });
}
