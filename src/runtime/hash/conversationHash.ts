import type { Message, ToolSpec } from '../model/model';
import { canonicalJson, messageJson, sha256 } from './canonicalJson';

/**
 * A running hash of everything a model is sent (tool specs, then each message in turn), so each
 * model step can record what it was asked in constant time and space, however long the run.
 */
export class ConversationHash {
  private current: string;

  constructor(tools: readonly ToolSpec[]) {
    this.current = sha256(canonicalJson(tools));
  }

  append(message: Message): void {
    // The SHA-256 of the previous hash's hex followed by the message's canonical JSON.
    this.current = sha256(this.current + (messageJson(message) ?? canonicalJson(message)));
  }

  get value(): string {
    return this.current;
  }
}
