import { fileURLToPath } from 'node:url';

/**
 * The file whose code called `boundary` (defineTool): where the process and OS tiers load a tool
 * from, since its `run` cannot travel to another process. For an agent file that is the agent
 * file itself (its imports are bundled into it when it is loaded), for a program that uses the
 * library it is that program's module. Undefined when V8 cannot say (code made by `eval`).
 */
export function callerFile(boundary: (...args: never[]) => unknown): string | undefined {
  const prepare = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  try {
    Error.stackTraceLimit = 1;
    Error.prepareStackTrace = (_error, frames) => frames;
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, boundary);
    const frames = holder.stack as readonly NodeJS.CallSite[] | undefined;
    const file = frames?.[0]?.getFileName() ?? undefined;
    return file?.startsWith('file://') ? fileURLToPath(file) : file;
  } finally {
    Error.prepareStackTrace = prepare;
    Error.stackTraceLimit = limit;
  }
}
