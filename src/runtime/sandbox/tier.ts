/**
 * Where a sandboxed tool runs, matched to what it needs and how far it is trusted (docs/sandbox.md):
 * - `isolate`: a V8 isolate (isolated-vm) in a worker process, with JavaScript's built-ins only;
 *   `run` is moved in as its own source text. The cheapest per call.
 * - `process`: a Node process of its own that loads the tool's module, with Node and npm packages;
 *   it keeps the tool's memory, crashes and CPU out of the runtime process, but is no security
 *   boundary (the process has the user's file system and network).
 * - `os`: the same Node process inside the operating system's sandbox (bubblewrap on Linux,
 *   sandbox-exec on macOS): it reads only the allowed paths, writes only where granted, and
 *   reaches the network only through a proxy that enforces the egress allow-list.
 */
export type SandboxTier = 'isolate' | 'process' | 'os';
export const SANDBOX_TIERS: readonly SandboxTier[] = ['isolate', 'process', 'os'];
