import assert from 'node:assert/strict';
import { z } from 'zod';
import { defineAgent, defineTool } from '../../src/runtime/agent/define';
import { KeelError } from '../../src/runtime/errors';
import { scriptedModel } from '../../src/runtime/model/scripted';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { buildTrace } from '../../src/runtime/trace/buildTrace';
import { auditRun } from '../../src/runtime/trace/audit';
import { otlpJson, toReadableSpans } from '../../src/runtime/trace/otlp';
import { REDACTED, Redactor, redactorFromEnv, splitPatterns } from '../../src/runtime/trace/redact';
import { SECRETS } from '../support/secrets';
import { useTraceRuns } from '../support/traceRuns';


describe('redaction', () => {
  describe('Redactor', () => {
    const redactor = new Redactor();

    it('redacts common API keys and tokens, keeping the label before them', () => {
      assert.equal(redactor.redact(`key ${SECRETS.openai}`), `key ${REDACTED}`);
      assert.equal(redactor.redact(SECRETS.anthropic), REDACTED);
      assert.equal(redactor.redact(`Authorization: Bearer ${SECRETS.bearer}`), `Authorization: Bearer ${REDACTED}`);
      assert.equal(redactor.redact(`id ${SECRETS.aws}.`), `id ${REDACTED}.`);
      assert.equal(redactor.redact(SECRETS.github), REDACTED);
      assert.equal(redactor.redact('AIzaSyA1234567890abcdefghijklmnopqrstuv'), REDACTED);
      assert.equal(redactor.redact('xoxb-1234567890-abcdefghij'), REDACTED);
      assert.equal(redactor.redact('postgres://ada:s3cretpw@db.example.com/keel'), `postgres://ada:${REDACTED}@db.example.com/keel`);
      assert.equal(redactor.redact(`password=${SECRETS.password}&user=ada`), `password=${REDACTED}&user=ada`);
      assert.equal(redactor.redact(`{"api_key": "abcd1234efgh"}`), `{"api_key": "${REDACTED}"}`);
      assert.equal(
        redactor.redact('-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----'),
        REDACTED,
      );
    });

    it('redacts inside JSON that was serialized twice, and leaves it valid JSON', () => {
      const nested = JSON.stringify({ result: JSON.stringify({ password: SECRETS.password, token: `Bearer ${SECRETS.bearer}` }) });
      const redacted = redactor.redact(nested);
      assert.ok(!redacted.includes(SECRETS.password) && !redacted.includes(SECRETS.bearer), redacted);
      assert.doesNotThrow(() => JSON.parse(JSON.parse(redacted).result as string) as unknown);
    });

    it('leaves ordinary text alone', () => {
      const text = 'Booked UA66 for $598, confirmation KEEL-UA66-30; 1,742 tokens; run_01m8ct2dbby4etr9xe0ekv; sha 3e5671337bc66845.';
      assert.equal(redactor.redact(text), text);
    });

    it('adds KEEL_REDACT patterns (commas inside a pattern kept) and secret-named environment values', () => {
      assert.deepEqual(splitPatterns('ACME-\\d{6}, [a,b]x ,(?:p|q,r)z,a\\,b'), ['ACME-\\d{6}', '[a,b]x', '(?:p|q,r)z', 'a,b']);
      const fromEnv = redactorFromEnv({ KEEL_REDACT: 'ACME-\\d{6},internal-[a-z]{3,5}', MY_SERVICE_TOKEN: SECRETS.fromEnv, HOME: '/root/home-dir' });
      assert.equal(fromEnv.redact(`ids ${SECRETS.custom} internal-abcd`), `ids ${REDACTED} ${REDACTED}`);
      assert.equal(fromEnv.redact(`value ${SECRETS.fromEnv}`), `value ${REDACTED}`);
      assert.equal(fromEnv.redact('/root/home-dir'), '/root/home-dir', 'only variables named like secrets count');
    });

    it('refuses an invalid pattern with a sentence rather than show unredacted text', () => {
      assert.throws(() => redactorFromEnv({ KEEL_REDACT: 'ok,(unclosed' }), (error: unknown) => error instanceof KeelError && /not a valid regular expression/.test(error.message));
    });
  });

  describe('traces', () => {
    const runs = useTraceRuns();

    it('keeps every secret out of every byte exported, in every format, with content captured', async () => {
      const lookup = defineTool({
        name: 'lookup',
        description: 'Looks up credentials.',
        args: z.object({ password: z.string(), account: z.string() }),
        effect: 'none',
        run: () => {
          throw new Error(`login failed for Bearer ${SECRETS.bearer} with ${SECRETS.aws}`);
        },
      });
      const agent = defineAgent({
        name: 'leaky',
        instructions: 'Leak.',
        model: scriptedModel([
          { text: `Using ${SECRETS.openai}`, toolCalls: [{ name: 'lookup', args: { password: SECRETS.password, account: SECRETS.custom } }] },
          `Done: ${SECRETS.github} ${SECRETS.anthropic} ${SECRETS.fromEnv}`,
        ]),
        tools: [lookup],
      });
      const { source } = await runs.run(agent, `My key is ${SECRETS.openai}, account ${SECRETS.custom}, token ${SECRETS.fromEnv}`);
      const redactor = redactorFromEnv({ KEEL_REDACT: 'ACME-\\d{6}', LEGACY_API_KEY: SECRETS.fromEnv });
      const spans = buildTrace(source, { captureContent: true, redactor });
      const readable = toReadableSpans(spans, { now: 0 });

      const exported = [
        spans.map((span) => JSON.stringify(span)).join('\n'),
        otlpJson(spans),
        Buffer.from(ProtobufTraceSerializer.serializeRequest(readable) ?? new Uint8Array()).toString('latin1'),
        JSON.stringify(auditRun(source, redactor)),
      ];
      for (const bytes of exported) {
        for (const [name, secret] of Object.entries(SECRETS)) assert.ok(!bytes.includes(secret), `the ${name} secret leaked into: ${bytes.slice(0, 200)}…`);
        assert.ok(bytes.includes(REDACTED));
      }
      assert.ok(spans.some((span) => String(span.attributes['gen_ai.tool.call.arguments'] ?? '').includes(REDACTED)), 'content was captured, redacted');
      assert.ok(spans.some((span) => (span.statusMessage ?? '').includes(`Bearer ${REDACTED}`)), 'status messages are redacted');
    });
  });
});
