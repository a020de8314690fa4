import { DecisionError, argsHash, type DecisionRequest } from '../runtime/approval/decide';

/**
 * A decision as it arrives over JSON-RPC (the protocol's DecisionRequest), checked to be one
 * before anything is recorded: the types only hold for a well-behaved sender. Edited arguments
 * sent without a hash are named by theirs, which the runtime then checks as any other.
 */
export function decisionRequestFrom(value: unknown): DecisionRequest {
  const request = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  switch (request['action']) {
    case 'approve': {
      const edited = 'args' in request && request['args'] !== undefined;
      const hash = request['argsHash'] ?? (edited ? argsHash(request['args']) : undefined);
      if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) {
        throw new DecisionError('An approval names the SHA-256 of the arguments it approves (64 hex digits), or gives the edited arguments; nothing was decided.');
      }
      return edited
        ? { action: 'approve', argsHash: hash, args: request['args'] }
        : { action: 'approve', argsHash: hash };
    }
    case 'reject': {
      const reason = request['reason'];
      if (typeof reason !== 'string') throw new DecisionError('A rejection needs a reason: the model reads it.');
      return { action: 'reject', reason };
    }
    case 'done':
      if (!('result' in request)) throw new DecisionError("Marking a call done needs the tool's result; nothing was decided.");
      return { action: 'done', result: request['result'] };
    default:
      throw new DecisionError('A decision is approve, reject or done; nothing was decided.');
  }
}
