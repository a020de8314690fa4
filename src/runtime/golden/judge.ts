import { canonicalJson, sha256 } from '../hash/canonicalJson';
import { KeelError } from '../errors';
import { truncate } from '../format';
import type { Model } from '../model/model';
import { openaiModel } from '../model/openai';
import type { IntentRule, JudgePin } from './goldenFile';

/**
 * The judge: a model that grades an agent's answer against a rubric, or says which intent a run
 * shows. It is pinned (provider, model id, version, the hash of its prompts) and asked at
 * temperature 0, and every verdict carries that pin, so a verdict can be traced to the judge that
 * gave it and a judge that changes under the same name shows up as drift (see drift.ts).
 */

/** Bumped whenever the prompts below change: verdicts of another version were made by another judge. */
export const JUDGE_PROMPT_VERSION = 'keel-judge-1';

const RUBRIC_PROMPT = [
  'You grade the work of an AI agent. You are given the request the agent received, the tool calls it made,',
  'its final answer, and a rubric. Decide how well the final answer and the calls meet the rubric, from 0',
  '(not at all) to 1 (fully). Judge only by the rubric; do not reward length or politeness.',
  'Reply with one JSON object and nothing else: {"score": <number from 0 to 1>, "reason": "<one sentence>"}',
].join('\n');

const INTENT_PROMPT = [
  'You classify what an AI agent did. You are given the request the agent received, the tool calls it made,',
  'its final answer, and a list of intents, each with a description. Pick the one intent that best describes',
  'what the agent did, or "unknown" if none fits.',
  'Reply with one JSON object and nothing else: {"intent": "<intent name or unknown>", "reason": "<one sentence>"}',
].join('\n');

/** The hash of the judge's prompts, part of every verdict's pin. */
export const JUDGE_PROMPT_HASH = sha256(canonicalJson({ version: JUDGE_PROMPT_VERSION, rubric: RUBRIC_PROMPT, intent: INTENT_PROMPT })).slice(0, 16);

/** Who gave a verdict, exactly. */
export interface JudgeIdentity {
  readonly provider: string;
  readonly model: string;
  readonly version: string;
  readonly promptHash: string;
  readonly temperature: 0;
}

export interface Verdict {
  readonly kind: 'rubric' | 'intent';
  readonly judge: JudgeIdentity;
  /** The model the provider says answered; a pinned judge answers as its pinned id. */
  readonly answeredBy: string;
  /** The system fingerprint the provider reported with the answer, when it reports one. */
  readonly fingerprint?: string;
  /** For a rubric: the score from 0 to 1, the threshold and whether it passed. */
  readonly score: number | null;
  readonly threshold: number | null;
  readonly passed: boolean | null;
  /** For a classification: the intent picked. */
  readonly intent: string | null;
  readonly reason: string;
  /** ISO 8601. */
  readonly at: string;
}

/** What the judge looks at. */
export interface JudgeSubject {
  readonly input: string;
  readonly answer: string;
  readonly toolCalls: readonly { readonly name: string; readonly args: unknown }[];
}

/** The judge failed to give a verdict (an answer that is not one, a provider error). */
export class JudgeError extends KeelError {}

export function judgeIdentity(pin: JudgePin): JudgeIdentity {
  return { provider: pin.provider, model: pin.model, version: pin.version, promptHash: JUDGE_PROMPT_HASH, temperature: 0 };
}

/** `openai:gpt-4o-mini-2024-07-18@2024-07-18#1a2b3c4d`: a judge's identity in one line. */
export function describeJudge(identity: JudgeIdentity): string {
  return `${identity.provider}:${identity.model}@${identity.version} (prompt ${identity.promptHash.slice(0, 8)}, temperature 0)`;
}

/**
 * The model behind a pin: an OpenAI-compatible endpoint from the pin, `KEEL_JUDGE_BASE_URL` or
 * `OPENAI_BASE_URL`; its key from the pin's `apiKeyEnv`, `KEEL_JUDGE_API_KEY` or `OPENAI_API_KEY`.
 */
export function judgeModel(pin: JudgePin, env: NodeJS.ProcessEnv = process.env): Model {
  const baseURL = pin.baseURL ?? env['KEEL_JUDGE_BASE_URL'] ?? env['OPENAI_BASE_URL'];
  const apiKey = (pin.apiKeyEnv === undefined ? undefined : env[pin.apiKeyEnv]) ?? env['KEEL_JUDGE_API_KEY'] ?? env['OPENAI_API_KEY'];
  return openaiModel({
    model: pin.model,
    ...(baseURL ? { baseURL } : {}),
    ...(apiKey ? { apiKey } : {}),
    stream: false,
    temperature: 0,
    maxRetries: 2,
  });
}

export class Judge {
  readonly identity: JudgeIdentity;

  constructor(
    readonly pin: JudgePin,
    private readonly model: Model,
    private readonly now: () => number = Date.now,
  ) {
    this.identity = judgeIdentity(pin);
  }

  async grade(subject: JudgeSubject, rubric: string, threshold: number): Promise<Verdict> {
    const { answer, answeredBy, fingerprint } = await this.ask(RUBRIC_PROMPT, `${subjectText(subject)}\n\n## Rubric\n${rubric}`);
    const score = answer['score'];
    if (typeof score !== 'number' || !(score >= 0 && score <= 1)) {
      throw new JudgeError(`The judge ${describeJudge(this.identity)} gave no score from 0 to 1: ${truncate(JSON.stringify(answer), 200)}`);
    }
    return this.verdict('rubric', { answeredBy, fingerprint }, { score, threshold, passed: score >= threshold, intent: null }, answer);
  }

  async classify(subject: JudgeSubject, intents: readonly IntentRule[]): Promise<Verdict> {
    const list = intents.map((intent) => `- ${intent.name}: ${intent.description}`).join('\n');
    const { answer, answeredBy, fingerprint } = await this.ask(INTENT_PROMPT, `${subjectText(subject)}\n\n## Intents\n${list}`);
    const picked = answer['intent'];
    if (typeof picked !== 'string') throw new JudgeError(`The judge ${describeJudge(this.identity)} named no intent: ${truncate(JSON.stringify(answer), 200)}`);
    const intent = intents.some((rule) => rule.name === picked) ? picked : 'unknown';
    return this.verdict('intent', { answeredBy, fingerprint }, { score: null, threshold: null, passed: null, intent }, answer);
  }

  private verdict(
    kind: Verdict['kind'],
    by: { answeredBy: string; fingerprint: string | undefined },
    outcome: Pick<Verdict, 'score' | 'threshold' | 'passed' | 'intent'>,
    answer: Record<string, unknown>,
  ): Verdict {
    const reason = typeof answer['reason'] === 'string' ? answer['reason'] : '';
    return {
      kind,
      judge: this.identity,
      answeredBy: by.answeredBy,
      ...(by.fingerprint === undefined ? {} : { fingerprint: by.fingerprint }),
      ...outcome,
      reason,
      at: new Date(this.now()).toISOString(),
    };
  }

  private async ask(system: string, user: string): Promise<{ answer: Record<string, unknown>; answeredBy: string; fingerprint: string | undefined }> {
    const response = await this.model.generate({
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: user },
      ],
      tools: [],
      temperature: 0,
      maxTokens: 400,
    });
    const text = response.message.content ?? '';
    const answer = parseJsonObject(text);
    if (!answer) throw new JudgeError(`The judge ${describeJudge(this.identity)} answered with something that is not a JSON verdict: ${truncate(text, 200)}`);
    return { answer, answeredBy: response.model, fingerprint: response.systemFingerprint };
  }
}

/** Whether the model that answered is the one pinned; a message saying otherwise when not. */
export function pinProblem(verdict: Verdict): string | null {
  if (verdict.answeredBy === verdict.judge.model) return null;
  return `The judge answered as ${verdict.answeredBy}, but it is pinned to ${verdict.judge.model}: the provider serves another model under that name. Pin the exact model id, or update the pin after checking drift (keel judge --drift).`;
}

function subjectText(subject: JudgeSubject): string {
  const calls = subject.toolCalls.length === 0 ? '(none)' : subject.toolCalls.map((call) => `- ${call.name} ${canonicalJson(call.args)}`).join('\n');
  return `## Request\n${subject.input}\n\n## Tool calls\n${calls}\n\n## Final answer\n${subject.answer}`;
}

/** The first JSON object in a text (models sometimes wrap it in prose or a code fence). */
function parseJsonObject(text: string): Record<string, unknown> | undefined {
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  if (start < 0 || end <= start) return undefined;
  try {
    const value: unknown = JSON.parse(text.slice(start, end + 1));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
