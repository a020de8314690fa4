import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, lstatSync, readlinkSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { ToolSandboxError } from './sandboxError';

/** The OS sandbox of this machine. */
export interface OsSandbox {
  readonly kind: 'bubblewrap';
  readonly command: string;
}

/** What a tool in the OS tier may see of the file system. */
export interface SandboxMounts {
  /** Readable (besides the system's libraries). */
  readonly read: readonly string[];
  /** Readable and writable. */
  readonly write: readonly string[];
  /** The egress proxy's Unix socket, bound into the sandbox at EGRESS_SOCKET. */
  readonly egressSocket: string;
  /** The working directory inside. */
  readonly cwd: string;
}

/** Where the egress proxy's socket is inside the sandbox. */
export const EGRESS_SOCKET = '/run/keel/egress.sock';
/** The loopback port inside the sandbox's own network namespace where the tool's process relays to the proxy. */
export const EGRESS_PORT = 3128;

/** Top-level links and folders of the system's programs and libraries, bound read-only (merged /usr or not). */
const SYSTEM_ROOTS = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
/** What Node and TLS need of /etc; nothing else there is visible. */
const SYSTEM_ETC = ['/etc/ld.so.cache', '/etc/ssl', '/etc/ca-certificates', '/etc/alternatives', '/etc/localtime', '/etc/passwd', '/etc/group', '/etc/hosts', '/etc/nsswitch.conf'];

let probed: Promise<OsSandbox> | undefined;

/**
 * This machine's OS sandbox, checked once by running it: bubblewrap on Linux. Anywhere else, or
 * when it is missing or cannot create namespaces, a ToolSandboxError saying what to install: a
 * tool that asks for the OS tier never runs without it.
 */
export function osSandbox(): Promise<OsSandbox> {
  probed ??= probe().catch((error: unknown) => {
    probed = undefined;
    throw error;
  });
  return probed;
}

async function probe(): Promise<OsSandbox> {
  if (process.platform !== 'linux') {
    throw new ToolSandboxError(
      `it asks for the os sandbox tier, which Keel provides with bubblewrap on Linux and which this ${process.platform} machine lacks, so it was not run: use the isolate or process tier here`,
      'unavailable',
    );
  }
  const command = onPath('bwrap');
  if (!command) {
    throw new ToolSandboxError(
      'it asks for the os sandbox tier, which needs bubblewrap: install it (apt-get install bubblewrap, or dnf install bubblewrap) and try again; it was not run',
      'unavailable',
    );
  }
  const failure = await new Promise<string | undefined>((resolve) => {
    const check = spawn(command, ['--unshare-all', '--die-with-parent', '--ro-bind', '/', '/', 'true'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    check.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    check.on('error', (error) => resolve(error.message));
    check.on('close', (code) => resolve(code === 0 ? undefined : stderr.trim() || `it exited with code ${String(code)}`));
  });
  if (failure !== undefined) {
    throw new ToolSandboxError(
      `it asks for the os sandbox tier, but bubblewrap cannot create its namespaces here (${failure}): allow unprivileged user namespaces, or run it where they are allowed; it was not run`,
      'unavailable',
    );
  }
  return { kind: 'bubblewrap', command };
}

function onPath(name: string): string | undefined {
  for (const folder of (process.env['PATH'] ?? '').split(delimiter)) {
    if (folder === '') continue;
    const candidate = join(folder, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * bubblewrap's arguments for a tool process: new namespaces of every kind (its own network, with
 * loopback only; its own process tree, ended with the runtime), the system's programs and
 * libraries, Node and the mounts read-only, the writable mounts, an empty /tmp, and the egress
 * proxy's socket. Everything else of the file system (the home folder, keys, other projects)
 * does not exist inside.
 */
export function bubblewrapArgs(mounts: SandboxMounts): string[] {
  const args = ['--unshare-all', '--die-with-parent', '--new-session', '--cap-drop', 'ALL'];
  for (const root of SYSTEM_ROOTS) {
    if (!existsSync(root)) continue;
    const stat = lstatSync(root);
    if (stat.isSymbolicLink()) args.push('--symlink', readlinkSync(root), root);
    else args.push('--ro-bind', root, root);
  }
  for (const path of SYSTEM_ETC) if (existsSync(path)) args.push('--ro-bind', path, path);
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
  // Parents before children, so that a mount under /tmp (or under another mount) is not hidden.
  const byDepth = (paths: readonly string[]) => [...new Set(paths)].sort((a, b) => a.length - b.length);
  const writable = new Set(mounts.write);
  for (const path of byDepth([...mounts.read, ...mounts.write])) args.push(writable.has(path) ? '--bind' : '--ro-bind', path, path);
  args.push('--dir', dirname(EGRESS_SOCKET), '--bind', mounts.egressSocket, EGRESS_SOCKET, '--chdir', mounts.cwd);
  return args;
}
