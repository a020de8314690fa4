import vm from 'node:vm';
import { KeelError, describeError } from '../errors';

/** What an expression evaluated to: JSON when it is JSON data, else a description such as `undefined`. */
export type Evaluated = { readonly json: string } | { readonly text: string };

export interface EvaluateOptions {
  /** Wall time the expression may run (and then the showing of its value). Default 1 s. */
  readonly timeoutMs?: number;
}

const TIMEOUT_MS = 1000;

const MAX_EXPRESSION = 10_000;
const MAX_RESULT = 1_000_000;

/** Sandbox code: freezes a value and everything it holds. */
const FREEZE = `const freeze = (value) => {
    if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
      Object.freeze(value);
      for (const key of Object.keys(value)) freeze(value[key]);
    }
    return value;
  };`;

// Runs inside the sandbox: parses the scope from JSON text there, so every object the expression
// sees is the sandbox's own (none of this process's prototypes or functions is reachable), freezes
// it all, and makes each name a read-only global.
const PRELUDE = `'use strict';
(() => {
  const scope = JSON.parse(globalThis.__keelScope);
  delete globalThis.__keelScope;
  ${FREEZE}
  for (const [name, value] of Object.entries(scope)) {
    Object.defineProperty(globalThis, name, { value: freeze(value), writable: false, enumerable: true, configurable: false });
  }
  Object.defineProperty(globalThis, '__keelDescribe', {
    value: (value) => {
      if (value === undefined) return 'Tundefined';
      if (typeof value === 'function') return 'Tfunction ' + (value.name || '(anonymous)');
      if (typeof value === 'symbol' || typeof value === 'bigint') return 'T' + String(value);
      if (value instanceof Promise) {
        value.then(undefined, () => undefined);
        return 'Ta promise (expressions are not awaited)';
      }
      const seen = new WeakSet();
      return 'J' + JSON.stringify(value, (key, item) => {
        if (typeof item === 'bigint') return String(item);
        if (typeof item === 'function' || typeof item === 'symbol') return undefined;
        if (item !== null && typeof item === 'object') {
          if (seen.has(item)) return '[Circular]';
          seen.add(item);
        }
        return item;
      });
    },
  });
})();`;

/**
 * Evaluates a JavaScript expression over `scope` (JSON data, such as a replayed step's state), for
 * the Debug Console (breakpoint conditions are a Condition). Read-only and sandboxed: the expression runs in a
 * fresh node:vm context that holds a frozen copy of the scope and JavaScript's built-ins, nothing
 * else (no require, process, import or timers); it cannot compile code from strings (eval and
 * Function throw), and it is stopped after `timeoutMs`. Assignments to the state throw. node:vm
 * is not a security boundary against hostile code: this keeps a person's expressions from
 * changing or reaching anything, it does not contain an attacker.
 */
export function evaluateExpression(expression: string, scope: Readonly<Record<string, unknown>>, options: EvaluateOptions = {}): Evaluated {
  const context = sandbox(expression, scope, options);
  const described = run(context, '__keelDescribe(globalThis.__keelResult)', options);
  if (typeof described !== 'string') throw new KeelError('The expression could not be shown.');
  const text = described.slice(1);
  if (text.length > MAX_RESULT) throw new KeelError(`The result is larger than ${MAX_RESULT} characters.`);
  return described.startsWith('J') ? { json: text } : { text };
}

/** What a condition made of one step's data in a batch: whether it holds, or what it threw. */
export type ConditionResult = boolean | { readonly error: string };

/**
 * A breakpoint condition: an expression over a step's data, tested at step after step. It is
 * compiled once into a sandbox of its own, as evaluateExpression's (built-ins only, no code from
 * strings, a time limit on every test); each test hands it a frozen copy of one step's data, the
 * names given here as its parameters (a name the data lacks is undefined).
 */
export class Condition {
  private static readonly test = new vm.Script('__keelTest()');
  private static readonly testEach = new vm.Script('__keelTestEach()');
  private readonly context: vm.Context;

  constructor(
    readonly source: string,
    names: readonly string[],
    private readonly options: EvaluateOptions = {},
  ) {
    if (source.length > MAX_EXPRESSION) throw new KeelError(`The condition is longer than ${MAX_EXPRESSION} characters.`);
    this.context = newContext();
    let script: vm.Script;
    try {
      script = new vm.Script(`(function (${names.join(', ')}) {\n'use strict';\nreturn (\n${source}\n);\n})`, { filename: 'condition' });
    } catch (error) {
      throw new KeelError(describeError(error));
    }
    // Timed too: a condition can close the parenthesis and run code where the function is defined.
    const compiled = runScript(script, this.context, options);
    if (typeof compiled !== 'function') throw new KeelError('The condition must be one expression.');
    (this.context as Record<string, unknown>)['__keelCondition'] = compiled;
    new vm.Script(`'use strict';
(() => {
  const condition = globalThis.__keelCondition;
  delete globalThis.__keelCondition;
  const names = ${JSON.stringify(names)};
  ${FREEZE}
  const test = (scope) => Boolean(condition(...names.map((name) => freeze(scope[name]))));
  Object.defineProperty(globalThis, '__keelTest', { value: () => test(JSON.parse(globalThis.__keelScope)) });
  Object.defineProperty(globalThis, '__keelTestEach', {
    value: () =>
      JSON.stringify(
        JSON.parse(globalThis.__keelScopes).map((scope) => {
          try {
            return test(scope);
          } catch (error) {
            return { error: error instanceof Error ? error.name + ': ' + error.message : 'threw ' + String(error) };
          }
        }),
      ),
  });
})();`).runInContext(this.context);
  }

  /** Whether the condition holds over `scope` (JSON data); throws a KeelError with what went wrong. */
  holds(scope: Readonly<Record<string, unknown>>): boolean {
    // Only a string crosses into the sandbox.
    (this.context as Record<string, unknown>)['__keelScope'] = JSON.stringify(scope);
    return runScript(Condition.test, this.context, this.options) === true;
  }

  /**
   * The condition over each of `scopes` in one go, under one time limit for them all: a time
   * limit costs a watchdog thread each time the sandbox is entered, far more than a test. Throws
   * a KeelError when the batch as a whole fails (runs out of time), which says nothing of which
   * scope was at fault: test those one by one with holds().
   */
  holdsEach(scopes: readonly Readonly<Record<string, unknown>>[]): ConditionResult[] {
    (this.context as Record<string, unknown>)['__keelScopes'] = JSON.stringify(scopes);
    const results = runScript(Condition.testEach, this.context, this.options);
    if (typeof results !== 'string') throw new KeelError('The condition gave no results.');
    return JSON.parse(results) as ConditionResult[];
  }
}

/** A context with JavaScript's built-ins and nothing else, where code cannot be compiled from strings. */
function newContext(): vm.Context {
  return vm.createContext(Object.create(null) as object, {
    name: 'keel-replay',
    codeGeneration: { strings: false, wasm: false },
    microtaskMode: 'afterEvaluate',
  });
}

function sandbox(expression: string, scope: Readonly<Record<string, unknown>>, options: EvaluateOptions): vm.Context {
  if (expression.length > MAX_EXPRESSION) throw new KeelError(`The expression is longer than ${MAX_EXPRESSION} characters.`);
  const context = newContext();
  // Only a string crosses into the sandbox. The prelude is this module's code, linear in the
  // size of the scope: it runs without a time limit, which is the expression's.
  (context as Record<string, unknown>)['__keelScope'] = JSON.stringify(scope);
  new vm.Script(PRELUDE).runInContext(context);
  let script: vm.Script;
  try {
    script = new vm.Script(`'use strict';\n${expression}`, { filename: 'expression' });
  } catch (error) {
    throw new KeelError(describeError(error));
  }
  // The value stays a reference the host never looks into; the sandbox describes it itself.
  (context as Record<string, unknown>)['__keelResult'] = runScript(script, context, options);
  return context;
}

function run(context: vm.Context, code: string, options: EvaluateOptions): unknown {
  return runScript(new vm.Script(code), context, options);
}

function runScript(script: vm.Script, context: vm.Context, options: EvaluateOptions): unknown {
  try {
    return script.runInContext(context, { timeout: options.timeoutMs ?? TIMEOUT_MS, breakOnSigint: false });
  } catch (error) {
    throw new KeelError(errorText(error, context, options));
  }
}

/**
 * What went wrong, as text. Errors of this process (a timeout, a syntax error) are read here;
 * whatever the expression threw belongs to the sandbox, which describes it itself, under the same
 * time limit, so a hostile getter cannot run unbounded here.
 */
function errorText(error: unknown, context: vm.Context, options: EvaluateOptions): string {
  if (error instanceof Error) return error.message;
  (context as Record<string, unknown>)['__keelError'] = error;
  try {
    const text: unknown = new vm.Script(
      `(() => { const e = globalThis.__keelError; try { return e instanceof Error ? e.name + ': ' + e.message : 'threw ' + __keelDescribe(e).slice(1); } catch { return 'threw a value that cannot be shown'; } })()`,
    ).runInContext(context, { timeout: options.timeoutMs ?? TIMEOUT_MS });
    return typeof text === 'string' ? text : 'The expression threw.';
  } catch {
    return 'The expression threw a value that cannot be shown.';
  }
}
