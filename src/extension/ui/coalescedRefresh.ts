import type * as vscode from 'vscode';

/**
 * A view's refresh from the runtime process, coalesced: requests within `delayMs` make one
 * refresh, only one runs at a time, and a request during one leads to one more after it (so the
 * last refresh sees the latest state). `refresh` handles its own errors.
 */
export class CoalescedRefresh implements vscode.Disposable {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stale = false;
  private disposed = false;

  constructor(
    private readonly delayMs: number,
    private readonly refresh: () => Promise<void>,
  ) {}

  /** Refreshes after the delay, once however many times it is asked meanwhile. */
  soon(): void {
    if (this.disposed) return;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.now();
    }, this.delayMs);
  }

  /** Refreshes now, or after the refresh under way. */
  now(): void {
    if (this.disposed) return;
    if (this.running) {
      this.stale = true;
      return;
    }
    this.running = true;
    void this.refresh()
      .catch(() => undefined)
      .finally(() => {
        this.running = false;
        if (this.stale) {
          this.stale = false;
          this.soon();
        }
      });
  }

  dispose(): void {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
