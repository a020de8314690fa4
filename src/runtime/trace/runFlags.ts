import type { CheckpointStore } from '../store/checkpointStore';
import { agentFacts } from './agentFacts';
import { buildTrace, loadTraceSource, traceFlags } from './buildTrace';
import type { DetectedFlag } from './detectors';
import type { TraceSpan } from './span';
import { traceOptions, type TraceSettings } from './traceSettings';

/** The detectors' flags on a run, each with the step it concerns (null for the run itself), as its trace shows them. */
export async function runFlags(store: CheckpointStore, runId: string, settings: TraceSettings): Promise<DetectedFlag[]> {
  const source = await loadTraceSource(store, runId);
  return flagsOfSpans(buildTrace(source, traceOptions(settings, agentFacts(source.run))));
}

/** The flags on a trace's spans, each with the step of its span. */
export function flagsOfSpans(spans: readonly TraceSpan[]): DetectedFlag[] {
  const steps = new Map(spans.map((span) => [span.spanId, span.attributes['keel.step.id']]));
  return traceFlags(spans).map((flag) => {
    const step = steps.get(flag.spanId);
    return { kind: flag.kind, severity: flag.severity, message: flag.message, seq: typeof step === 'number' ? step : null };
  });
}
