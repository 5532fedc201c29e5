/** Messages per destination per period: a sliding-window log of send times. */
export class Throttle {
  private readonly sent: number[] = [];
  constructor(
    readonly maxMessages: number,
    readonly periodMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  private prune(): void {
    const from = this.now() - this.periodMs;
    while (this.sent.length > 0 && this.sent[0] <= from) this.sent.shift();
  }

  /** Messages that may go now. */
  available(): number {
    this.prune();
    return Math.max(0, this.maxMessages - this.sent.length);
  }

  /** Milliseconds until one more message may go. */
  waitMs(): number {
    this.prune();
    if (this.sent.length < this.maxMessages) return 0;
    return Math.max(0, this.sent[this.sent.length - this.maxMessages] + this.periodMs - this.now());
  }

  take(n = 1): void {
    for (let i = 0; i < n; i++) this.sent.push(this.now());
  }
}
