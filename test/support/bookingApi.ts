import { join } from 'node:path';
import { REPO_ROOT, spawnNode, within, type NodeProcess } from './processes';

/**
 * The test side of the booking API (test/fault/fixtures/bookingApiServer.ts): a separate process
 * that charges once per unique idempotency key and tells the tests what it did.
 */

/** A charge the API made: one per unique idempotency key. */
export interface Booking {
  readonly key: string;
  readonly trip: string;
  readonly passenger: string;
  readonly flightId: string;
  readonly confirmation: string;
  readonly charged: number;
  readonly chargedAt: number;
}

/** What the API answers a booking with; exactly what the `book` tool returns. */
export interface Confirmation {
  readonly confirmation: string;
  readonly flightId: string;
  readonly charged: number;
}

export type RequestOutcome = 'charged' | 'replayed' | 'conflict' | 'quoted' | 'rejected';

/** One request the API received, in the order it received them. */
export interface ApiRequest {
  readonly kind: 'book' | 'fare';
  readonly key: string;
  readonly receivedAt: number;
  readonly outcome: RequestOutcome;
}

export interface Ledger {
  readonly bookings: readonly Booking[];
  readonly requests: readonly ApiRequest[];
}

export interface ApiTotals {
  /** Unique keys charged. */
  readonly charges: number;
  /** Booking requests with a key already charged, answered with the stored confirmation. */
  readonly replays: number;
  /** Charges for a (trip, passenger, flight) that had already been charged under another key. */
  readonly duplicates: number;
  /** Booking requests that reused a key with other arguments (refused with 422). */
  readonly conflicts: number;
  readonly fareRequests: number;
}

export interface BookingApi {
  readonly url: string;
  /** The bookings and requests of one run: those whose idempotency key starts with `runId:`. */
  ledger(runId: string): Promise<Ledger>;
  /** The confirmation stored under `key`, or undefined if the API never charged it. */
  booking(key: string): Promise<Confirmation | undefined>;
  totals(): Promise<ApiTotals>;
  close(): Promise<void>;
}

const SERVER = join(REPO_ROOT, 'out', 'test', 'fault', 'fixtures', 'bookingApiServer.js');

/** Starts the booking API in its own process on 127.0.0.1 and an ephemeral port. */
export async function startBookingApi(): Promise<BookingApi> {
  const proc = spawnNode(SERVER, []);
  const port = await within(firstPort(proc), 'the booking API reporting its port');
  const url = `http://127.0.0.1:${port}`;

  async function get<T>(path: string): Promise<{ status: number; body: T }> {
    const response = await fetch(`${url}${path}`);
    return { status: response.status, body: (await response.json()) as T };
  }

  return {
    url,
    ledger: async (runId) => (await get<Ledger>(`/ledger?run=${encodeURIComponent(runId)}`)).body,
    booking: async (key) => {
      const { status, body } = await get<Confirmation>(`/bookings/${encodeURIComponent(key)}`);
      return status === 200 ? body : undefined;
    },
    totals: async () => (await get<ApiTotals>('/totals')).body,
    close: async () => {
      proc.child.kill('SIGTERM');
      await proc.exited;
    },
  };
}

function firstPort(proc: NodeProcess): Promise<number> {
  return new Promise((resolvePort, rejectPort) => {
    const check = () => {
      const match = /^listening on (\d+)$/m.exec(proc.stdout());
      if (match) {
        proc.child.stdout.off('data', check);
        resolvePort(Number(match[1]));
      }
    };
    proc.child.stdout.on('data', check);
    proc.exited.then(
      (exit) => rejectPort(new Error(`the booking API exited (${String(exit.code ?? exit.signal)}) before listening:\n${proc.stderr()}`)),
      rejectPort,
    );
    check();
  });
}
