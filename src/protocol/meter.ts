import type { BudgetWarningEvent } from './events';
import type { SpendReport } from './spend';
import type { PanelState, ViewProtocol } from './webview';

/** The budget meter: what a run and its sub-agent runs spent and hold, live. */
export interface MeterProtocol extends ViewProtocol {
  readonly toView:
    /** What the run spent now: the view draws it (again), whole. */
    | { readonly type: 'spend'; readonly report: SpendReport }
    /** A budget the run draws on crossed its warning line. */
    | { readonly type: 'warning'; readonly event: BudgetWarningEvent }
    | { readonly type: 'error'; readonly message: string };
  readonly fromView:
    /** After the view drew a report: what it shows. */
    | { readonly type: 'shown'; readonly shown: MeterShown }
    /** The person picked a sub-agent run: the meter should show that one. */
    | { readonly type: 'selectRun'; readonly runId: string };
  readonly state: MeterState;
  readonly requests: Record<never, never>;
}

/** What the meter shows, in the words it shows it (for the host, and through it the tests). */
export interface MeterShown {
  readonly runId: string;
  readonly title: string;
  readonly state: string;
  readonly gauges: readonly {
    readonly key: string;
    readonly value: string;
    readonly limit: string | null;
    readonly held: string | null;
    readonly level: string;
  }[];
  readonly models: readonly { readonly model: string; readonly tokens: string; readonly usd: string }[];
  readonly budgets: readonly string[];
  readonly held: number;
  readonly recent: number;
  readonly subRuns: readonly string[];
  readonly warnings: readonly string[];
}

/** What the meter keeps across reloads. */
export interface MeterState extends PanelState {
  /** Warnings announced while it was open: they are events, which a report does not repeat. */
  readonly warnings: readonly string[];
}
