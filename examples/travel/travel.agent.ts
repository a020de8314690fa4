import { approvals, defineAgent, defineTool, scriptedModel, z, type ScriptContext, type ScriptedTurn } from 'keel-agents';

/** A small in-memory airline, so the example runs offline. */
const FLIGHTS = [
  { id: 'KL642', from: 'NYC', to: 'LIS', departs: '08:05', price: 640, airline: 'KLM' },
  { id: 'TP202', from: 'NYC', to: 'LIS', departs: '19:30', price: 712, airline: 'TAP' },
  { id: 'UA66', from: 'NYC', to: 'LIS', departs: '22:10', price: 598, airline: 'United' },
  { id: 'BA117', from: 'LON', to: 'NYC', departs: '11:20', price: 455, airline: 'British Airways' },
  { id: 'IB6250', from: 'MAD', to: 'NYC', departs: '12:45', price: 520, airline: 'Iberia' },
] as const;

const Airport = z.string().regex(/^[A-Z]{3}$/, 'a three-letter airport or city code such as NYC');

const searchFlights = defineTool({
  name: 'search_flights',
  description: 'Find flights between two cities on a date. Returns flights with id, departure time and price in USD.',
  args: z.object({ from: Airport, to: Airport, date: z.iso.date() }),
  output: z.array(
    z.object({ id: z.string(), airline: z.string(), departs: z.string(), price: z.number(), date: z.string() }),
  ),
  effect: 'none',
  run: ({ from, to, date }) =>
    FLIGHTS.filter((flight) => flight.from === from && flight.to === to).map(({ id, airline, departs, price }) => ({
      id,
      airline,
      departs,
      price,
      date,
    })),
});

const bookFlight = defineTool({
  name: 'book_flight',
  description: 'Book a seat on a flight and charge the card on file. Irreversible. Give the price you found.',
  args: z.object({
    flightId: z.string(),
    from: Airport,
    to: Airport,
    date: z.iso.date(),
    passenger: z.string().min(1),
    price: z.number().positive(),
  }),
  output: z.object({ confirmation: z.string(), flightId: z.string(), charged: z.number() }),
  effect: 'unsafe',
  // A person approves any booking over $600 before it is made.
  approval: approvals.amountOver(600, { field: 'price' }),
  describe: ({ price, from, to }) => `$${price} ${from}→${to}`,
  run: ({ flightId, passenger, price }, ctx) => {
    const flight = FLIGHTS.find((candidate) => candidate.id === flightId);
    if (!flight) throw new Error(`no flight ${flightId}`);
    if (flight.price !== price) throw new Error(`${flightId} costs $${flight.price}, not $${price}`);
    ctx.log(`charging $${flight.price} for ${passenger} with idempotency key ${ctx.idempotencyKey}`);
    return { confirmation: `KEEL-${flight.id}-${ctx.stepId}${ctx.callIndex}`, flightId, charged: flight.price };
  },
});

/**
 * Plays the model offline: searches, books the cheapest flight (or the earliest, when asked),
 * then reports. Point the agent at a real model with `keel run ... --model openai:gpt-4o-mini`
 * (see docs/getting-started.md).
 */
function travelScript({ input, toolResults }: ScriptContext): ScriptedTurn {
  const last = toolResults.at(-1);
  if (!last) {
    const [from = 'NYC', to = 'LIS'] = input.match(/\b[A-Z]{3}\b/g) ?? [];
    const date = input.match(/\d{4}-\d{2}-\d{2}/)?.[0] ?? '2026-12-10';
    return { text: `Searching flights ${from}→${to} on ${date}.`, toolCalls: [{ name: 'search_flights', args: { from, to, date } }] };
  }
  if (last.isError) return `I could not finish: ${last.content}`;
  if (last.name === 'search_flights') {
    const flights = JSON.parse(last.content) as { id: string; price: number; date: string; departs: string }[];
    const earliest = /\bearliest\b/i.test(input);
    const [chosen] = [...flights].sort((a, b) => (earliest ? a.departs.localeCompare(b.departs) : a.price - b.price));
    if (!chosen) return 'There are no flights on that route.';
    const [from = 'NYC', to = 'LIS'] = input.match(/\b[A-Z]{3}\b/g) ?? [];
    return {
      text: `The ${earliest ? 'earliest' : 'cheapest'} is ${chosen.id} at $${chosen.price}; booking it.`,
      toolCalls: [
        {
          name: 'book_flight',
          args: { flightId: chosen.id, from, to, date: chosen.date, passenger: 'Ada Lovelace', price: chosen.price },
        },
      ],
    };
  }
  // When a person changed the arguments before approving, a note saying so comes before the result.
  const result = last.content.slice(last.content.indexOf('{"confirmation"'));
  const booking = JSON.parse(result) as { confirmation: string; flightId: string; charged: number };
  return `Booked ${booking.flightId} for $${booking.charged}. Confirmation ${booking.confirmation}.`;
}

export default defineAgent({
  name: 'travel',
  instructions:
    'You book flights. Search first, book the cheapest flight that matches the request, then confirm the booking in one sentence with its confirmation code.',
  model: scriptedModel(travelScript, { name: 'travel-script' }),
  tools: [searchFlights, bookFlight],
  maxSteps: 6,
});
