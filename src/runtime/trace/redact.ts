import { KeelError } from '../errors';

/** What a secret is replaced with. */
export const REDACTED = '[REDACTED]';

interface Pattern {
  readonly name: string;
  readonly regex: RegExp;
  /** Keeps the first capture group (a label such as `Bearer ` or `api_key=`) and redacts the rest. */
  readonly keepPrefix?: boolean;
}

/**
 * Secrets that look alike everywhere: provider API keys, bearer tokens, cloud keys, private keys.
 * Each is specific enough not to catch ordinary text; the last one catches `password=...` and
 * `"api_key": "..."` whatever the value looks like.
 */
const BUILT_IN: readonly Pattern[] = [
  { name: 'private key', regex: /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g },
  // OpenAI (sk-..., sk-proj-...), Anthropic (sk-ant-...), Langfuse (sk-lf-...) and their kin.
  { name: 'sk- key', regex: /\bsk-[A-Za-z0-9_-]{16,}/g },
  { name: 'Stripe key', regex: /\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}/g },
  { name: 'bearer token', regex: /(\bBearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi, keepPrefix: true },
  { name: 'basic credentials', regex: /(\bBasic\s+)[A-Za-z0-9+/]{12,}={0,2}/g, keepPrefix: true },
  { name: 'AWS access key id', regex: /\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b/g },
  { name: 'GitHub token', regex: /\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})/g },
  { name: 'Google API key', regex: /\bAIza[0-9A-Za-z_-]{35}\b/g },
  { name: 'Slack token', regex: /\bxox[abprs]-[A-Za-z0-9-]{10,}/g },
  { name: 'JSON web token', regex: /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g },
  { name: 'credentials in a URL', regex: /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@"']+:)[^\s@/"']+(?=@)/gi, keepPrefix: true },
  {
    name: 'named secret',
    regex:
      /((?:api[_-]?key|apikey|secret(?:[_-]?key)?|password|passwd|access[_-]?token|auth[_-]?token|client[_-]?secret|aws_secret_access_key|private[_-]?key)(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?)[^\s"'\\,;}&]{4,}/gi,
    keepPrefix: true,
  },
];

/** Environment variables whose values are secrets whatever they look like. */
const SECRET_NAME = /(?:API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?|PRIVATE_KEY)$/i;

export interface RedactorOptions {
  /** More patterns (regular expression sources), such as those in `KEEL_REDACT`. */
  readonly patterns?: readonly string[];
  /** Exact strings to redact wherever they appear: by default, the values of secret-named environment variables. */
  readonly secrets?: readonly string[];
}

/**
 * Replaces secrets with `[REDACTED]`: the built-in patterns, the configured ones, and the values
 * of environment variables named like secrets (`OPENAI_API_KEY`, `*_TOKEN`, ...). Everything Keel
 * shows or exports of a trace goes through one.
 */
export class Redactor {
  private readonly patterns: readonly Pattern[];
  private readonly secrets: readonly string[];

  constructor(options: RedactorOptions = {}) {
    this.patterns = [...BUILT_IN, ...(options.patterns ?? []).map(compile)];
    // Longest first, so a secret that contains another is replaced whole.
    this.secrets = [...new Set(options.secrets ?? [])].filter((secret) => secret.length >= 8).sort((a, b) => b.length - a.length);
  }

  redact(text: string): string {
    let result = text;
    for (const secret of this.secrets) result = result.split(secret).join(REDACTED);
    for (const { regex, keepPrefix } of this.patterns) {
      result = result.replace(regex, (match: string, prefix: unknown) =>
        keepPrefix && typeof prefix === 'string' ? `${prefix}${REDACTED}` : REDACTED,
      );
    }
    return result;
  }

  /** A copy of a JSON-like value with every string (keys included) redacted. */
  redactValue<T>(value: T): T {
    return redactDeep(value, (text) => this.redact(text)) as T;
  }

  /** `redact`, remembering its answers: for many spans that repeat the same messages. */
  memoized(): (text: string) => string {
    const seen = new Map<string, string>();
    return (text) => {
      let redacted = seen.get(text);
      if (redacted === undefined) {
        redacted = this.redact(text);
        seen.set(text, redacted);
      }
      return redacted;
    };
  }
}

/** A copy of a JSON-like value with `redact` applied to every string, keys included. */
export function redactDeep(value: unknown, redact: (text: string) => string): unknown {
  if (typeof value === 'string') return redact(value);
  if (Array.isArray(value)) return value.map((item) => redactDeep(item, redact));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [redact(key), redactDeep(item, redact)]));
  }
  return value;
}

function compile(source: string): Pattern {
  try {
    return { name: source, regex: new RegExp(source, 'g') };
  } catch (error) {
    throw new KeelError(
      `The redaction pattern ${JSON.stringify(source)} is not a valid regular expression (${error instanceof Error ? error.message : String(error)}). Fix KEEL_REDACT; Keel shows no trace until then rather than risk a secret.`,
    );
  }
}

/**
 * Splits `KEEL_REDACT` on the commas between patterns, not those inside one (`\d{2,4}`,
 * `[a,b]`, `(x|y,z)`, or an escaped `\,`).
 */
export function splitPatterns(list: string): string[] {
  const patterns: string[] = [];
  let current = '';
  let depth = 0;
  let inClass = false;
  for (let index = 0; index < list.length; index++) {
    const char = list[index]!;
    if (char === '\\' && index + 1 < list.length) {
      const next = list[index + 1]!;
      current += next === ',' ? ',' : char + next;
      index++;
      continue;
    }
    if (inClass) {
      if (char === ']') inClass = false;
    } else if (char === '[') {
      inClass = true;
    } else if (char === '(' || char === '{') {
      depth++;
    } else if ((char === ')' || char === '}') && depth > 0) {
      depth--;
    } else if (char === ',' && depth === 0) {
      patterns.push(current);
      current = '';
      continue;
    }
    current += char;
  }
  patterns.push(current);
  return patterns.map((pattern) => pattern.trim()).filter((pattern) => pattern !== '');
}

/** The values of the environment variables named like secrets. */
export function secretsFromEnv(env: NodeJS.ProcessEnv): string[] {
  return Object.entries(env)
    .filter((entry): entry is [string, string] => SECRET_NAME.test(entry[0]) && typeof entry[1] === 'string')
    .map(([, value]) => value.trim())
    .filter((value) => value.length >= 8);
}

/** The redactor for this environment: built-in patterns, `KEEL_REDACT`, and secret-named variables. */
export function redactorFromEnv(env: NodeJS.ProcessEnv = process.env, extraPatterns: readonly string[] = []): Redactor {
  return new Redactor({
    patterns: [...splitPatterns(env['KEEL_REDACT'] ?? ''), ...extraPatterns],
    secrets: secretsFromEnv(env),
  });
}
