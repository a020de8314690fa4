/** Golden tests as the runtime process reports them to the Test Explorer. */

export type CaseTag = 'happy' | 'edge' | 'adversarial';

/** A position in a file, 0-based as editors count. */
export interface TextPosition {
  readonly line: number;
  readonly character: number;
}

export interface TextRange {
  readonly start: TextPosition;
  readonly end: TextPosition;
}

/** One assertion of a case: what was expected and, when it failed, what happened instead. */
export interface AssertionResult {
  /** `state`, `answer.contains`, `tools.called`, `maxCostUsd`, `judge`... */
  readonly kind: string;
  readonly passed: boolean;
  readonly message: string;
  /** For a diff view, when the expectation has a natural text form. */
  readonly expected?: string;
  readonly actual?: string;
}

/** One run of a case. */
export interface CaseRun {
  readonly status: 'passed' | 'failed' | 'error';
  /** The run, to open its trace; null when no run started. */
  readonly runId: string | null;
  readonly durationMs: number;
  readonly answer: string | null;
  readonly assertions: readonly AssertionResult[];
  /** Why the case could not be checked. */
  readonly error: string | null;
  /** The cassette mismatch, with what changed and how to re-record. */
  readonly mismatch: string | null;
}

export interface CaseReport {
  readonly name: string;
  readonly tags: readonly CaseTag[];
  readonly range: TextRange;
  readonly runs: readonly CaseRun[];
  /** Runs that passed, of `runs.length`. */
  readonly passed: number;
  readonly status: 'passed' | 'failed' | 'error';
  /** Some runs passed and some did not. */
  readonly flaky: boolean;
}

/** Why a golden file cannot be used, and where (1-based line and column). */
export interface GoldenFileError {
  readonly message: string;
  readonly line: number | null;
  readonly column: number | null;
}

export interface GoldenFileReport {
  readonly file: string;
  readonly agentFile: string | null;
  readonly error: GoldenFileError | null;
  readonly cases: readonly CaseReport[];
  readonly durationMs: number;
}

export type GoldenEvent =
  | { readonly type: 'caseStarted'; readonly file: string; readonly caseName: string }
  | { readonly type: 'caseFinished'; readonly file: string; readonly report: CaseReport }
  | { readonly type: 'fileFinished'; readonly report: GoldenFileReport };
