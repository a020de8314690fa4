/** Where Restate's ingress and admin API are, for every command that may reach a run on Restate. */
export const RESTATE_FLAGS = {
  'restate-url': { type: 'string' },
  'restate-admin': { type: 'string' },
} as const;

/** Where runs execute (`--engine local|restate`, else KEEL_ENGINE, else keel.config.ts), and Restate's addresses. */
export const ENGINE_FLAGS = { engine: { type: 'string' }, ...RESTATE_FLAGS } as const;
