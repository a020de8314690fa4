/** How often the runtime process looks for approvals past their deadline, at the least. */
export const DEADLINE_CHECK_MS = 15_000;

/**
 * Runs `check` now, then again every `intervalMs`, and sooner when a deadline it learns of
 * (from `check`'s answer or from `wake`) comes first. Checks never overlap: one asked for while
 * another runs follows it.
 */
export class DeadlineTimer {
  private timer: NodeJS.Timeout | undefined;
  private dueAt = Infinity;
  private running: Promise<void> | undefined;
  private again = false;
  private disposed = false;

  constructor(
    /** Applies the deadlines; resolves with the next one still ahead, or null when none is known. */
    private readonly check: () => Promise<number | null>,
    private readonly report: (error: unknown) => void,
    private readonly intervalMs = DEADLINE_CHECK_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Checks now; resolves when that check (and any asked for meanwhile) is done. */
  runNow(): Promise<void> {
    if (this.disposed) return Promise.resolve();
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.clear();
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** A deadline at `at` exists: check then, unless a check is already due before. */
  wake(at: number): void {
    if (this.disposed || this.running || at >= this.dueAt) return;
    this.schedule(at);
  }

  dispose(): void {
    this.disposed = true;
    this.clear();
  }

  private async loop(): Promise<void> {
    let next: number | null = null;
    do {
      this.again = false;
      try {
        next = await this.check();
      } catch (error) {
        this.report(error);
      }
    } while (this.again && !this.disposed);
    if (!this.disposed) this.schedule(Math.min(this.now() + this.intervalMs, next ?? Infinity));
  }

  private schedule(at: number): void {
    this.clear();
    this.dueAt = at;
    this.timer = setTimeout(() => void this.runNow(), Math.max(0, at - this.now()));
    this.timer.unref();
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.dueAt = Infinity;
  }
}
