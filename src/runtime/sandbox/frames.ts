/**
 * Length-prefixed frames (a 4-byte big-endian length, then the payload) on the pipe between the
 * runtime process and a tool's own process. The runtime reads what a tool process sends with a
 * limit, so a frame over it is refused as its length arrives, before its payload is buffered.
 */
export function frame(payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(payload.length);
  return Buffer.concat([head, payload]);
}

export class FrameReader {
  private buffered: Buffer[] = [];
  private size = 0;
  /** The length of the frame being read, once its head has arrived. */
  private expected: number | undefined;
  private failed = false;

  constructor(
    private readonly maxBytes: number,
    private readonly onFrame: (payload: Buffer) => void,
    private readonly onTooLarge: (bytes: number) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.failed) return;
    this.buffered.push(chunk);
    this.size += chunk.length;
    for (;;) {
      if (this.expected === undefined) {
        if (this.size < 4) return;
        const length = this.take(4).readUInt32BE(0);
        if (length > this.maxBytes) {
          this.failed = true;
          this.buffered = [];
          this.onTooLarge(length);
          return;
        }
        this.expected = length;
      }
      if (this.size < this.expected) return;
      const payload = this.take(this.expected);
      this.expected = undefined;
      this.onFrame(payload);
    }
  }

  /** Removes and returns the first `bytes` bytes buffered (there are at least that many). */
  private take(bytes: number): Buffer {
    const all = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered);
    this.buffered = all.length > bytes ? [all.subarray(bytes)] : [];
    this.size -= bytes;
    return all.subarray(0, bytes);
  }
}
