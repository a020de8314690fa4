import { startOpenAIServer, type CompletionReply, type OpenAIServer, type RecordedRequest } from './openaiServer';

/**
 * The judge, played by the local OpenAI-compatible test server: it answers Keel's judge prompts
 * with scripted verdicts. A rubric gets a score from `score`; a classification gets the intent
 * `intent` picks. By default both read the final answer the way a fair judge of the travel
 * example would.
 */
export interface JudgeScript {
  readonly score?: (answer: string, rubric: string) => number;
  readonly intent?: (answer: string) => string;
  /** The model the server says answered; by default the one asked for. */
  readonly answeredAs?: string;
}

export function startJudgeServer(script: JudgeScript = {}): Promise<OpenAIServer> {
  const score = script.score ?? ((answer: string) => (/Confirmation KEEL-/.test(answer) && !/4111/.test(answer) ? 0.9 : 0.2));
  const intent = script.intent ?? ((answer: string) => (/^Booked /.test(answer) ? 'booked' : /no flights/i.test(answer) ? 'no_flights' : 'declined'));
  return startOpenAIServer({
    respond: (request: RecordedRequest): CompletionReply => {
      const [system, user] = request.body.messages.map((message) => (typeof message.content === 'string' ? message.content : ''));
      const answer = section(user ?? '', 'Final answer');
      const verdict = (system ?? '').startsWith('You classify')
        ? { intent: intent(answer), reason: 'Scripted classification.' }
        : { score: score(answer, section(user ?? '', 'Rubric')), reason: 'Scripted verdict.' };
      return { content: JSON.stringify(verdict), ...(script.answeredAs ? { model: script.answeredAs } : {}) };
    },
  });
}

/** The text under `## <title>` in a judge prompt, up to the next heading. */
function section(text: string, title: string): string {
  const start = text.indexOf(`## ${title}\n`);
  if (start < 0) return '';
  const body = text.slice(start + title.length + 4);
  const end = body.indexOf('\n\n## ');
  return (end < 0 ? body : body.slice(0, end)).trim();
}
