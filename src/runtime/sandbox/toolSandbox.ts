import type { Tool, ToolContext } from '../agent/define';
import type { SandboxGrant } from './grant';

/** One tool call to run in a sandbox. */
export interface SandboxCall {
  readonly tool: Tool;
  /** What the call may use: the tool's own grant, or the defaults when every tool is sandboxed. */
  readonly grant: SandboxGrant;
  /** Already checked against the tool's schema; the sandbox copies them in, never passing references. */
  readonly args: unknown;
  /** The host's context: the call's identity, its log and the run's abort signal. */
  readonly ctx: ToolContext;
}

/**
 * Where sandboxed tool code runs: an edge with swappable implementations, as the checkpoint store
 * and the model are. The runtime hands a call over and gets the tool's result, or an error: the
 * tool's own, or a ToolSandboxError when the sandbox stopped it (CPU, memory, time, egress) or
 * could not run it. Whatever the tool does, the process that runs the sandbox keeps serving.
 */
export interface ToolSandbox {
  run(call: SandboxCall): Promise<unknown>;
  /** Frees what the sandbox holds (warm isolates); calls still running finish first. */
  close(): Promise<void>;
}
