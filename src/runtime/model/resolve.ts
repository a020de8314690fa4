import { ModelSpecError } from '../errors';
import type { Model } from './model';
import { openaiModel } from './openai';

/**
 * Turns a model spec into a model. `openai:<model>` talks to any OpenAI-compatible endpoint
 * (OPENAI_BASE_URL, OPENAI_API_KEY). A Model passes through unchanged.
 */
export function resolveModel(spec: Model | string): Model {
  if (typeof spec !== 'string') return spec;
  const colon = spec.indexOf(':');
  const provider = colon < 0 ? spec : spec.slice(0, colon);
  const name = colon < 0 ? '' : spec.slice(colon + 1);
  if (provider === 'openai' && name !== '') return openaiModel({ model: name });
  throw new ModelSpecError(
    `"${spec}" is not a model Keel knows: use openai:<model> (any OpenAI-compatible endpoint, set OPENAI_BASE_URL for a local one) or give the agent a model object such as scriptedModel(...).`,
  );
}
