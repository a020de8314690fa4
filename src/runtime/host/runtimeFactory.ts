import type { Runtime, RuntimeOptions } from '../agent/runtime';

/** What a runtime built by the host may have of its own. */
export type RuntimeOverrides = Partial<Pick<RuntimeOptions, 'store' | 'pools' | 'inspector' | 'now' | 'random' | 'sleep' | 'steps' | 'owner' | 'isOwnerAlive' | 'mcp'>>;

/**
 * Builds runtimes with a host's configuration: how engines, golden runs and the debugger get
 * theirs. Apart from the host, which builds the engines that take one.
 */
export type RuntimeFactory = (overrides?: RuntimeOverrides) => Runtime;
