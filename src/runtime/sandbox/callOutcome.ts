import type { Tool } from '../agent/define';
import { formatBytes } from '../format';
import { ToolSandboxError, withCutNote } from './sandboxError';
import type { CallOutcome } from './workerProtocol';

/**
 * The tool's result from how a call in a sandbox ended (an isolate worker or a tool's own
 * process), or the error to throw: the tool's own (its message already capped where it was
 * thrown), or a ToolSandboxError. A result leaves a sandbox as the string the tool returned or as
 * JSON text, measured against `maxOutputBytes` before it left. `networkErrors` are the errors of
 * requests made for the call, by message, so that one the tool rethrows keeps its code (for retries).
 */
export function settleOutcome(outcome: CallOutcome, tool: Tool, networkErrors?: ReadonlyMap<string, Error>): unknown {
  switch (outcome.kind) {
    case 'text':
      return outcome.text;
    case 'json':
      return JSON.parse(outcome.text) as unknown;
    case 'none':
      return undefined;
    case 'over':
      throw new ToolSandboxError(
        `it returned ${outcome.atLeast ? 'at least ' : ''}${formatBytes(outcome.bytes)} of output, more than its limit of ${formatBytes(tool.maxOutputBytes)} (maxOutputBytes), so the sandbox refused it`,
        'output',
      );
    case 'unclonable':
      throw new ToolSandboxError(`it returned a value that cannot leave the sandbox (${outcome.message}): return plain data`, 'output');
    case 'stopped':
      throw new ToolSandboxError(outcome.message, outcome.stop);
    case 'threw': {
      const message = withCutNote(outcome.message, outcome.cut);
      const network = networkErrors?.get(message);
      if (network) throw network;
      const error = new Error(message);
      if (outcome.name !== undefined) error.name = outcome.name;
      if (outcome.code !== undefined) Object.assign(error, { code: outcome.code });
      throw error;
    }
  }
}
