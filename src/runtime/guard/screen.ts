import { decodeBase64Text, decodeTags } from './reveal';

/**
 * The injection screen: flags text in documents and tool output that reads like a prompt
 * injection. It is a heuristic. It knows common phrasings and hiding places and misses what it
 * does not know (a paraphrase, another language, an instruction split across fields), so it only
 * warns (the model and the trace); what stops an injected side effect is the taint rule and a
 * person's approval.
 */

export type InjectionPattern =
  | 'ignore_instructions'
  | 'role_impersonation'
  | 'tool_call'
  | 'exfiltration'
  | 'secrecy'
  | 'payment_redirect'
  | 'hidden_text'
  | 'encoded_instructions';

export interface ScreenFinding {
  readonly pattern: InjectionPattern;
  /** A short piece of the text around what matched (for the journal and the trace, when content is captured). */
  readonly excerpt: string;
}

/** What each pattern means, in words a person (and the model) reads. */
export const PATTERN_DESCRIPTIONS: Readonly<Record<InjectionPattern, string>> = {
  ignore_instructions: 'an instruction to ignore earlier instructions or rules',
  role_impersonation: 'text posing as a system message or telling the model to take another role',
  tool_call: 'an instruction to call a tool',
  exfiltration: 'an instruction to send data somewhere',
  secrecy: 'an instruction to keep something from the user',
  payment_redirect: 'a notice that payment details changed',
  hidden_text: 'hidden text with instructions in it',
  encoded_instructions: 'instructions hidden in an encoding',
};

/** Verbs of side effects, for instructions to act. */
const ACT = '(?:call|invoke|execute|run|trigger|use|send|forward|e-?mail|post|upload|transfer|wire|pay|share|submit|delete|book|reply|click|visit|open|fetch|load)';
/** Who an injection addresses when it speaks to the model. */
const AI = '(?:ai|a\\.i\\.|assistant|ai agent|llm|language model|chatbot|chat bot|gpt|claude|copilot)';
/** What an exfiltration asks for. */
const SENSITIVE =
  '(?:(?:the|this|our|your|whole|entire|full|previous|earlier|prior)\\s+(?:conversation|chat(?:\\s+history)?|context|system prompt)|conversation|chat history|system prompt|(?:all|every|the user\'?s?|your|these|previous|earlier|other)\\s+(?:the\\s+)?(?:messages|emails|mails|inbox|files|documents|notes|contacts|data|details|information|records|results|conversations)|passwords?|credentials?|api[\\s_-]?keys?|access tokens?|auth(?:entication)? tokens?|secrets?|private keys?|credit card(?:\\s+numbers?)?|card numbers?|social security|ssn|bank (?:details|account details)|personal (?:data|information|details)|(?:the\\s+)?contents? of|(?:the\\s+|this\\s+|our\\s+|your\\s+)?(?:attendee|contact|customer|client|user|employee|member|guest|mailing|patient)s?\\s+(?:list|database|records|data|details|emails)|(?:this|these|the|all)\\s+files?|(?:the|this|your)\\s+database)';
/** Where an exfiltration sends it: an address, a URL or a domain. */
const DESTINATION = '(?:https?:\\/\\/|www\\.|[\\w.+-]+@[\\w-]+\\.|\\b[\\w-]+\\.(?:com|net|org|io|co|dev|app|ai|xyz|info|biz|ru|cn|tk|top|site|online|me)\\b|this (?:address|url|endpoint|link|webhook)|the following (?:address|url|endpoint|link|webhook)|webhook)';

const BASE: readonly (readonly [InjectionPattern, RegExp])[] = [
  [
    'ignore_instructions',
    /\b(?:ignore|disregard|forget|override|bypass|neglect)\b[^.!?\n]{0,40}?\b(?:previous|prior|preceding|above|earlier|original|initial|all|any|your|existing|system|developer|safety)\b[^.!?\n]{0,30}?\b(?:instructions?|rules|prompts?|guidelines|directives?|policies|constraints|guardrails|safeguards|restrictions|programming|orders|commands)\b/i,
  ],
  ['ignore_instructions', /\b(?:new|updated|revised|real|actual|true)\s+system\s+(?:instructions?|prompt|message)\b/i],
  ['ignore_instructions', new RegExp(`\\b(?:new|updated|real|actual)\\s+instructions?\\s+(?:for|to)\\s+(?:the\\s+|any\\s+)?${AI}\\b`, 'i')],
  ['ignore_instructions', /\byour\s+(?:new|real|actual|true|only)\s+(?:task|instructions?|goal|objective|job|mission|purpose)\s+(?:is|are|will be|now)\b/i],
  ['role_impersonation', /<\|(?:im_start|im_end|system|endoftext|eot_id|start_header_id|end_header_id)\|>|\[\/?INST\]|<<\/?SYS>>|<\/?(?:system|system_prompt|sys_prompt)>/i],
  [
    'role_impersonation',
    /^[ \t>#*_-]*(?:system|developer|assistant)(?:\s+(?:message|prompt|note|override|instructions?|update))?\s*:\s*(?=[^\n]{0,120}?\b(?:you|your|ignore|must|assistant|ai|model|now|always|never)\b)/im,
  ],
  [
    'role_impersonation',
    new RegExp(
      `\\b(?:note|message|instructions?|attention|hey|dear)\\s+(?:to\\s+|for\\s+)?(?:the\\s+|any\\s+|all\\s+)?${AI}s?\\b(?:\\s+(?:systems?|models?|agents?|assistants?))?(?:\\s+(?:reading|processing|summari[sz]ing)\\s+this(?:\\s+\\w+)?)?\\s*[:,]`,
      'i',
    ),
  ],
  ['role_impersonation', new RegExp(`\\bif\\s+you\\s+are\\s+(?:an?\\s+)?${AI}\\b`, 'i')],
  [
    'role_impersonation',
    /\byou\s+are\s+(?:now\s+)?(?:no\s+longer\s+(?:bound|restricted|an?\s+(?:ai|assistant))|(?:now\s+)?(?:an?\s+)?(?:unrestricted|unfiltered|jailbroken|evil)\b|now\s+(?:an?\s+)?(?:different|new)\s+(?:ai|assistant|agent|model|persona|character)\b|now\s+in\s+(?:developer|debug|admin|god|maintenance)\s+mode\b|now\s+dan\b)/i,
  ],
  ['role_impersonation', /\b(?:enter|switch to|enable|activate)\s+(?:developer|debug|god|admin|jailbreak|dan)\s+mode\b|\bdo anything now\b|\bfrom\s+now\s+on,?\s+you\s+(?:are|will|must|shall|should)\b/i],
  ['role_impersonation', /\b(?:pretend|act)\s+(?:to\s+be|as\s+if\s+you|that\s+you\s+are|as\s+(?:an?\s+|the\s+)?(?:unrestricted|unfiltered|jailbroken|different|evil|new)\b)/i],
  ['tool_call', new RegExp(`(?:^|[\\s>(\\[.,;:!?"'])(?:p\\.?s\\.?\\s+)?${AI}s?\\s*[:,]\\s*(?:please\\s+|now\\s+|immediately\\s+|also\\s+)?(?:${ACT}|wire|cc|bcc|copy|ignore|forward)\\b`, 'im')],
  ['tool_call', /"(?:name|tool|function|tool_name|recipient_name)"\s*:\s*"[\w.:-]+"\s*,\s*"(?:arguments|args|parameters|input)"\s*:/i],
  ['tool_call', /<\/?(?:tool_call|tool_use|function_call|function_calls|antml:invoke)\b|"(?:tool_calls|function_call)"\s*:/i],
  [
    'tool_call',
    new RegExp(
      `\\b${AI}s?\\b[^.!?\\n]{0,60}?\\b(?:must|should|shall|needs?\\s+to|has\\s+to|is\\s+(?:required|instructed|expected|asked)\\s+to|are\\s+(?:required|instructed)\\s+to|will\\s+now)\\s+(?:immediately\\s+|now\\s+|also\\s+|first\\s+)?${ACT}\\b`,
      'i',
    ),
  ],
  [
    'tool_call',
    new RegExp(`(?:^|[.!?:]\\s+|\\n)\\s*(?:please\\s+|now\\s+|immediately\\s+)?(?:call|invoke|execute|trigger|use)\\s+(?:the\\s+|your\\s+)?\`?[a-z]+(?:_[a-z]+)+\`?\\s*(?:\\(|(?:tool|function)\\b)`, 'i'),
  ],
  ['exfiltration', new RegExp(`\\b(?:send|forward|e-?mail|post|upload|transmit|transfer|leak|exfiltrate|share|submit|copy|deliver|bcc|cc|report)\\b[^.!?\\n]{0,60}?\\b${SENSITIVE}[^.!?\\n]{0,80}?(?:\\b(?:to|at|into|via|using|with)\\b)[^.!?\\n]{0,40}?${DESTINATION}`, 'i')],
  ['exfiltration', /\b(?:append|add|include|insert|embed|encode|put|attach)\b[^.!?\n]{0,80}?\b(?:to|in|into|as)\s+(?:the\s+|a\s+|an\s+|this\s+|its\s+)?(?:(?:image|img|link|url)\s+)?(?:url|link|image|img|query(?:\s+string)?|querystring|query\s+parameter|parameter)\b/i],
  ['exfiltration', /!\[[^\]\n]{0,100}\]\(\s*(?:https?:)?\/\/[^)\s]*(?:\{|\}|%7B|\$\{|<|\[)[^)\n]*\)/i],
  ['exfiltration', /https?:\/\/[^\s"')]*[?&][\w-]+=(?:\{\{?|<|\[|%7B|\$\{)[\w\s.-]{1,40}(?:\}\}?|>|\]|%7D)/i],
  ['exfiltration', /\b(?:always|also|automatically|from now on)\s+(?:send|forward|cc|bcc|copy|email)\b[^.!?\n]{0,40}?\bto\s+[\w.+-]+@[\w-]+\./i],
  ['payment_redirect', /\b(?:bank|account|payment|banking|wire|remittance)\s+(?:details|information|info|instructions)\s+(?:have\s+|has\s+)?(?:changed|been\s+(?:changed|updated)|updated)\b|\bnew\s+(?:bank|account|banking|payment|remittance)\s+(?:details|information|account)\b/i],
  [
    'secrecy',
    /\b(?:do\s+not|don'?t|never|without)\s+(?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|reveal(?:ing)?|notify(?:ing)?|alert(?:ing)?|show(?:ing)?|warn(?:ing)?|ask(?:ing)?)\s+(?:this\s+to\s+|it\s+to\s+|anything\s+to\s+)?(?:the\s+)?(?:user|human|owner|operator)\b/i,
  ],
  ['secrecy', /\b(?:do\s+not|don'?t|never)\s+(?:mention|reveal|disclose|repeat|show)\s+(?:this|these|the)\s+(?:instructions?|message|note|step|text|request)\b[^.!?\n]{0,30}?\b(?:user|summary|answer|reply|response)\b/i],
];

/** Characters that render as nothing: zero-width spaces and joiners, word joiners, soft hyphens, BOMs. */
const INVISIBLE = /[\u200B\u200C\u200D\u200E\u200F\u2060-\u2064\uFEFF\u00AD\u180E]/g;
/** The ones that have no business in ordinary text (joiners and marks are left out: emoji and scripts use them). */
const ODD_INVISIBLE = /[\u200B\u2060-\u2064\u180E]|(?<=.)\uFEFF/gs;
const COMMENT = /<!--([\s\S]{0,4000}?)-->/g;
const HIDING_STYLE =
  /\bstyle\s*=\s*(["'])[^"']*?(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:\.0+)?(?:px|pt|em|rem|%)?\s*(?:;|["'!])|opacity\s*:\s*0(?:\.0+)?\s*(?:;|["'!])|(?<![\w-])color\s*:\s*(?:#fff(?:fff)?\b|white\b|rgba?\(\s*255\s*,\s*255\s*,\s*255)|(?:left|top|text-indent)\s*:\s*-\d{3,}|(?:height|width|max-height)\s*:\s*0(?:px)?\s*;[^"']*overflow\s*:\s*hidden)[^"']*\1/i;
const OPENING_TAG = /<([a-z][\w-]*)\b([^>]{0,500})>/gi;
/** How much of a hidden element is read. */
const HIDDEN_SPAN = 4000;
const HIDING_ATTRIBUTE = /(?:\shidden(?=[\s>=/]|$)|\saria-hidden\s*=\s*["']?true|\sclass\s*=\s*["'][^"']*\b(?:hidden|d-none|sr-only|visually-hidden|invisible)\b)/i;
const AI_WORDS = new RegExp(`\\b${AI}\\b|\\bsystem prompt\\b|\\binstructions?\\b`, 'i');
const DECODE_AND_OBEY = /\b(?:decode|base64[- ]?decode|rot13|reverse)\b[^.!?\n]{0,60}?\b(?:and|then)\s+(?:follow|execute|run|obey|do|carry out|act on)\b/i;
/** How much text is screened: content beyond it is not (a screen is not a parser of megabytes). */
const MAX_SCREENED = 256 * 1024;

/**
 * Screens untrusted text. `toolNames` are the agent's tools: an instruction naming one ("call
 * send_email ...") is a tool-call instruction. Returns one finding per pattern, in a fixed order.
 */
export function screenContent(text: string, toolNames: readonly string[] = []): ScreenFinding[] {
  const screened = text.length > MAX_SCREENED ? text.slice(0, MAX_SCREENED) : text;
  const found = new Map<InjectionPattern, string>();
  const add = (pattern: InjectionPattern, excerpt: string) => {
    if (!found.has(pattern)) found.set(pattern, excerpt);
  };
  const normalized = screened.normalize('NFKC');
  for (const finding of basePatterns(normalized, toolNames)) add(finding.pattern, finding.excerpt);
  for (const hidden of hiddenText(normalized, toolNames)) add('hidden_text', hidden);
  for (const encoded of encodedInstructions(normalized, toolNames)) add('encoded_instructions', encoded);
  const order = Object.keys(PATTERN_DESCRIPTIONS) as InjectionPattern[];
  return order.filter((pattern) => found.has(pattern)).map((pattern) => ({ pattern, excerpt: found.get(pattern)! }));
}

/** The patterns of plain text (no hiding places). */
function basePatterns(text: string, toolNames: readonly string[]): ScreenFinding[] {
  const findings: ScreenFinding[] = [];
  const seen = new Set<InjectionPattern>();
  for (const [pattern, regex] of [...BASE, ...toolPatterns(toolNames)]) {
    if (seen.has(pattern)) continue;
    const match = regex.exec(text);
    if (!match) continue;
    seen.add(pattern);
    findings.push({ pattern, excerpt: excerpt(text, match.index, match[0].length) });
  }
  return findings;
}

/** An instruction that names one of the agent's tools: "call send_email", "use transfer_money to". */
function toolPatterns(toolNames: readonly string[]): (readonly [InjectionPattern, RegExp])[] {
  const names = toolNames.filter((name) => name.length >= 3).map((name) => name.replace(/[-]/g, '\\-'));
  if (names.length === 0) return [];
  return [['tool_call', new RegExp(`\\b${ACT}\\b[^.!?\\n]{0,30}?\`?\\b(?:${names.join('|')})\\b`, 'i')]];
}

/** Hidden text that says something to a model: invisible characters, comments, styled-away elements. */
function hiddenText(text: string, toolNames: readonly string[]): string[] {
  const hits: string[] = [];
  const speaksToModel = (hidden: string) => AI_WORDS.test(hidden) || basePatterns(hidden, toolNames).length > 0;
  // Unicode tag characters are invisible ASCII (the "ASCII smuggling" trick): suspect whatever they say.
  for (const decoded of decodeTags(text)) hits.push(`invisible tag characters: ${decoded.slice(0, 80)}`);
  const odd = text.match(ODD_INVISIBLE)?.length ?? 0;
  if (odd > 0) {
    const visible = text.replace(INVISIBLE, '');
    const before = new Set(basePatterns(text, toolNames).map((finding) => finding.pattern));
    const revealed = basePatterns(visible, toolNames).filter((finding) => !before.has(finding.pattern));
    if (revealed.length > 0) hits.push(`zero-width characters inside: ${revealed[0]!.excerpt}`);
    else if (odd >= 8) hits.push(`${odd} zero-width characters`);
  }
  for (const match of text.matchAll(COMMENT)) {
    const inside = match[1] ?? '';
    if (speaksToModel(inside)) hits.push(`an HTML comment: ${excerpt(inside, 0, inside.length)}`);
  }
  for (const match of text.matchAll(OPENING_TAG)) {
    const attributes = match[2] ?? '';
    if (!HIDING_STYLE.test(attributes) && !HIDING_ATTRIBUTE.test(` ${attributes}`)) continue;
    const tag = (match[1] ?? '').toLowerCase();
    const from = match.index + match[0].length;
    const closing = new RegExp(`</${tag}\\b`, 'gi');
    closing.lastIndex = from;
    const close = closing.exec(text)?.index ?? -1;
    const inside = text.slice(from, close < 0 ? from + HIDDEN_SPAN : Math.min(close, from + HIDDEN_SPAN)).replace(/<[^>]*>/g, ' ');
    if (speaksToModel(inside)) hits.push(`a hidden <${tag}>: ${excerpt(inside, 0, inside.length)}`);
  }
  return hits;
}

/** Base64 that decodes to instructions, and requests to decode something and obey it. */
function encodedInstructions(text: string, toolNames: readonly string[]): string[] {
  const hits: string[] = [];
  const asked = DECODE_AND_OBEY.exec(text);
  if (asked) hits.push(excerpt(text, asked.index, asked[0].length));
  for (const decoded of decodeBase64Text(text)) {
    if (AI_WORDS.test(decoded) || basePatterns(decoded, toolNames).length > 0) hits.push(`base64 of: ${excerpt(decoded, 0, decoded.length)}`);
  }
  return hits;
}

function excerpt(text: string, index: number, length: number): string {
  const from = Math.max(0, index - 20);
  const to = Math.min(text.length, index + Math.min(length, 100) + 20);
  const piece = text.slice(from, to).replace(INVISIBLE, '').replace(/\s+/g, ' ').trim();
  return `${from > 0 ? '…' : ''}${piece}${to < text.length ? '…' : ''}`;
}
