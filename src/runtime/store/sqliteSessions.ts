import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PROCESS_OWNER, isOwnerAlive } from '../agent/owner';

/**
 * Who has a Keel SQLite database open, and whether it was last closed cleanly: what decides if
 * opening it has to check its integrity (a check that reads the whole file).
 *
 * Next to `keel.db` lies `keel.db-sessions/`: one file per open connection, named after the
 * process that holds it, removed when that connection closes (or its process exits normally), and
 * `closed`, the size and modification time of the file as the last connection left it. The file
 * needs checking when a process that had it open ended without closing it (its file is still
 * there, its process gone), or when nobody has it open and the file is not as it was left (changed
 * by something other than Keel, or never closed by Keel here).
 */

/** Why a database is checked when it is opened; undefined when nothing says it could be damaged. */
export type CheckReason = string | undefined;

/** One open connection's entry in the sessions folder. */
export interface SqliteSession {
  /** Call once the connection has closed: removes its entry, and seals the file when no other process has it open. */
  close(): void;
  /** Removes the entry of a connection that could not be opened after all. */
  abandon(): void;
}

/** What the sessions folder says of a database. */
export interface SessionsState {
  /** Processes that have it open now (this one included when it has). */
  readonly live: readonly string[];
  /** Processes that had it open and ended without closing it. */
  readonly dead: readonly string[];
  /** How the last connection left the file, when one did. */
  readonly sealed: { readonly size: number; readonly mtimeNs: string } | undefined;
}

const SEAL = 'closed';
let opened = 0;

export function sessionsFolder(path: string): string {
  return `${path}-sessions`;
}

/** Reads the sessions folder of a database (empty when it has none). */
export function readSessions(path: string): SessionsState {
  const folder = sessionsFolder(path);
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return { live: [], dead: [], sealed: undefined };
  }
  const live: string[] = [];
  const dead: string[] = [];
  for (const name of names) {
    const owner = ownerOf(name);
    // The seal, a seal being written, or a file that is not a session's.
    if (owner === undefined) continue;
    (isOwnerAlive(owner) ? live : dead).push(name);
  }
  return { live, dead, sealed: readSeal(folder) };
}

/** The process (`host/pid/token`) a session file belongs to; undefined for any other file. */
export function ownerOf(name: string): string | undefined {
  // encodeURIComponent never leaves a '+' in the owner, so the last one starts the counter.
  const end = name.lastIndexOf('+');
  if (end === -1) return undefined;
  try {
    const owner = decodeURIComponent(name.slice(0, end));
    return owner.split('/').length === 3 ? owner : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why the database at `path` must be checked before it is used, or undefined when it was left
 * cleanly: no process ended with it open, and nobody has touched the file since Keel closed it.
 */
export function checkReason(path: string, state: SessionsState = readSessions(path)): CheckReason {
  if (state.dead.length > 0) {
    const owners = state.dead.map((name) => (ownerOf(name) ?? '').split('/').slice(0, 2).join(' pid '));
    return `a process that had it open ended without closing it (${owners.join(', ')})`;
  }
  if (state.live.length > 0) return undefined;
  // The last connection to close folds the write-ahead log into the file and removes it.
  if ((fileStamp(`${path}-wal`)?.size ?? 0) > 0) return 'its write-ahead log was left behind by a process that did not close it';
  if (!state.sealed) return 'Keel has not closed it here before';
  const now = fileStamp(path);
  if (!now) return undefined;
  if (now.size !== state.sealed.size || now.mtimeNs !== state.sealed.mtimeNs) return 'it changed while no Keel process had it open';
  return undefined;
}

/**
 * Records that this process has the database open. Failing to write the folder (a read-only
 * location) is not an error: the database is then checked at every open, as it cannot be told.
 */
export function beginSession(path: string, checked: boolean, state: SessionsState): SqliteSession | undefined {
  const folder = sessionsFolder(path);
  const name = `${encodeURIComponent(PROCESS_OWNER)}+${++opened}`;
  try {
    mkdirSync(folder, { recursive: true });
    const fd = openSync(join(folder, name), 'wx');
    closeSync(fd);
    // Files of processes that ended with it open are done with once the file has been checked.
    if (checked) for (const dead of state.dead) unlinkQuietly(join(folder, dead));
  } catch {
    return undefined;
  }
  return {
    close: () => {
      const others = readSessions(path).live.filter((other) => other !== name);
      // The last connection out says how it left the file; while others have it open, they will.
      if (others.length === 0) {
        const stamp = fileStamp(path);
        if (stamp) writeSeal(folder, stamp);
      }
      unlinkQuietly(join(folder, name));
    },
    abandon: () => unlinkQuietly(join(folder, name)),
  };
}

function fileStamp(path: string): { size: number; mtimeNs: string } | undefined {
  try {
    const stat = statSync(path, { bigint: true });
    return { size: Number(stat.size), mtimeNs: stat.mtimeNs.toString() };
  } catch {
    return undefined;
  }
}

function readSeal(folder: string): SessionsState['sealed'] {
  try {
    const parsed = JSON.parse(readFileSync(join(folder, SEAL), 'utf8')) as { size?: unknown; mtimeNs?: unknown };
    return typeof parsed.size === 'number' && typeof parsed.mtimeNs === 'string' ? { size: parsed.size, mtimeNs: parsed.mtimeNs } : undefined;
  } catch {
    return undefined;
  }
}

function writeSeal(folder: string, stamp: { size: number; mtimeNs: string }): void {
  const temporary = join(folder, `${SEAL}.${process.pid}.tmp`);
  try {
    const fd = openSync(temporary, 'w');
    try {
      writeSync(fd, JSON.stringify(stamp));
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, join(folder, SEAL));
  } catch {
    unlinkQuietly(temporary);
  }
}

function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already gone: another process cleaned it up.
  }
}
