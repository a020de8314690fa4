import type { Model } from '../../src/runtime/model/model';
import { scriptedModel, type Script } from '../../src/runtime/model/scripted';

/**
 * A scripted model that passes for a priced one (gpt-4o-mini unless named), so that money is spent
 * offline; it counts and reports tokens as the scripted model does, and keeps to the output limit
 * it is sent.
 */
export function pricedModel(script: Script, name = 'gpt-4o-mini'): Model {
  return { ...scriptedModel(script, { name }), provider: 'openai', name };
}
