/**
 * Opening the SQLite store: what it costs for a 5 MB and a 200 MB database left cleanly (nothing
 * reads the whole file), against the same opens when the file must be checked in full (after a
 * process was killed with it open, or the first time Keel opens it here), which every open cost
 * before opens knew how the file was left. Opens alternate between the two sizes.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sessionsFolder } from '../src/runtime/store/sqliteSessions';
import { openSqliteStore } from '../src/runtime/store/sqliteStore';
import { type Benchmark, formatNumber, formatRatio, median, micros, now, table } from './harness';

const SIZES_MB = [5, 200] as const;
const OPENS = 21;
const CHECKED_OPENS = 5;

/** Fills a fresh Keel database with runs of steps of about 4 KB each until the file is `megabytes` big. */
function buildDatabase(path: string, megabytes: number): void {
  openSqliteStore(path).closeNow();
  const db = new Database(path);
  const output = JSON.stringify({ text: 'x'.repeat(4000) });
  const insertRun = db.prepare(
    `INSERT INTO runs (id, agent, model, input, state, created_at, updated_at) VALUES (?, 'bench', 'scripted', 'go', 'completed', 0, 0)`,
  );
  const insertStep = db.prepare(
    `INSERT INTO steps (run_id, seq, kind, name, status, input, output, started_at, ended_at) VALUES (?, ?, 'tool', 'lookup', 'completed', '{}', ?, 0, 0)`,
  );
  const steps = Math.ceil((megabytes * 2 ** 20) / 4200);
  db.transaction(() => {
    for (let run = 0; run * 100 < steps; run++) {
      insertRun.run(`run_${run}`);
      for (let seq = 1; seq <= 100 && run * 100 + seq <= steps; seq++) insertStep.run(`run_${run}`, seq, output);
    }
  })();
  db.close();
  // Closed cleanly by Keel, as a run database is after any command.
  openSqliteStore(path).closeNow();
}

function openMs(path: string): { ms: number; checked: boolean } {
  const started = now();
  const store = openSqliteStore(path);
  const ms = micros(now() - started) / 1000;
  const checked = store.checkedBecause !== undefined;
  store.closeNow();
  return { ms, checked };
}

export const benchmark: Benchmark = {
  name: 'storeOpen',
  title: 'Opening the SQLite store: a 5 MB and a 200 MB database',
  async run(print, progress) {
    const dir = mkdtempSync(join(tmpdir(), 'keel-bench-open-'));
    try {
      const paths = SIZES_MB.map((megabytes) => {
        progress(`writing a ${megabytes} MB database`);
        const path = join(dir, `keel-${megabytes}.db`);
        buildDatabase(path, megabytes);
        return path;
      });
      const clean = paths.map(() => [] as number[]);
      const checked = paths.map(() => [] as number[]);
      progress(`${OPENS} opens of each, left cleanly`);
      // One round to warm up, not counted; then the order of the two sizes alternates by round.
      for (let round = -1; round < OPENS; round++) {
        const order = round % 2 === 0 ? [0, 1] : [1, 0];
        for (const index of order) {
          const open = openMs(paths[index]!);
          if (open.checked) throw new Error(`${paths[index]!} was checked although it was left cleanly`);
          if (round >= 0) clean[index]!.push(open.ms);
        }
      }
      progress(`${CHECKED_OPENS} opens of each that check the whole file`);
      for (let round = 0; round < CHECKED_OPENS; round++) {
        paths.forEach((path, index) => {
          // As after a crash: nothing says how the file was left.
          rmSync(sessionsFolder(path), { recursive: true, force: true });
          const open = openMs(path);
          if (!open.checked) throw new Error(`${path} was not checked`);
          checked[index]!.push(open.ms);
        });
      }
      const rows = paths.map((path, index) => [
        `${formatNumber(statSync(path).size / 2 ** 20, 1)} MB`,
        formatNumber(median(clean[index]!), 2),
        formatNumber(median(checked[index]!), 2),
      ]);
      print(`opening the store, median ms (${OPENS} opens left cleanly, ${CHECKED_OPENS} checked in full), sizes interleaved`);
      for (const line of table(['database', 'left cleanly', 'checked in full (after a crash)'], rows)) print(line);
      const ratio = median(clean[1]!) / median(clean[0]!);
      print(`200 MB / 5 MB, left cleanly: ${formatRatio(ratio)} (goal: at most 1.2x); checked in full: ${formatRatio(median(checked[1]!) / median(checked[0]!))}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
