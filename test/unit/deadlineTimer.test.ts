import assert from 'node:assert/strict';
import { DeadlineTimer } from '../../src/daemon/deadlineTimer';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the runtime process applies approval deadlines on a timer (src/daemon/deadlineTimer)', () => {
  const timers: DeadlineTimer[] = [];
  afterEach(() => {
    for (const timer of timers.splice(0)) timer.dispose();
  });

  function timer(check: () => Promise<number | null>, intervalMs: number): DeadlineTimer {
    const made = new DeadlineTimer(check, (error) => assert.fail(String(error)), intervalMs);
    timers.push(made);
    return made;
  }

  it('checks at once, then every interval', async () => {
    let checks = 0;
    const deadlines = timer(() => {
      checks += 1;
      return Promise.resolve(null);
    }, 40);
    await deadlines.runNow();
    assert.equal(checks, 1);
    await sleep(150);
    assert.ok(checks >= 2 && checks <= 5, `${checks} checks`);
  });

  it('checks sooner for a deadline it learns of, whether from its check or from wake()', async () => {
    const checkedAt: number[] = [];
    const started = Date.now();
    let next: number | null = started + 50;
    const deadlines = timer(() => {
      checkedAt.push(Date.now() - started);
      const answer = next;
      next = null;
      return Promise.resolve(answer);
    }, 60_000);
    await deadlines.runNow();
    await sleep(120);
    assert.equal(checkedAt.length, 2, `checked at ${checkedAt.join(', ')} ms`);
    deadlines.wake(Date.now() + 30);
    await sleep(100);
    assert.equal(checkedAt.length, 3, `checked at ${checkedAt.join(', ')} ms`);
  });

  it('never runs two checks at once: one asked for meanwhile follows the running one', async () => {
    let running = 0;
    let most = 0;
    let checks = 0;
    const deadlines = timer(async () => {
      running += 1;
      most = Math.max(most, running);
      checks += 1;
      await sleep(30);
      running -= 1;
      return null;
    }, 60_000);
    await Promise.all([deadlines.runNow(), deadlines.runNow(), deadlines.runNow()]);
    assert.equal(most, 1);
    assert.equal(checks, 2);
  });
});
