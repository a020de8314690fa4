import { currentUser } from '../../runtime/currentUser';
import { compactArgs, truncate } from '../../shared/format';
import { reviewStats } from '../../runtime/review/reviewStats';
import { describeRate, describeSuggestion } from '../../shared/reviewText';
import { reviewsOf, type ReviewRecord } from '../../runtime/review/reviewStore';
import type { Style } from '../style';
import { UsageError, type Command } from '../command';
import { out, parse, style, withHost } from '../shared';

/** `keel review`: tool calls that ran without a person's approval and were sampled, verdicts on them, and what the verdicts say. */

async function review(args: readonly string[]): Promise<number> {
  const { values, positionals } = parse(args, {
    all: { type: 'boolean' },
    tool: { type: 'string' },
    stats: { type: 'boolean' },
    note: { type: 'string' },
    json: { type: 'boolean' },
  });
  const [id, verdict, ...extra] = positionals;
  if (id !== undefined) {
    if (verdict !== 'agree' && verdict !== 'disagree') {
      throw new UsageError(`keel review ${id} takes a verdict: agree (the call was right to go ahead on its own) or disagree, as in keel review ${id} disagree --note "<why>"`);
    }
    if (extra.length > 0) throw new UsageError('keel review <id> agree|disagree takes nothing more but --note <text>.');
    return withHost(values, async (host) => {
      const note = values.note?.trim() ? values.note.trim() : null;
      const recorded = await reviewsOf(host.store).record(id, { verdict, note, by: currentUser(), at: Date.now() });
      out.write(values.json ? `${JSON.stringify(recorded, null, 2)}\n` : `${reviewLines(recorded, style).join('\n')}\n`);
      return 0;
    });
  }
  if (values.note !== undefined) throw new UsageError('--note goes with a verdict: keel review <id> agree|disagree --note <text>');
  return withHost(values, async (host) => {
    const store = reviewsOf(host.store);
    if (values.stats) {
      const stats = reviewStats(await store.list(values.tool === undefined ? {} : { tool: values.tool }));
      if (values.json) {
        out.write(`${JSON.stringify(stats, null, 2)}\n`);
        return 0;
      }
      if (stats.length === 0) {
        out.write(`No sampled calls in ${host.store.location} yet.${host.config.reviewSampling.length === 0 ? ' keel.config.ts samples none (review.sample; see docs/review.md).' : ''}\n`);
        return 0;
      }
      for (const tool of stats) {
        out.write(`${style.bold(tool.tool)}  disagreed with ${describeRate(tool.disagreed, tool.reviewed, tool.interval)}${tool.pending > 0 ? style.dim(`, ${tool.pending} waiting for a verdict`) : ''}\n`);
        if (tool.suggestion) out.write(`  ${style.yellow('suggestion')} ${describeSuggestion(tool.tool, tool.suggestion)}\n`);
      }
      return 0;
    }
    const list = await store.list({ ...(values.all ? {} : { status: 'pending' as const }), ...(values.tool === undefined ? {} : { tool: values.tool }) });
    if (values.json) {
      out.write(`${JSON.stringify(list, null, 2)}\n`);
      return 0;
    }
    if (list.length === 0) {
      out.write(`${values.all ? 'No sampled calls' : 'No sampled calls wait for a verdict'} in ${host.store.location}.${host.config.reviewSampling.length === 0 ? ' keel.config.ts samples none (review.sample; see docs/review.md).' : ''}\n`);
      return 0;
    }
    out.write(`${list.map((item) => reviewLines(item, style).join('\n')).join('\n')}\n`);
    if (!values.all) out.write(`${style.dim('Give a verdict: npx keel review <id> agree | disagree [--note "<why>"]; what they add up to: npx keel review --stats')}\n`);
    return 0;
  });
}

/** A sampled call in a few lines: what ran, what came of it, why it was sampled, and its verdict. */
function reviewLines(item: ReviewRecord, paint: Style): string[] {
  const head = `${paint.bold(item.id)} ${paint.dim(new Date(item.sampledAt).toISOString())} ${item.agent} · ${item.tool} ${paint.dim(`(${item.effect})`)} ${truncate(compactArgs(item.args), 120)}`;
  const verdict =
    item.verdict === null
      ? paint.yellow('waiting for a verdict')
      : `${item.verdict === 'agree' ? paint.green('agree') : paint.red('disagree')} by ${item.reviewedBy ?? '?'} at ${new Date(item.reviewedAt ?? 0).toISOString()}${item.note ? `: ${item.note}` : ''}`;
  return [
    head,
    `  ${paint.dim('result ')} ${truncate(item.outcome.content.replace(/\s+/g, ' '), 160)}`,
    `  ${paint.dim('sampled')} ${item.reason} · run ${item.runId} step ${item.seq}`,
    `  ${paint.dim('verdict')} ${verdict}`,
  ];
}

export const reviewCommands: Readonly<Record<string, Command>> = {
  review: {
    usage: [
      'keel review [--all] [--tool <name>] [--json]    sampled calls that ran without approval, waiting for a verdict',
      'keel review <id> agree|disagree [--note <text>]  record a verdict (who and when are recorded)',
      'keel review --stats [--tool <name>] [--json]    disagreement rate per tool (Wilson 95% interval), suggested thresholds',
    ],
    run: review,
  },
};
