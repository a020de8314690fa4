import type { Tool } from '../agent/define';
import { ToolSandboxError } from './sandboxError';

/**
 * How a tool's code gets into the sandbox: its `run` function's own source text is the whole
 * script. The agent file was already bundled and compiled from TypeScript by esbuild when it was
 * loaded, so that text is plain JavaScript; esbuild checks here that it stands on its own as one
 * function expression (a method such as `run(args, ctx) { ... }` is taken out of an object
 * literal) and prints it as a script whose value is the function.
 *
 * Nothing else comes along: no imports, no variables of the agent file. That is the point: the
 * code that runs is exactly the code the tool's author wrote inside `run`, and whatever it
 * reaches for outside itself does not exist in the isolate, which the sandbox reports as an error
 * naming the tool and the missing name. Bundling a separate module per tool would let tools use
 * npm packages, but it would also carry code the author never sees into the sandbox, and it would
 * make every sandboxed tool a file of its own.
 */
export interface ToolScript {
  readonly code: string;
  /**
   * Whether evaluating the script only creates the function: true for function and arrow
   * expressions; false for a method taken out of an object literal (a computed name runs code)
   * and for a class.
   */
  readonly pure: boolean;
}

const scripts = new WeakMap<Tool, Promise<ToolScript>>();

export function toolScript(tool: Tool): Promise<ToolScript> {
  let script = scripts.get(tool);
  if (!script) {
    script = makeScript(tool);
    scripts.set(tool, script);
  }
  return script;
}

async function makeScript(tool: Tool): Promise<ToolScript> {
  const source = tool.source;
  if (/\{\s*\[native code\]\s*\}$/.test(source)) {
    throw new ToolSandboxError(
      'its run function is native or bound, so there is no source to move into the sandbox: write run as a plain function in the agent file',
      'code',
    );
  }
  // Esbuild's service, which loaded the agent file, answers in about a millisecond.
  const { transform } = await import('esbuild');
  const candidates = [`(${source}\n)`, `Object.values({${source}\n})[0]`];
  let firstError: unknown;
  for (const [index, candidate] of candidates.entries()) {
    try {
      const { code } = await transform(candidate, { loader: 'js', target: 'esnext', sourcefile: `${tool.name}.sandboxed.js`, logLevel: 'silent' });
      return { code, pure: index === 0 && !/^class\b/.test(source) };
    } catch (error) {
      firstError ??= error;
    }
  }
  throw new ToolSandboxError(`its run function's source cannot stand alone as a script, so it cannot run in the sandbox (${firstLine(firstError)})`, 'code', {
    cause: firstError,
  });
}

function firstLine(error: unknown): string {
  const failure = (error as { errors?: { text?: string }[] } | undefined)?.errors?.[0]?.text;
  return failure ?? (error instanceof Error ? (error.message.split('\n')[0] ?? error.message) : String(error));
}
