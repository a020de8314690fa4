import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import Mocha from 'mocha';

/**
 * Mocha's spec reporter, plus a file with the counts (`KEEL_TEST_COUNTS`, JSON) so that the
 * test script can add up every stage into one `N passed, N failed` line.
 */
class CountingReporter extends Mocha.reporters.Spec {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    const target = process.env['KEEL_TEST_COUNTS'];
    if (!target) return;
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const stats = runner.stats ?? { passes: 0, failures: 0, pending: 0 };
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, JSON.stringify({ passed: stats.passes, failed: stats.failures, skipped: stats.pending }));
    });
  }
}

export = CountingReporter;
