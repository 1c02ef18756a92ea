/**
 * One timer for every wait of an upstream attempt: its answer's headers (UPSTREAM_TIMEOUT_MS), then
 * its body, first event or error head (FIRST_EVENT_TIMEOUT_MS). Each wait moves the deadline; the
 * timer is not re-armed for it. In workerd a setTimeout and a clearTimeout cost about 10 µs each
 * under load, so an attempt that sets one timer instead of one per wait saves that on every request
 * (BENCHMARKS.md, "Routing's cost").
 *
 * The timer ticks at most every `tick` ms (the shortest wait an attempt uses) and, when it fires
 * before the current deadline, re-arms itself for what is left: it may fire early, never late. Once
 * it has expired it stays expired: a wait that timed out ends the attempt.
 */
export class Deadline {
  /** Resolves with "timeout" once the current deadline passes. */
  readonly expired: Promise<"timeout">;
  private resolve!: (v: "timeout") => void;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private armedUntil: number;
  private at: number;

  constructor(
    private readonly tick: number,
    first: number,
  ) {
    this.expired = new Promise((resolve) => (this.resolve = resolve));
    const now = Date.now();
    this.at = now + first;
    const wait = Math.min(first, tick);
    this.armedUntil = now + wait;
    this.timer = setTimeout(this.fire, wait);
  }

  /** The next wait ends `ms` from now. */
  within(ms: number): Promise<"timeout"> {
    const now = Date.now();
    this.at = now + ms;
    // Armed too late for this wait (only when `ms` is shorter than the tick): arm again.
    if (this.timer !== undefined && this.armedUntil > this.at) {
      clearTimeout(this.timer);
      this.armedUntil = this.at;
      this.timer = setTimeout(this.fire, ms);
    }
    return this.expired;
  }

  /** The promise, or "timeout" if the current deadline passes first. */
  race<T>(p: Promise<T>): Promise<T | "timeout"> {
    return Promise.race([p, this.expired]);
  }

  /** No more waits: the timer goes. */
  end(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private fire = () => {
    const now = Date.now();
    const left = this.at - now;
    if (left > 0) {
      const wait = Math.min(left, this.tick);
      this.armedUntil = now + wait;
      this.timer = setTimeout(this.fire, wait);
    } else {
      this.timer = undefined;
      this.resolve("timeout");
    }
  };
}
