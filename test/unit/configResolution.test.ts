import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConfigEntry } from '../../src/runtime/config/resolveConfig';
import { Host } from '../../src/runtime/host/host';
import { describeOutcome, KEEL } from '../support/keelCli';
import { writeProbeAgent, writeProject } from '../support/configProject';
import { runNode, testEnv, type Finished } from '../support/processes';
import { RuntimeProcess } from '../support/runtimeProcess';
import { useTempDirs } from '../support/tempDir';

/**
 * How each configuration key is resolved: every source that can set it, in the one order (flag,
 * environment, VS Code setting, keel.config.ts, default), through the real `keel config` (and, for
 * VS Code settings, which only the editor has, through Host.configure, as the runtime process
 * resolves its settings); bad values from each source; broken keel.config.ts files.
 */

type Kind = 'flag' | 'env' | 'setting' | 'file';

/** One source of one key: what it is given, and what the key then resolves to. */
interface Given {
  readonly kind: Kind;
  /** The flag (without dashes), the variable, the setting, or the key's path in keel.config.ts. */
  readonly name: string;
  readonly give: unknown;
  readonly expect: (root: string) => unknown;
}

interface KeyRow {
  readonly key: string;
  /** Its sources, highest first. */
  readonly sources: readonly Given[];
  readonly fallback: (root: string) => unknown;
}

/** The flags `keel config` takes: a flag only other commands take (`keel export --endpoint`) is checked in process. */
const KEEL_CONFIG_FLAGS = new Set(['db', 'model', 'engine', 'restate-url', 'restate-admin']);

const same =
  (value: unknown) =>
  (): unknown =>
    value;
const inRoot =
  (path: string) =>
  (root: string): string =>
    join(root, path);
const price = (inputPerMTok: number, outputPerMTok: number) => ({ inputPerMTok, outputPerMTok });

const KEYS: readonly KeyRow[] = [
  {
    key: 'database',
    sources: [
      { kind: 'flag', name: 'db', give: 'from-flag.db', expect: inRoot('from-flag.db') },
      { kind: 'env', name: 'KEEL_DB', give: 'from-env.db', expect: inRoot('from-env.db') },
      { kind: 'setting', name: 'keel.databasePath', give: 'from-setting.db', expect: inRoot('from-setting.db') },
      { kind: 'file', name: 'database', give: 'runs/from-file.db', expect: inRoot('runs/from-file.db') },
    ],
    fallback: inRoot('.keel/keel.db'),
  },
  {
    key: 'model',
    sources: [
      { kind: 'flag', name: 'model', give: 'openai:from-flag', expect: same('openai:from-flag') },
      { kind: 'env', name: 'KEEL_MODEL', give: 'openai:from-env', expect: same('openai:from-env') },
      { kind: 'setting', name: 'keel.model', give: 'openai:from-setting', expect: same('openai:from-setting') },
      { kind: 'file', name: 'model', give: 'openai:from-file', expect: same('openai:from-file') },
    ],
    fallback: same(undefined),
  },
  {
    key: 'prices',
    sources: [
      { kind: 'env', name: 'KEEL_PRICES', give: JSON.stringify({ 'env-model': price(1, 2) }), expect: same([{ 'env-model': price(1, 2) }]) },
      { kind: 'setting', name: 'keel.prices', give: { 'setting-model': price(3, 4) }, expect: same([{ 'setting-model': price(3, 4) }]) },
      // A path, relative to the project root: the test writes prices.json there.
      { kind: 'file', name: 'prices', give: 'prices.json', expect: same([{ 'file-model': price(5, 6) }]) },
    ],
    fallback: same([]),
  },
  { key: 'budget.run', sources: [{ kind: 'file', name: 'budget.run', give: { usd: 0.5, steps: 7 }, expect: same({ usd: 0.5, steps: 7 }) }], fallback: same(undefined) },
  {
    key: 'budget.dailyUsd',
    sources: [
      { kind: 'env', name: 'KEEL_DAILY_USD', give: '$12.5', expect: same(12.5) },
      { kind: 'setting', name: 'keel.budget.dailyUsd', give: 7, expect: same(7) },
      { kind: 'file', name: 'budget.dailyUsd', give: 3, expect: same(3) },
    ],
    fallback: same(undefined),
  },
  {
    key: 'budget.pools',
    sources: [{ kind: 'file', name: 'budget.pools', give: [{ id: 'team', limits: { usd: 100 } }], expect: same([{ id: 'team', limits: { usd: 100 } }]) }],
    fallback: same([]),
  },
  { key: 'budget.waitMs', sources: [{ kind: 'file', name: 'budget.waitMs', give: 5000, expect: same(5000) }], fallback: same(undefined) },
  {
    key: 'sandbox.default',
    sources: [
      { kind: 'env', name: 'KEEL_SANDBOX', give: 'all', expect: same('all') },
      { kind: 'setting', name: 'keel.sandbox.default', give: 'marked', expect: same('marked') },
      { kind: 'file', name: 'sandbox.default', give: 'all', expect: same('all') },
    ],
    fallback: same('marked'),
  },
  {
    key: 'sandbox.tier',
    sources: [
      { kind: 'env', name: 'KEEL_SANDBOX_TIER', give: 'process', expect: same('process') },
      { kind: 'file', name: 'sandbox.tier', give: 'os', expect: same('os') },
    ],
    fallback: same('isolate'),
  },
  {
    key: 'trace.captureContent',
    sources: [
      { kind: 'env', name: 'KEEL_CAPTURE_CONTENT', give: 'yes', expect: same(true) },
      { kind: 'env', name: 'OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT', give: 'false', expect: same(false) },
      { kind: 'setting', name: 'keel.trace.captureContent', give: true, expect: same(true) },
      { kind: 'file', name: 'trace.captureContent', give: false, expect: same(false) },
    ],
    fallback: same(false),
  },
  { key: 'trace.redact', sources: [{ kind: 'file', name: 'trace.redact', give: ['ZQX-\\d+'], expect: same(['ZQX-\\d+']) }], fallback: same([]) },
  {
    key: 'trace.otlp.endpoint',
    sources: [
      { kind: 'flag', name: 'endpoint', give: 'http://flag.test:4318', expect: same('http://flag.test:4318/v1/traces') },
      { kind: 'env', name: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', give: 'http://traces.test:4318/custom', expect: same('http://traces.test:4318/custom') },
      { kind: 'env', name: 'OTEL_EXPORTER_OTLP_ENDPOINT', give: 'http://base.test:4318/', expect: same('http://base.test:4318/v1/traces') },
      { kind: 'file', name: 'trace.otlp.endpoint', give: 'http://file.test:4318', expect: same('http://file.test:4318/v1/traces') },
    ],
    fallback: same(undefined),
  },
  {
    key: 'engine',
    sources: [
      { kind: 'flag', name: 'engine', give: 'restate', expect: same('restate') },
      { kind: 'env', name: 'KEEL_ENGINE', give: 'local', expect: same('local') },
      { kind: 'file', name: 'engine.kind', give: 'restate', expect: same('restate') },
    ],
    fallback: same('local'),
  },
  {
    key: 'engine.restate.ingressUrl',
    sources: [
      { kind: 'flag', name: 'restate-url', give: 'http://flag.test:8080', expect: same('http://flag.test:8080') },
      { kind: 'env', name: 'KEEL_RESTATE_URL', give: 'http://env.test:8080', expect: same('http://env.test:8080') },
      { kind: 'file', name: 'engine.restate.ingressUrl', give: 'http://file.test:8080', expect: same('http://file.test:8080') },
    ],
    fallback: same('http://127.0.0.1:8080'),
  },
  {
    key: 'engine.restate.adminUrl',
    sources: [
      { kind: 'flag', name: 'restate-admin', give: 'http://flag.test:9070', expect: same('http://flag.test:9070') },
      { kind: 'env', name: 'KEEL_RESTATE_ADMIN_URL', give: 'http://env.test:9070', expect: same('http://env.test:9070') },
      { kind: 'file', name: 'engine.restate.adminUrl', give: 'http://file.test:9070', expect: same('http://file.test:9070') },
    ],
    fallback: same('http://127.0.0.1:9070'),
  },
  { key: 'approvals.timeoutMs', sources: [{ kind: 'file', name: 'approvals.timeoutMs', give: 60_000, expect: same(60_000) }], fallback: same(undefined) },
  {
    key: 'approvals.onTimeout',
    sources: [{ kind: 'file', name: 'approvals.onTimeout', give: { escalateTo: 'lead' }, expect: same({ escalateTo: 'lead' }) }],
    fallback: same(undefined),
  },
  {
    key: 'golden.database',
    sources: [
      { kind: 'setting', name: 'keel.golden.database', give: 'from-setting-golden.db', expect: inRoot('from-setting-golden.db') },
      { kind: 'file', name: 'golden.database', give: 'golden/from-file.db', expect: inRoot('golden/from-file.db') },
    ],
    fallback: inRoot('.keel/golden.db'),
  },
  {
    key: 'alerts',
    sources: [
      {
        kind: 'file',
        name: 'alerts',
        // approvals.onTimeout escalates to 'lead' (above): a channel of that name must exist.
        give: { channels: { lead: { type: 'editor' } }, rules: [{ on: 'run_failed', to: 'lead' }] },
        expect: same({ channels: { lead: { type: 'editor' } }, rules: [{ on: 'run_failed', to: 'lead' }], dedupWindowMs: 3_600_000 }),
      },
    ],
    fallback: same({ channels: {}, rules: [], dedupWindowMs: 3_600_000 }),
  },
  {
    key: 'review.sample',
    sources: [{ kind: 'file', name: 'review.sample', give: [{ tool: 'charge', rate: 0.1 }], expect: same([{ tool: 'charge', rate: 0.1 }]) }],
    fallback: same([]),
  },
];

/** How `keel config` (and Host.configure) names a source. */
function sourceOf(given: Given): string {
  switch (given.kind) {
    case 'flag':
      return `flag --${given.name}`;
    case 'env':
      return `env ${given.name}`;
    case 'setting':
      return `setting ${given.name}`;
    case 'file':
      return 'keel.config.ts';
  }
}

/** What the front ends give Host.configure: flags, environment, settings and the keel.config.ts object. */
interface Inputs {
  readonly flags: Record<string, string>;
  readonly env: Record<string, string>;
  readonly settings: Record<string, unknown>;
  readonly file: Record<string, unknown>;
}

function emptyInputs(): Inputs {
  return { flags: {}, env: {}, settings: {}, file: {} };
}

function give(inputs: Inputs, given: Given): void {
  switch (given.kind) {
    case 'flag':
      inputs.flags[given.name] = String(given.give);
      break;
    case 'env':
      inputs.env[given.name] = String(given.give);
      break;
    case 'setting':
      inputs.settings[given.name] = given.give;
      break;
    case 'file':
      setPath(inputs.file, given.name.split('.'), given.give);
      break;
  }
}

function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  const [head, ...rest] = path;
  if (head === undefined) return;
  if (rest.length === 0) {
    target[head] = value;
    return;
  }
  const next = (target[head] ??= {}) as Record<string, unknown>;
  setPath(next, rest, value);
}

/** What `keel config --json` prints. */
interface ConfigReport {
  readonly root: string;
  readonly file: string | null;
  readonly values: readonly ConfigEntry[];
  readonly problems: readonly string[];
}

/** The environment of a keel process: the tests' own, without Keel's or OpenTelemetry's variables, and `extra`. */
function keelEnv(extra: Readonly<Record<string, string>>): NodeJS.ProcessEnv {
  const env = testEnv();
  for (const name of Object.keys(env)) if (name.startsWith('OTEL_')) delete env[name];
  return { ...env, ...extra };
}

function keel(root: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<Finished> {
  return runNode(KEEL, args, { cwd: root, env: keelEnv(env), timeoutMs: 60_000 });
}

async function keelConfig(root: string, flags: Readonly<Record<string, string>>, env: Readonly<Record<string, string>>): Promise<{ result: Finished; report: ConfigReport }> {
  const args = ['config', '--json', ...Object.entries(flags).flatMap(([name, value]) => [`--${name}`, value])];
  const result = await keel(root, args, env);
  try {
    return { result, report: JSON.parse(result.stdout) as ConfigReport };
  } catch {
    throw new Error(`keel config printed no JSON: ${describeOutcome(result)}`);
  }
}

/** Mismatches between what was resolved and what each key's first usable source says, as lines. */
function compare(entries: readonly ConfigEntry[], root: string, layer: number, usable: (given: Given) => boolean): string[] {
  const wrong: string[] = [];
  for (const row of KEYS) {
    const winner = row.sources.slice(layer).find(usable);
    const expected = { value: winner ? winner.expect(root) : row.fallback(root), source: winner ? sourceOf(winner) : 'default' };
    const entry = entries.find((candidate) => candidate.key === row.key);
    const actual = { value: entry?.value, source: entry?.source };
    try {
      assert.deepEqual(actual, expected);
    } catch {
      wrong.push(`${row.key}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
    }
  }
  return wrong;
}

/** The inputs of a layer: every key set by its sources from `layer` on (the higher ones left out), those that `usable`. */
function layerInputs(layer: number, usable: (given: Given) => boolean): Inputs {
  const inputs = emptyInputs();
  for (const row of KEYS) for (const given of row.sources.slice(layer).filter(usable)) give(inputs, given);
  return inputs;
}

const DEEPEST = Math.max(...KEYS.map((row) => row.sources.length));

describe('configuration: every key from every source, in one order', function () {
  this.timeout(120_000);
  const tempDir = useTempDirs();

  /** A project whose keel.config.ts holds `file` (none when empty), with the price file a key names. */
  function project(file: Record<string, unknown>): string {
    const root = writeProject(tempDir('keel-config-'), Object.keys(file).length > 0 ? file : undefined);
    writeFileSync(join(root, 'prices.json'), JSON.stringify({ 'file-model': price(5, 6) }));
    return root;
  }

  it('keel config reports each key from its highest source, and from the next one down once that is gone', async () => {
    const cli = (given: Given) => given.kind === 'env' || given.kind === 'file' || (given.kind === 'flag' && KEEL_CONFIG_FLAGS.has(given.name));
    const wrong: string[] = [];
    for (let layer = 0; layer <= DEEPEST; layer++) {
      const inputs = layerInputs(layer, cli);
      const root = project(inputs.file);
      const { result, report } = await keelConfig(root, inputs.flags, inputs.env);
      assert.equal(result.code, 0, describeOutcome(result));
      assert.deepEqual(report.problems, []);
      assert.equal(report.root, root);
      assert.equal(report.file, Object.keys(inputs.file).length > 0 ? join(root, 'keel.config.ts') : null);
      assert.deepEqual(
        report.values.map((entry) => entry.key),
        KEYS.map((row) => row.key),
        'keel config lists every key, in order',
      );
      wrong.push(...compare(report.values, root, layer, cli).map((line) => `with the top ${layer} sources gone, ${line}`));
    }
    assert.deepEqual(wrong, []);
  });

  it('in the editor, a VS Code setting comes after the environment and before keel.config.ts (as the runtime process resolves it)', async () => {
    const all = () => true;
    const wrong: string[] = [];
    for (let layer = 0; layer <= DEEPEST; layer++) {
      const inputs = layerInputs(layer, all);
      const root = project(inputs.file);
      const resolved = await Host.configure({ cwd: root, flags: inputs.flags, env: inputs.env, settings: inputs.settings });
      assert.deepEqual(resolved.problems, []);
      wrong.push(...compare(resolved.entries, root, layer, all).map((line) => `with the top ${layer} sources gone, ${line}`));
    }
    assert.deepEqual(wrong, []);
  });

  it('keel config hides the password of a PostgreSQL database', async () => {
    const root = project({});
    const { report } = await keelConfig(root, {}, { KEEL_DB: 'postgres://keel:s3cret@db.test:5432/keel' });
    assert.deepEqual(
      report.values.find((entry) => entry.key === 'database'),
      { key: 'database', value: 'postgres://keel:***@db.test:5432/keel', source: 'env KEEL_DB' },
    );
    assert.doesNotMatch(JSON.stringify(report), /s3cret/);
  });

  describe('a value that cannot be used', () => {
    /** Bad values from the command line, the environment and keel.config.ts, each for its own key, with the sentence that names its source. */
    const BAD: readonly (Given & { readonly key: string; readonly says: RegExp })[] = [
      { key: 'engine', kind: 'flag', name: 'engine', give: 'elsewhere', expect: same(undefined), says: /^--engine must be local or restate \(got "elsewhere"\)\.$/ },
      { key: 'engine.restate.adminUrl', kind: 'flag', name: 'restate-admin', give: 'admin.test:9070', expect: same(undefined), says: /^--restate-admin must be an http:\/\/ or https:\/\/ URL/ },
      { key: 'sandbox.default', kind: 'env', name: 'KEEL_SANDBOX', give: 'most', expect: same(undefined), says: /^KEEL_SANDBOX must be "marked" .* or "all" \(got "most"\)\.$/ },
      { key: 'budget.dailyUsd', kind: 'env', name: 'KEEL_DAILY_USD', give: 'lots', expect: same(undefined), says: /^KEEL_DAILY_USD must be a number of dollars of at least 0 \(got "lots"\)\.$/ },
      { key: 'trace.captureContent', kind: 'env', name: 'KEEL_CAPTURE_CONTENT', give: 'maybe', expect: same(undefined), says: /^KEEL_CAPTURE_CONTENT must be true or false/ },
      { key: 'prices', kind: 'env', name: 'KEEL_PRICES', give: '{"m": 1}', expect: same(undefined), says: /^KEEL_PRICES: the price of "m" needs inputPerMTok and outputPerMTok/ },
      { key: 'trace.otlp.endpoint', kind: 'env', name: 'OTEL_EXPORTER_OTLP_ENDPOINT', give: 'collector.test', expect: same(undefined), says: /^OTEL_EXPORTER_OTLP_ENDPOINT must be an http:\/\/ or https:\/\/ URL/ },
      { key: 'engine.restate.ingressUrl', kind: 'env', name: 'KEEL_RESTATE_URL', give: 'ftp://ingress.test', expect: same(undefined), says: /^KEEL_RESTATE_URL must be an http:\/\/ or https:\/\/ URL \(got "ftp:\/\/ingress\.test"\)\.$/ },
      { key: 'golden.database', kind: 'setting', name: 'keel.golden.database', give: 12, expect: same(undefined), says: /^keel\.golden\.database must be a non-empty string \(got 12\)\.$/ },
    ];

    it('keel config marks it not usable, names its source in one sentence, and exits 1', async () => {
      const cli = BAD.filter((bad) => bad.kind !== 'setting');
      const inputs = emptyInputs();
      for (const bad of cli) give(inputs, bad);
      const { result, report } = await keelConfig(project({}), inputs.flags, inputs.env);
      assert.equal(result.code, 1, describeOutcome(result));
      const problems = [...report.problems];
      for (const bad of cli) {
        assert.deepEqual(report.values.find((entry) => entry.key === bad.key), { key: bad.key, value: '(not usable)', source: sourceOf(bad) });
        const said = problems.findIndex((problem) => bad.says.test(problem));
        assert.ok(said >= 0, `no problem says ${String(bad.says)}: ${problems.join(' | ')}`);
        problems.splice(said, 1);
      }
      assert.deepEqual(problems, [], 'one sentence per value');

      // keel.config.ts may name a price file that is not there: the sentence names keel.config.ts and the file.
      const root = project({ prices: 'missing-prices.json' });
      const fromFile = await keelConfig(root, {}, {});
      assert.equal(fromFile.result.code, 1, describeOutcome(fromFile.result));
      assert.deepEqual(fromFile.report.problems, [`keel.config.ts names the price file ${join(root, 'missing-prices.json')}, which does not exist.`]);
      assert.deepEqual(fromFile.report.values.find((entry) => entry.key === 'prices'), { key: 'prices', value: '(not usable)', source: 'keel.config.ts' });
    });

    it('a VS Code setting that cannot be used is named as the setting', async () => {
      const root = project({});
      const settings = { 'keel.golden.database': 12, 'keel.sandbox.default': 'most', 'keel.budget.dailyUsd': -3, 'keel.trace.captureContent': 'perhaps', 'keel.prices': 'nowhere.json' };
      const resolved = await Host.configure({ cwd: root, env: {}, settings });
      assert.deepEqual(
        resolved.problems.map((problem) => problem.message),
        [
          `keel.prices names the price file ${join(root, 'nowhere.json')}, which does not exist.`,
          'keel.budget.dailyUsd must be a number of dollars of at least 0 (got -3).',
          'keel.sandbox.default must be "marked" (only tools marked sandbox run in it) or "all" (got "most").',
          'keel.trace.captureContent must be true or false (1 or 0; got "perhaps").',
          'keel.golden.database must be a non-empty string (got 12).',
        ],
      );
    });

    it('keel run refuses to start with it: exit 1 (2 for a flag) with the sentence, and records no run', async () => {
      const root = project({});
      const agent = writeProbeAgent(root);
      const fromEnv = await keel(root, ['run', agent, '--input', 'go'], { KEEL_SANDBOX: 'most' });
      assert.equal(fromEnv.code, 1, describeOutcome(fromEnv));
      // Its last line (a note such as 'created a new run database' may come before it).
      assert.match(fromEnv.stderr, /(?:^|\n)keel: KEEL_SANDBOX must be "marked" \(only tools marked sandbox run in it\) or "all" \(got "most"\)\.\n$/);
      const fromFlag = await keel(root, ['run', agent, '--input', 'go', '--engine', 'elsewhere']);
      assert.equal(fromFlag.code, 2, describeOutcome(fromFlag));
      assert.match(fromFlag.stderr, /^keel: --engine must be local or restate \(got "elsewhere"\)\.\nRun `keel help` for usage\.\n$/);
      const runs = await keel(root, ['runs', '--json']);
      assert.deepEqual(JSON.parse(runs.stdout), [], describeOutcome(runs));
    });

    it('the runtime process refuses to start a run with it, naming the setting, and keeps serving', async () => {
      const root = project({});
      const agent = writeProbeAgent(root);
      const proc = new RuntimeProcess(root);
      try {
        await proc.request('initialize', { workspaceRoot: root, settings: { 'keel.sandbox.default': 'most' } });
        await assert.rejects(proc.request('startRun', { agentFile: agent, input: 'go' }), {
          message: 'keel.sandbox.default must be "marked" (only tools marked sandbox run in it) or "all" (got "most").',
        });
        assert.deepEqual(await proc.request('listRuns', {}), []);
        assert.ok(proc.running, 'the runtime process is still serving');
      } finally {
        await proc.kill();
      }
    });

    it('a runtime process told of a database it cannot use opens none and says why', async () => {
      const root = project({});
      const proc = new RuntimeProcess(root);
      try {
        await assert.rejects(proc.request('initialize', { workspaceRoot: root, settings: { 'keel.databasePath': 42 } }), {
          message: 'keel.databasePath must be a non-empty string (got 42).',
        });
        assert.ok(proc.running, 'the runtime process is still serving');
        assert.equal(existsSync(join(root, '.keel')), false, 'no database was created');
      } finally {
        await proc.kill();
      }
    });
  });

  describe('a keel.config.ts that does not load', () => {
    /** Broken files, each with the text at the place its sentence must point to. */
    const BROKEN: readonly { readonly what: string; readonly text: string; readonly at: string; readonly says: RegExp }[] = [
      {
        what: 'a syntax error',
        text: `import { defineConfig } from 'keel-agents';\n\nexport default defineConfig({\n  database: 'runs.db'\n  model: 'openai:gpt-4o-mini',\n});\n`,
        at: "model: 'openai",
        says: /Expected "}" but found "model"$/,
      },
      {
        what: 'a key Keel does not know (with defineConfig)',
        text: `import { defineConfig } from 'keel-agents';\n\nexport default defineConfig({\n  trace: {\n    captureContnet: true,\n  },\n});\n`,
        at: 'captureContnet',
        says: /trace\.captureContnet is not a key Keel knows \(see docs\/configuration\.md\)\.$/,
      },
      {
        what: 'a key Keel does not know (a plain object)',
        text: `export default {\n  databse: 'runs.db',\n};\n`,
        at: 'databse',
        says: /databse is not a key Keel knows \(see docs\/configuration\.md\)\.$/,
      },
      {
        what: 'a value of the wrong kind (with defineConfig)',
        text: `import { defineConfig } from 'keel-agents';\n\nexport default defineConfig({\n  sandbox: { default: 'most' },\n});\n`,
        at: "default: 'most'",
        says: /sandbox\.default: Invalid option: expected one of "marked"\|"all" \(see docs\/configuration\.md\)\.$/,
      },
      {
        what: 'a value of the wrong kind (a plain object)',
        text: `export default {\n  budget: {\n    dailyUsd: '20',\n  },\n};\n`,
        at: "dailyUsd: '20'",
        says: /budget\.dailyUsd: Invalid input: expected number, received string \(see docs\/configuration\.md\)\.$/,
      },
      {
        what: 'no default export',
        text: `import { defineConfig } from 'keel-agents';\n\nexport const config = defineConfig({ database: 'runs.db' });\n`,
        at: 'export const config',
        says: /must export its configuration as the default: export default defineConfig\(\{ \.\.\. \}\)\.$/,
      },
    ];

    for (const broken of BROKEN) {
      it(`${broken.what}: one sentence with file, line and column, and keel run runs nothing`, async () => {
        const root = project({});
        writeFileSync(join(root, 'keel.config.ts'), broken.text);
        const before = broken.text.slice(0, broken.text.indexOf(broken.at)).split('\n');
        const where = `keel.config.ts:${before.length}:${(before.at(-1)?.length ?? 0) + 1}`;
        const agent = writeProbeAgent(root);
        const run = await keel(root, ['run', agent, '--input', 'go']);
        assert.equal(run.code, 1, describeOutcome(run));
        const lines = run.stderr.split('\n').filter((line) => line !== '');
        assert.equal(lines.length, 1, `one sentence: ${run.stderr}`);
        assert.ok(lines[0]?.startsWith(`keel: ${where}: `), `${lines[0] ?? ''} should start with keel: ${where}`);
        assert.match(lines[0] ?? '', broken.says);
        assert.equal(existsSync(join(root, '.keel')), false, 'no database was created');
      });
    }

    it('keel config says the same sentence as keel run', async () => {
      const root = project({});
      writeFileSync(join(root, 'keel.config.ts'), BROKEN[1]?.text ?? '');
      const agent = writeProbeAgent(root);
      const [run, config] = await Promise.all([keel(root, ['run', agent, '--input', 'go']), keel(root, ['config'])]);
      assert.equal(config.code, 1, describeOutcome(config));
      assert.match(config.stderr, /^keel: keel\.config\.ts:5:5: trace\.captureContnet is not a key Keel knows/);
      assert.equal(config.stderr, run.stderr);
    });
  });
});
