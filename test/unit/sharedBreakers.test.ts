import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CircuitBreakers, CircuitOpenError } from '../../src/runtime/effects/circuitBreaker';
import { openSqliteStore } from '../../src/runtime/store/sqliteStore';
import { KEEL, describeOutcome } from '../support/keelCli';
import { runNode, testEnv } from '../support/processes';
import { useTempDirs } from '../support/tempDir';

/**
 * Circuit breakers count through the store, so a failure spike spread over many processes opens
 * the circuit for all of them: each process sees the others' calls.
 */
describe('circuit breakers shared through the store', function () {
  this.timeout(120_000);
  const tempDir = useTempDirs();
  const policy = { windowMs: 60_000, minimumCalls: 10, failureRate: 0.5, cooldownMs: 30_000 };

  it('opens for every process once their failures together reach the rate, though none saw enough alone', async () => {
    const db = join(tempDir('keel-breakers-'), 'keel.db');
    const [a, b] = [openSqliteStore(db), openSqliteStore(db)];
    try {
      let now = 1_800_000_000_000;
      const clock = () => now;
      const first = new CircuitBreakers(policy, clock, a).for('tool flaky');
      const second = new CircuitBreakers(policy, clock, b).for('tool flaky');
      for (let i = 0; i < 5; i++) {
        first.failed();
        await first.settled();
      }
      assert.equal(first.current, 'closed', '5 calls alone are too few to judge');
      for (let i = 0; i < 5; i++) {
        second.failed();
        await second.settled();
      }
      assert.equal(second.current, 'open', 'the other process counted 5 failures too: 10 of 10 failed');
      // Within a second, the first process learns the circuit is open before its next call.
      now += 1_000;
      await first.refresh();
      assert.throws(() => first.admit(), (error: unknown) => error instanceof CircuitOpenError && /open after 10 of 10 calls failed within 60 s/.test(error.message));
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('trips across separate keel run processes, each of which made one failing call', async () => {
    const dir = tempDir('keel-breakers-cli-');
    const agent = join(dir, 'flaky.agent.ts');
    writeFileSync(
      agent,
      `import { defineAgent, defineTool, scriptedModel, z } from 'keel-agents';
const lookup = defineTool({
  name: 'lookup', description: 'Looks up.', args: z.object({}), effect: 'none',
  retry: { attempts: 1 },
  run: () => { throw Object.assign(new Error('the service answered 503'), { status: 503 }); },
});
export default defineAgent({
  name: 'flaky', instructions: 'Look up once.', tools: [lookup],
  model: scriptedModel(({ turn, toolResults }) => turn === 0 ? { toolCalls: [{ name: 'lookup' }] } : 'said: ' + (toolResults[0]?.content ?? '')),
});
`,
    );
    const outcomes: string[] = [];
    for (let i = 0; i < 11; i++) {
      const result = await runNode(KEEL, ['run', agent, '--input', `call ${i}`, '--json'], { cwd: dir, env: testEnv(), timeoutMs: 60_000 });
      const parsed = JSON.parse(result.stdout) as { run?: { result: string | null; error: string | null } };
      assert.ok(parsed.run, describeOutcome(result));
      outcomes.push(parsed.run.result ?? parsed.run.error ?? '');
    }
    assert.ok(
      outcomes.slice(0, 10).every((outcome) => outcome.startsWith('said: Error: lookup failed: the service answered 503')),
      outcomes.join('\n'),
    );
    assert.match(outcomes[10] ?? '', /The circuit for tool lookup is open after 10 of 10 calls failed within 60 s/);
  });
});
