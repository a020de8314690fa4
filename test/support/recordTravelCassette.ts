import { join } from 'node:path';
import { startJudgeServer } from './judgeServer';
import { REPO_ROOT, runNode, testEnv } from './processes';
import { KEEL } from './keelCli';

/**
 * Records the travel example's cassette again: the agent's scripted model plays the model, and
 * the local test server plays the pinned judge. Run `node out/test/support/recordTravelCassette.js`
 * after changing the example agent or its golden file.
 */
async function main(): Promise<void> {
  const judge = await startJudgeServer();
  try {
    const result = await runNode(KEEL, ['record', join('examples', 'travel', 'travel.golden.yaml')], {
      cwd: REPO_ROOT,
      env: testEnv({ KEEL_JUDGE_BASE_URL: judge.url, KEEL_JUDGE_API_KEY: 'test' }),
      timeoutMs: 120_000,
    });
    process.stdout.write(result.stdout);
    process.stderr.write(result.stderr);
    process.exitCode = result.code ?? 1;
  } finally {
    await judge.close();
  }
}

if (require.main === module) void main();
