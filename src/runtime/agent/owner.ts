import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

const token = randomBytes(6).toString('hex');

/** Restate's executions own the runs they execute as `restate/<root run id>/<attempt>`. */
export const RESTATE_OWNER_PREFIX = 'restate/';

/** This process as the owner of the runs it executes: `host/pid/token`. */
export const PROCESS_OWNER = `${hostname()}/${process.pid}/${token}`;

/**
 * Whether the process that owns a run may still be running it. A process on another host cannot
 * be checked from here and is taken to be alive; so is Restate (`restate/...`), which continues
 * the runs it executes by itself.
 */
export function isOwnerAlive(owner: string): boolean {
  if (owner === PROCESS_OWNER || owner.startsWith(RESTATE_OWNER_PREFIX)) return true;
  const [host, pidText] = owner.split('/');
  const pid = Number(pidText);
  if (host !== hostname()) return true;
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/** A killed process that nobody has reaped yet still answers kill(pid, 0); on Linux, /proc tells. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}
