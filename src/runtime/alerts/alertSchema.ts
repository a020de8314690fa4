import { z } from 'zod';

/** How keel.config.ts's `alerts` key is checked (the types it gives are in alertConfig.ts, which loads no zod). */

const recipients = z.union([z.string().trim().min(1), z.array(z.string().trim().min(1)).min(1)]);
const base = { to: recipients, agent: z.string().min(1).optional() };
const simpleEvents = z.enum(['budget_warning', 'budget_exceeded', 'run_failed', 'circuit_open', 'escalation', 'judge_drift', 'provider_overrun']);

export const alertsSchema = z
  .object({
    channels: z.record(
      z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a channel name is letters, digits, dots, dashes and underscores'),
      z.discriminatedUnion('type', [
        z.object({ type: z.literal('editor') }).strict(),
        z
          .object({ type: z.literal('webhook'), url: z.url(), format: z.enum(['json', 'slack']).optional(), headers: z.record(z.string(), z.string()).optional() })
          .strict(),
        z
          .object({
            type: z.literal('email'),
            smtp: z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL'),
            passwordEnv: z.string().min(1).optional(),
            from: z.string().min(3),
            to: recipients,
          })
          .strict(),
      ]),
    ),
    rules: z.array(
      z.discriminatedUnion('on', [
        z.object({ on: simpleEvents, ...base }).strict(),
        z.object({ on: z.literal('flag'), ...base, kinds: z.array(z.string().min(1)).optional(), severity: z.enum(['warning', 'error']).optional() }).strict(),
        z
          .object({
            on: z.literal('spend'),
            ...base,
            usd: z.number().positive(),
            per: z.enum(['hour', 'day']),
            model: z.string().min(1).optional(),
            pool: z.string().min(1).optional(),
          })
          .strict(),
        z.object({ on: z.literal('approval_waiting'), ...base, afterMs: z.number().positive() }).strict(),
      ]),
    ),
    dedupWindowMs: z.number().nonnegative(),
  })
  .partial()
  .strict();
