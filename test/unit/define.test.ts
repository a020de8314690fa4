import assert from 'node:assert/strict';
import { z } from 'zod';
import { defineAgent, defineTool, type AgentConfig, type ToolConfig } from '../../src/runtime/agent/define';
import { AgentDefinitionError } from '../../src/runtime/errors';
import { scriptedModel } from '../../src/runtime/model/scripted';

describe('defineTool and defineAgent', () => {
  const args = z.object({ city: z.string().describe('City name'), days: z.number().int().min(1).default(1) });
  const tool = defineTool({ name: 'forecast', description: 'Weather forecast.', args, effect: 'none', run: () => 'sunny' });

  it('offers models a JSON Schema of the arguments, without the $schema marker', () => {
    assert.deepEqual(tool.spec, {
      name: 'forecast',
      description: 'Weather forecast.',
      parameters: {
        type: 'object',
        properties: {
          city: { type: 'string', description: 'City name' },
          days: { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER, default: 1 },
        },
        required: ['city'],
      },
    });
  });

  const badTools: [string, Partial<ToolConfig<typeof args, z.ZodUnknown>>, RegExp][] = [
    ['a name with spaces', { name: 'look up' }, /defineTool\("look up"\): `name` must be 1-64 letters/],
    ['no description', { description: ' ' }, /`description` must be a non-empty string/],
    ['args that are not a zod object', { args: z.string() as unknown as typeof args }, /`args` must be a zod object schema/],
    ['an unknown effect', { effect: 'maybe' as 'none' }, /`effect` must be 'none', 'idempotent' or 'unsafe' \(got "maybe"\)/],
    ['no run function', { run: undefined as unknown as () => string }, /`run` must be a function/],
  ];
  for (const [what, change, message] of badTools) {
    it(`refuses a tool with ${what}, saying what to fix`, () => {
      const config = { name: 'forecast', description: 'Forecast.', args, effect: 'none' as const, run: () => 'x', ...change };
      assert.throws(() => defineTool(config as ToolConfig<typeof args, z.ZodUnknown>), (error: unknown) => {
        assert.ok(error instanceof AgentDefinitionError);
        assert.match(error.message, message);
        return true;
      });
    });
  }

  const model = scriptedModel(['hi']);
  const badAgents: [string, Partial<AgentConfig>, RegExp][] = [
    ['no name', { name: '' }, /defineAgent: `name` must be 1-64 letters/],
    ['a model that is neither an object nor a spec', { model: 42 as unknown as string }, /`model` must be a model/],
    ['maxSteps of zero', { maxSteps: 0 }, /`maxSteps` must be a whole number of at least 1 \(got 0\)/],
    ['two tools of one name', { tools: [tool, tool] }, /two tools are named "forecast"/],
    ['a tool not made by defineTool', { tools: [{ name: 'x' } as never] }, /every entry of `tools` must come from defineTool/],
  ];
  for (const [what, change, message] of badAgents) {
    it(`refuses an agent with ${what}`, () => {
      assert.throws(
        () => defineAgent({ name: 'weather', instructions: 'Forecast.', model, ...change }),
        (error: unknown) => error instanceof AgentDefinitionError && message.test(error.message),
      );
    });
  }

  it('defaults maxSteps to 10 and indexes tools by name', () => {
    const agent = defineAgent({ name: 'weather', instructions: 'Forecast.', model, tools: [tool] });
    assert.equal(agent.maxSteps, 10);
    assert.equal(agent.tools.get('forecast'), tool);
  });
});
