import { z } from 'zod';

/** How keel.config.ts's `review` key is checked (the types it gives are in reviewConfig.ts, which loads no zod). */

const always = z
  .object({ arg: z.string().min(1), min: z.number().optional(), max: z.number().optional() })
  .strict()
  .refine((band) => band.min !== undefined || band.max !== undefined, 'an always-sample band needs min, max or both');

export const reviewSchema = z
  .object({
    sample: z.array(
      z
        .object({ tool: z.string().min(1).optional(), agent: z.string().min(1).optional(), rate: z.number().min(0).max(1), always: z.array(always).optional() })
        .strict()
        .refine((rule) => rule.tool !== undefined || rule.agent !== undefined, 'a sampling rule names a tool, an agent, or both'),
    ),
  })
  .partial()
  .strict();
