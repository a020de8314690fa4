import * as vscode from 'vscode';

/**
 * - `open`: showing, or waiting in the notification center.
 * - `pressed`: a button was chosen; `closed`: dismissed without one.
 * - `retired`: what it asked about was settled elsewhere (VS Code cannot take a notification back,
 *   so its buttons then only find that out).
 */
export type ToastState = 'open' | 'pressed' | 'closed' | 'retired';

/** A notification as tests read it through `keel._test.approvals` and `keel._test.alerts`. */
export interface ToastRecord {
  readonly id: number;
  readonly text: string;
  readonly buttons: readonly string[];
  /** What it stands for: an approval, several for a summary, or an alert. */
  readonly about: readonly string[];
  readonly summary: boolean;
  readonly state: ToastState;
}

/** A button and what it does; `input` is what the button would ask the person for, when already known (tests). */
export interface ToastButton<Input, Result> {
  readonly label: string;
  run(input: Input): Promise<Result>;
}

/** How many notifications the record keeps. */
const KEPT = 200;

interface Toast<Input, Result> {
  record: ToastRecord;
  readonly buttons: readonly ToastButton<Input, Result>[];
}

/**
 * Every approval and alert notification goes through here: it shows it, records what it showed, and runs
 * the chosen button. `press` runs a button as a click does (the extension host API cannot click a
 * notification, so the tests press through this).
 */
export class Notifier<Input, Result> {
  private readonly toasts: Toast<Input, Result>[] = [];
  private nextId = 1;

  constructor(
    private readonly log: vscode.LogOutputChannel,
    private readonly emptyInput: Input,
  ) {}

  show(text: string, buttons: readonly ToastButton<Input, Result>[], about: readonly string[], summary = false, level: 'info' | 'warning' | 'error' = 'warning'): ToastRecord {
    const toast: Toast<Input, Result> = {
      record: { id: this.nextId++, text, buttons: buttons.map((button) => button.label), about, summary, state: 'open' },
      buttons,
    };
    this.toasts.push(toast);
    // Settled notifications are only kept for a while, for the record.
    const settled = this.toasts.findIndex((candidate) => candidate.record.state !== 'open');
    if (this.toasts.length > KEPT && settled >= 0) this.toasts.splice(settled, 1);
    this.log.info(`notification: ${text} [${toast.record.buttons.join(' | ')}]`);
    const showMessage = level === 'error' ? vscode.window.showErrorMessage : level === 'info' ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
    showMessage(text, ...toast.record.buttons).then(
      (label) => {
        if (label === undefined) this.settle(toast, 'closed');
        else void this.choose(toast, label, this.emptyInput);
      },
      (error: unknown) => this.log.error(`notification failed: ${error instanceof Error ? error.message : String(error)}`),
    );
    return toast.record;
  }

  /** Runs a button of the latest notification about `subject` (an approval, an alert) alone, as a click does; undefined when there is none. */
  press(subject: string, label: string, input: Input): Promise<Result> | undefined {
    const toast = this.toasts.findLast((candidate) => !candidate.record.summary && candidate.record.about.includes(subject));
    if (!toast || !toast.buttons.some((button) => button.label === label)) return undefined;
    return this.choose(toast, label, input);
  }

  /** An open summary stands for these approvals too. */
  cover(toastId: number, approvalIds: readonly string[]): void {
    const toast = this.toasts.find((candidate) => candidate.record.id === toastId);
    if (toast) toast.record = { ...toast.record, about: [...new Set([...toast.record.about, ...approvalIds])] };
  }

  /** Notifications none of whose approvals is pending any more stand for nothing. */
  retireAllBut(pending: ReadonlySet<string>): void {
    for (const toast of this.toasts) {
      if (!toast.record.about.some((id) => pending.has(id))) this.settle(toast, 'retired');
    }
  }

  openOnes(): ToastRecord[] {
    return this.toasts.filter((toast) => toast.record.state === 'open').map((toast) => toast.record);
  }

  records(): readonly ToastRecord[] {
    return this.toasts.map((toast) => toast.record);
  }

  private choose(toast: Toast<Input, Result>, label: string, input: Input): Promise<Result> {
    this.settle(toast, 'pressed');
    const button = toast.buttons.find((candidate) => candidate.label === label);
    if (!button) return Promise.reject(new Error(`The notification "${toast.record.text}" has no button ${label}.`));
    return button.run(input);
  }

  private settle(toast: Toast<Input, Result>, state: Exclude<ToastState, 'open'>): void {
    // Closing a retired notification leaves it retired; pressing one records the press.
    if (toast.record.state === 'open' || (toast.record.state === 'retired' && state === 'pressed')) {
      toast.record = { ...toast.record, state };
    }
  }
}
