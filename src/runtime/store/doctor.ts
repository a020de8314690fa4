import Database from 'better-sqlite3';
import { existsSync, statSync } from 'node:fs';
import { isOwnerAlive } from '../agent/owner';
import { describeError } from '../errors';
import { formatBytes } from '../format';
import { SQLITE_MIGRATIONS } from './sqliteMigrations';
import { KEEL_APPLICATION_ID } from './sqliteSchema';
import { checkReason, ownerOf, readSessions } from './sqliteSessions';

/** One thing `keel doctor` found, said in a sentence; `problem` findings make it exit 1. */
export interface Finding {
  readonly level: 'ok' | 'note' | 'problem';
  readonly text: string;
}

/**
 * Examines an SQLite run database without changing it (`keel doctor`): the whole file's
 * integrity, whether it is Keel's and which schema it has, its write-ahead log and who has it
 * open, and what the runs in it left unfinished. Works on a file Keel refuses to open.
 */
export function examineSqliteDatabase(path: string, migrations: number = SQLITE_MIGRATIONS.length): Finding[] {
  if (!existsSync(path)) return [{ level: 'note', text: `There is no database at ${path} yet; the first run creates it.` }];
  const findings: Finding[] = [];
  const size = statSync(path).size;
  findings.push(...sessionFindings(path));
  let db: Database.Database;
  try {
    // A read-only connection leaves a write-ahead log and its index behind, so one is used only
    // when they are there already; otherwise the connection is kept from writing by query_only.
    const readonly = existsSync(`${path}-wal`);
    db = new Database(path, { readonly, fileMustExist: true });
    if (!readonly) db.pragma('query_only = ON');
  } catch (error) {
    findings.push({ level: 'problem', text: `SQLite cannot open ${path} (${describeError(error)}).` });
    return findings;
  }
  try {
    const schema = schemaFindings(db, path, migrations);
    findings.push(...schema.findings);
    findings.push(...integrityFindings(db, path, size));
    findings.push(...walFindings(db, path));
    if (schema.readable) findings.push(...unfinishedFindings(db));
  } catch (error) {
    findings.push({ level: 'problem', text: `Reading ${path} failed (${describeError(error)}); it is likely damaged.` });
  } finally {
    db.close();
  }
  return findings;
}

function schemaFindings(db: Database.Database, path: string, latest: number): { findings: Finding[]; readable: boolean } {
  const applicationId = db.pragma('application_id', { simple: true }) as number;
  const version = db.pragma('user_version', { simple: true }) as number;
  const tables = (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n;
  if (applicationId !== KEEL_APPLICATION_ID) {
    if (applicationId === 0 && tables === 0) return { findings: [{ level: 'note', text: `${path} is empty: Keel sets it up when it first opens it.` }], readable: false };
    return { findings: [{ level: 'problem', text: `${path} is an SQLite database that Keel did not create (application id ${applicationId}).` }], readable: false };
  }
  if (version > latest) {
    return {
      findings: [{ level: 'problem', text: `Its schema is version ${version}, written by a newer Keel; this Keel understands up to ${latest}, so upgrade keel-agents to use it.` }],
      readable: false,
    };
  }
  if (version < latest) {
    return {
      findings: [{ level: 'note', text: `Its schema is version ${version}; the next command that opens it upgrades it to version ${latest}.` }],
      readable: false,
    };
  }
  return { findings: [{ level: 'ok', text: `It is a Keel database with the current schema (version ${version}).` }], readable: true };
}

const DAMAGED_ADVICE =
  'Keel refuses to write to it after a crash; restore it from a backup, or move it aside to start a new one ' +
  '(sqlite3 .recover can often save what it still holds).';

function integrityFindings(db: Database.Database, path: string, size: number): Finding[] {
  let verdicts: string[];
  try {
    verdicts = (db.pragma('integrity_check(20)') as { integrity_check: string }[]).map((row) => row.integrity_check);
  } catch (error) {
    return [{ level: 'problem', text: `SQLite could not finish reading ${path} (${describeError(error)}): it is damaged. ${DAMAGED_ADVICE}` }];
  }
  if (verdicts.length === 1 && verdicts[0] === 'ok') {
    const keys = db.pragma('foreign_key_check') as unknown[];
    const findings: Finding[] = [{ level: 'ok', text: `SQLite read all of its ${formatBytes(size)} and found every page and index intact.` }];
    if (keys.length > 0) {
      findings.push({ level: 'problem', text: `${keys.length} row(s) point at records that no longer exist (foreign key check), such as steps of a deleted run.` });
    }
    return findings;
  }
  const shown = verdicts.slice(0, 3).map((verdict) => verdict.replace(/^\*\*\* in database main \*\*\*\s*/, '').replace(/\s+/g, ' '));
  return [
    {
      level: 'problem',
      text:
        `SQLite found ${path} damaged (${verdicts.length >= 20 ? '20 or more problems' : `${verdicts.length} problem(s)`}, such as: ${shown.join('; ')}). ` +
        DAMAGED_ADVICE,
    },
  ];
}

function walFindings(db: Database.Database, path: string): Finding[] {
  const mode = String(db.pragma('journal_mode', { simple: true }));
  const wal = existsSync(`${path}-wal`) ? statSync(`${path}-wal`).size : 0;
  if (mode !== 'wal') return [{ level: 'note', text: `It is in ${mode} journal mode; Keel switches it to write-ahead logging when it opens it.` }];
  if (wal === 0) return [{ level: 'ok', text: 'Its write-ahead log is empty: every change is in the file itself.' }];
  return [{ level: 'note', text: `Its write-ahead log holds ${formatBytes(wal)} of changes not yet folded into the file; the last process to close it folds them in.` }];
}

function sessionFindings(path: string): Finding[] {
  const state = readSessions(path);
  const findings: Finding[] = [];
  const describe = (name: string) => {
    const [host, pid] = (ownerOf(name) ?? '').split('/');
    return `process ${pid ?? '?'} on ${host ?? '?'}`;
  };
  if (state.live.length > 0) findings.push({ level: 'note', text: `It is open in ${state.live.map(describe).join(', ')}.` });
  if (state.dead.length > 0) {
    findings.push({
      level: 'note',
      text:
        `${state.dead.map(describe).join(', ')} ended without closing it (a crash or a kill); ` +
        'the next command to open it checks it in full first, as this one does now.',
    });
  } else if (state.live.length === 0) {
    const reason = checkReason(path, state);
    findings.push(
      reason === undefined
        ? { level: 'ok', text: 'It was closed cleanly, and has not changed since, so opening it does not read it in full.' }
        : { level: 'note', text: `The next command to open it checks it in full first: ${reason}.` },
    );
  }
  return findings;
}

function unfinishedFindings(db: Database.Database): Finding[] {
  const findings: Finding[] = [];
  const running = db.prepare("SELECT id, owner FROM runs WHERE state = 'running'").all() as { id: string; owner: string | null }[];
  const orphaned = running.filter((run) => run.owner === null || !isOwnerAlive(run.owner));
  if (orphaned.length > 0) {
    findings.push({
      level: 'note',
      text:
        `${orphaned.length} run(s) are marked running but their process is gone (${orphaned.slice(0, 3).map((run) => run.id).join(', ')}${orphaned.length > 3 ? ', …' : ''}); ` +
        'the next `keel runs` marks them interrupted, and `keel resume` continues them.',
    });
  }
  const steps = db
    .prepare(
      `SELECT s.run_id AS runId, s.seq AS seq, s.name AS name, r.state AS state FROM steps s JOIN runs r ON r.id = s.run_id
       WHERE s.status = 'in_progress' AND r.state != 'running'`,
    )
    .all() as { runId: string; seq: number; name: string; state: string }[];
  if (steps.length > 0) {
    const [first] = steps;
    findings.push({
      level: 'note',
      text:
        `${steps.length} step(s) were in progress when their run stopped (such as ${first?.name} at step ${first?.seq} of run ${first?.runId}, now ${first?.state}); ` +
        'resuming the run settles them: a safe step runs again, an unsafe call in flight waits for `keel resolve`.',
    });
  }
  const stale = db
    .prepare(
      `SELECT count(*) AS n FROM approvals a JOIN runs r ON r.id = a.run_id
       WHERE a.status = 'pending' AND r.state IN ('completed', 'failed', 'cancelled', 'budget_exceeded')`,
    )
    .get() as { n: number };
  if (stale.n > 0) findings.push({ level: 'problem', text: `${stale.n} approval(s) are still pending for runs that have ended; nothing will act on them.` });
  if (findings.length === 0) findings.push({ level: 'ok', text: 'No run was left unfinished by a process that is gone.' });
  return findings;
}
