/** What a job prints, kept within bounds: the end of a stream, or a log's head and tail. */

/** The last `cap` bytes pushed. */
export class Tail {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly cap: number) {}
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.chunks.length > 1 && this.size - (this.chunks[0]?.length ?? 0) >= this.cap)
      this.size -= this.chunks.shift()?.length ?? 0;
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks).subarray(-this.cap);
  }
  text(): string {
    return this.bytes().toString("utf8");
  }
}

/** The first `cap` bytes of the log, and its last `tailCap` bytes. */
export class HeadTail {
  private head: Buffer[] = [];
  private headSize = 0;
  private total = 0;
  private readonly last: Tail;
  constructor(
    private readonly cap: number,
    tailCap: number,
  ) {
    this.last = new Tail(tailCap);
  }
  push(chunk: Buffer): void {
    this.total += chunk.length;
    this.last.push(chunk);
    const part = chunk.subarray(0, this.cap - this.headSize);
    if (part.length === 0) return;
    this.head.push(part);
    this.headSize += part.length;
  }
  render(): { log: string; tail: string; logTruncated: boolean } {
    const head = Buffer.concat(this.head).toString("utf8");
    const tail = this.last.bytes();
    if (this.total <= this.cap) return { log: head, tail: tail.toString("utf8"), logTruncated: false };
    const after = tail.subarray(-Math.min(tail.length, this.total - this.cap));
    const marker = `\n[switchyard: log truncated; ${this.total - this.cap - after.length} bytes omitted before the last ${after.length}]\n`;
    return { log: head + marker + after.toString("utf8"), tail: tail.toString("utf8"), logTruncated: true };
  }
}
