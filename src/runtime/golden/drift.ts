import { isSeq, type Node } from 'yaml';
import { readJudgeConfig, YamlReader, type JudgeConfig } from './goldenFile';
import { describeJudge, type Judge, type JudgeIdentity } from './judge';

/**
 * Judge drift: a control sample of answers whose verdicts a person has settled is graded again by
 * the pinned judge. When the judge no longer agrees with enough of the past verdicts, it has
 * drifted (the provider changed the model behind the name, or the prompt changed), and that is
 * reported as the judge's problem, apart from any regression of the agents it grades.
 */

export const CONTROL_VERSION = 1;
/** The share of past verdicts a judge must agree with, unless the control file says otherwise. */
export const DEFAULT_MIN_AGREEMENT = 0.9;

export interface ControlSample {
  readonly id: string;
  readonly rubric: string;
  readonly input: string;
  readonly answer: string;
  readonly threshold: number;
  /** The settled verdict: whether the answer meets the rubric. */
  readonly verdict: 'pass' | 'fail';
  /** The score the judge gave then, when known. */
  readonly score: number | null;
}

export interface ControlFile {
  readonly file: string;
  readonly judge: JudgeConfig;
  readonly minAgreement: number;
  readonly samples: readonly ControlSample[];
}

export interface Regraded {
  readonly id: string;
  readonly score: number;
  readonly passed: boolean;
  /** The model the endpoint said answered, and the system fingerprint it reported, when known. */
  readonly answeredBy?: string;
  readonly fingerprint?: string;
}

/** Who the endpoint says answered the check, against the pin. */
export interface JudgeIdentityCheck {
  /** Every model id the endpoint reported, in the order first seen. */
  readonly answeredAs: readonly string[];
  /** Every system fingerprint it reported. */
  readonly fingerprints: readonly string[];
  /** Why the identity does not match the pin; null when it does. */
  readonly problem: string | null;
}

export interface DriftReport {
  readonly judge: JudgeIdentity;
  readonly total: number;
  readonly agreed: number;
  /** agreed / total. */
  readonly agreement: number;
  readonly minAgreement: number;
  /** True when the judge agrees with too few verdicts, or answered as another model than its pin. */
  readonly drifted: boolean;
  readonly identity: JudgeIdentityCheck;
  /** The mean of |score now − score then| over the samples with a past score; null when none has one. */
  readonly meanScoreShift: number | null;
  readonly disagreements: readonly { readonly id: string; readonly past: 'pass' | 'fail'; readonly now: 'pass' | 'fail'; readonly score: number }[];
}

export function parseControlFile(text: string, file: string, shownAs: string = file): ControlFile {
  const reader: YamlReader = new YamlReader(text, shownAs);
  const root = reader.document();
  const top = reader.fields(root, 'the control file', ['version', 'judge', 'minAgreement', 'samples']);
  const versionNode = reader.required(top, root, 'version', 'the control file');
  if (reader.value(versionNode) !== CONTROL_VERSION) reader.fail(versionNode, `\`version\` must be ${CONTROL_VERSION}.`);
  const judge = readJudgeConfig(reader, reader.required(top, root, 'judge', 'the control file'), '`judge`', false);
  const agreementNode = top.get('minAgreement');
  const minAgreement = agreementNode === undefined ? DEFAULT_MIN_AGREEMENT : reader.number(agreementNode, '`minAgreement`', 0, 1);
  const samplesNode = reader.required(top, root, 'samples', 'the control file');
  if (!isSeq(samplesNode) || samplesNode.items.length === 0) reader.fail(samplesNode, '`samples` must be a list of at least one answer with its settled verdict.');
  const ids = new Set<string>();
  const samples = samplesNode.items.map((item, index) => {
    const node = item as Node;
    const where = `sample ${index + 1}`;
    const fields = reader.fields(node, where, ['id', 'rubric', 'input', 'answer', 'threshold', 'verdict', 'score']);
    const id = reader.string(reader.required(fields, node, 'id', where), `${where}: \`id\``);
    if (ids.has(id)) reader.fail(node, `two samples have the id ${JSON.stringify(id)}.`);
    ids.add(id);
    const verdictNode = reader.required(fields, node, 'verdict', where);
    const verdictText = reader.string(verdictNode, `${where}: \`verdict\``);
    if (verdictText !== 'pass' && verdictText !== 'fail') reader.fail(verdictNode, `${where}: \`verdict\` must be pass or fail.`);
    const verdict: 'pass' | 'fail' = verdictText;
    const thresholdNode = fields.get('threshold');
    const scoreNode = fields.get('score');
    const sample: ControlSample = {
      id,
      rubric: reader.string(reader.required(fields, node, 'rubric', where), `${where}: \`rubric\``),
      input: reader.string(reader.required(fields, node, 'input', where), `${where}: \`input\``),
      answer: reader.string(reader.required(fields, node, 'answer', where), `${where}: \`answer\``),
      threshold: thresholdNode === undefined ? 0.7 : reader.number(thresholdNode, `${where}: \`threshold\``, 0, 1),
      verdict,
      score: scoreNode === undefined ? null : reader.number(scoreNode, `${where}: \`score\``, 0, 1),
    };
    return sample;
  });
  return { file, judge, minAgreement, samples };
}

/**
 * Whether the endpoint answered as the pinned judge: every reported model id is the pinned id (or
 * the pinned id with its version appended, as providers date their models), and every reported
 * system fingerprint is the pinned one, when one is pinned.
 */
export function identityCheck(judge: JudgeIdentity, regraded: readonly Regraded[], pinnedFingerprint?: string): JudgeIdentityCheck {
  const answeredAs = [...new Set(regraded.flatMap((grade) => (grade.answeredBy === undefined ? [] : [grade.answeredBy])))];
  const fingerprints = [...new Set(regraded.flatMap((grade) => (grade.fingerprint === undefined ? [] : [grade.fingerprint])))];
  const accepted = new Set([judge.model, `${judge.model}-${judge.version}`]);
  const others = answeredAs.filter((model) => !accepted.has(model));
  const problems: string[] = [];
  if (others.length > 0) {
    problems.push(`the endpoint answered as ${others.join(', ')}, but the judge is pinned to ${judge.model} (version ${judge.version}): the provider serves another model or version under that name`);
  }
  const otherPrints = pinnedFingerprint === undefined ? [] : fingerprints.filter((print) => print !== pinnedFingerprint);
  if (otherPrints.length > 0) {
    problems.push(`it reported the system fingerprint ${otherPrints.join(', ')}, not the pinned ${pinnedFingerprint ?? ''}: the configuration behind the model changed`);
  }
  return { answeredAs, fingerprints, problem: problems.length === 0 ? null : `${problems.join('; ')}. Check the verdicts, then update the pin.` };
}

/** The arithmetic of drift: how many settled verdicts the judge still agrees with, and whether it answered as itself. */
export function driftReport(
  judge: JudgeIdentity,
  samples: readonly ControlSample[],
  regraded: readonly Regraded[],
  minAgreement: number,
  pinnedFingerprint?: string,
): DriftReport {
  const byId = new Map(regraded.map((grade) => [grade.id, grade]));
  let agreed = 0;
  let shiftSum = 0;
  let shifted = 0;
  const disagreements: DriftReport['disagreements'][number][] = [];
  for (const sample of samples) {
    const grade = byId.get(sample.id);
    if (!grade) continue;
    const now = grade.passed ? 'pass' : 'fail';
    if (now === sample.verdict) agreed += 1;
    else disagreements.push({ id: sample.id, past: sample.verdict, now, score: grade.score });
    if (sample.score !== null) {
      shiftSum += Math.abs(grade.score - sample.score);
      shifted += 1;
    }
  }
  const total = samples.length;
  const agreement = total === 0 ? 1 : agreed / total;
  const identity = identityCheck(judge, regraded, pinnedFingerprint);
  return {
    judge,
    total,
    agreed,
    agreement,
    minAgreement,
    drifted: agreement < minAgreement || identity.problem !== null,
    identity,
    meanScoreShift: shifted === 0 ? null : shiftSum / shifted,
    disagreements,
  };
}

/** Grades every sample again with `judge` (one at a time) and reports the drift. */
export async function checkDrift(control: ControlFile, judge: Judge): Promise<DriftReport> {
  const regraded: Regraded[] = [];
  for (const sample of control.samples) {
    const verdict = await judge.grade({ input: sample.input, answer: sample.answer, toolCalls: [] }, sample.rubric, sample.threshold);
    regraded.push({
      id: sample.id,
      score: verdict.score ?? 0,
      passed: verdict.passed === true,
      answeredBy: verdict.answeredBy,
      ...(verdict.fingerprint === undefined ? {} : { fingerprint: verdict.fingerprint }),
    });
  }
  return driftReport(judge.identity, control.samples, regraded, control.minAgreement, judge.pin.fingerprint);
}

/** The report for a person: one verdict line, then the samples the judge now sees otherwise. */
export function describeDrift(report: DriftReport): string[] {
  const percent = (share: number) => `${Math.round(share * 1000) / 10}%`;
  const head = `${report.drifted ? 'DRIFTED' : 'OK'} judge ${describeJudge(report.judge)}: agrees with ${report.agreed} of ${report.total} settled verdicts (${percent(report.agreement)}; at least ${percent(report.minAgreement)} needed)`;
  const shift = report.meanScoreShift === null ? [] : [`  mean score shift ${report.meanScoreShift.toFixed(3)}`];
  const { answeredAs, fingerprints, problem } = report.identity;
  const seen =
    answeredAs.length === 0
      ? []
      : [`  answered as ${answeredAs.join(', ')}${fingerprints.length === 0 ? '' : ` (system fingerprint ${fingerprints.join(', ')})`}`];
  const mismatch = problem === null ? [] : [`  identity: ${problem}`];
  return [head, ...mismatch, ...seen, ...shift, ...report.disagreements.map((item) => `  ${item.id}: was ${item.past}, now ${item.now} (score ${item.score})`)];
}
