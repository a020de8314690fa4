import type { ToolCallContext } from '../agent/toolContext';
import { EgressPolicy, type EgressRule } from './egress';
import { SANDBOX_TIERS, type SandboxTier } from './tier';


/** Paths a tool in the `os` tier may use, absolute or relative to the file that defines the tool. */
export interface SandboxFiles {
  /** Readable besides the system's libraries, Node and Keel, and the tool's own package. */
  readonly read?: readonly string[];
  /** Readable and writable. Nothing else is writable but a private, empty /tmp. */
  readonly write?: readonly string[];
}

/** What a tool marked `sandbox` may use, as written in defineTool. Everything not granted is denied. */
export interface SandboxConfig {
  /** Where it runs; by default the runtime's default tier (`isolate` unless configured otherwise). */
  readonly tier?: SandboxTier;
  /** Where `ctx.fetch` (and, in the `os` tier, any HTTP client) may go. Default: nowhere. */
  readonly egress?: readonly EgressRule[];
  /**
   * The memory the tool may use, in MB (at least 8). In the isolate tier its heap; in the process
   * and OS tiers its process's V8 heap, the process as a whole being allowed this plus 128 MB.
   * Default 32.
   */
  readonly memoryMb?: number;
  /** CPU time one call may use, in ms. Default 1000. */
  readonly cpuMs?: number;
  /** Wall-clock time one call may take, waiting for the network included, in ms. Default 10000. */
  readonly timeoutMs?: number;
  /** Isolate tier: give the tool WebAssembly (its memory then counts against memoryMb). Default false. */
  readonly wasm?: boolean;
  /** OS tier: the paths it may read and write. */
  readonly files?: SandboxFiles;
  /** Process and OS tiers: the names of the environment variables its process gets. Default none. */
  readonly env?: readonly string[];
}

/** A sandbox grant with every default filled in and its egress allow-list parsed. */
export interface SandboxGrant {
  /** Undefined: the runtime's default tier. */
  readonly tier: SandboxTier | undefined;
  readonly egress: EgressPolicy;
  readonly memoryMb: number;
  readonly cpuMs: number;
  readonly timeoutMs: number;
  readonly wasm: boolean;
  readonly files: { readonly read: readonly string[]; readonly write: readonly string[] };
  readonly env: readonly string[];
}

export const DEFAULT_SANDBOX_GRANT: SandboxGrant = Object.freeze({
  tier: undefined,
  egress: EgressPolicy.NONE,
  memoryMb: 32,
  cpuMs: 1_000,
  timeoutMs: 10_000,
  wasm: false,
  files: Object.freeze({ read: [], write: [] }),
  env: [],
});

const MIN_MEMORY_MB = 8;
const MAX_MEMORY_MB = 4_096;

/** Turns `sandbox: true | {...}` into a grant; throws an Error saying which part is wrong. */
export function sandboxGrant(config: true | SandboxConfig): SandboxGrant {
  if (config === true) return DEFAULT_SANDBOX_GRANT;
  if (typeof config !== 'object' || config === null) {
    throw new Error("`sandbox` must be true or an object such as { egress: ['api.example.com'], memoryMb: 32, cpuMs: 500 }.");
  }
  const number = (key: 'memoryMb' | 'cpuMs' | 'timeoutMs', min: number, max: number): number => {
    const value = config[key] ?? DEFAULT_SANDBOX_GRANT[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new Error(`sandbox.${key} must be a whole number from ${min} to ${max} (got ${JSON.stringify(value)}).`);
    }
    return value;
  };
  const { tier } = config;
  if (tier !== undefined && !SANDBOX_TIERS.includes(tier)) {
    throw new Error(`sandbox.tier must be 'isolate', 'process' or 'os' (got ${JSON.stringify(tier)}).`);
  }
  if (config.wasm !== undefined && typeof config.wasm !== 'boolean') throw new Error('sandbox.wasm must be true or false.');
  if (config.wasm === true && tier !== undefined && tier !== 'isolate') {
    throw new Error(`sandbox.wasm applies to the isolate tier; a tool in the ${tier} tier has Node's WebAssembly.`);
  }
  if (config.files !== undefined && tier !== 'os') throw new Error("sandbox.files applies to the os tier: add tier: 'os'.");
  if (config.env !== undefined && tier !== 'process' && tier !== 'os') throw new Error("sandbox.env applies to the process and os tiers.");
  const files = config.files ?? {};
  let egress: EgressPolicy;
  try {
    egress = EgressPolicy.parse(config.egress ?? []);
  } catch (error) {
    throw new Error(`sandbox.${error instanceof Error ? error.message : String(error)}`);
  }
  return Object.freeze({
    tier,
    egress,
    memoryMb: number('memoryMb', MIN_MEMORY_MB, MAX_MEMORY_MB),
    cpuMs: number('cpuMs', 1, 3_600_000),
    timeoutMs: number('timeoutMs', 1, 3_600_000),
    wasm: config.wasm === true,
    files: Object.freeze({ read: strings(files.read, 'files.read'), write: strings(files.write, 'files.write') }),
    env: strings(config.env, 'env'),
  });
}

function strings(value: readonly string[] | undefined, key: string): readonly string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((entry) => typeof entry !== 'string' || entry.trim() === '')) {
    throw new Error(`sandbox.${key} must be a list of non-empty strings.`);
  }
  return Object.freeze([...value]);
}

/** What `ctx.fetch` takes inside the sandbox: a subset of the Fetch API's RequestInit. */
export interface SandboxRequestInit {
  readonly method?: string;
  /** A plain object or a list of [name, value] pairs. */
  readonly headers?: Readonly<Record<string, string>> | readonly (readonly [string, string])[];
  /** Text only; JSON.stringify objects yourself. */
  readonly body?: string;
  readonly redirect?: 'follow' | 'manual' | 'error';
}

/** What `ctx.fetch` resolves to inside the sandbox: a subset of the Fetch API's Response. */
export interface SandboxResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly url: string;
  readonly redirected: boolean;
  readonly headers: {
    get(name: string): string | null;
    has(name: string): boolean;
    forEach(callback: (value: string, name: string) => void): void;
  };
  text(): Promise<string>;
  json(): Promise<unknown>;
}

export type SandboxFetch = (url: string, init?: SandboxRequestInit) => Promise<SandboxResponse>;

/**
 * The context a sandboxed tool's `run` receives: the call's identity, `log`, and `fetch` mediated
 * by the host and checked against the tool's egress allow-list. `signal` is never aborted inside:
 * a cancelled call is stopped by disposing its isolate. Sub-agents cannot be started from inside.
 */
export interface SandboxToolContext extends ToolCallContext {
  readonly fetch: SandboxFetch;
}
