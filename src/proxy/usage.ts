/**
 * Token usage of an answer, counted without holding it back: a JSON answer is read from a copy
 * (bounded), an SSE stream is watched chunk by chunk as it passes to the client, and only events
 * whose text mentions "usage" are parsed. The provider module says what its figures mean
 * (Anthropic's message_delta usage is cumulative, not additive).
 */
import type { Usage } from "../providers/telemetry";
import type { Provider } from "../providers/types";
import { concat, parseJsonBody, readHead } from "../util";

/** JSON answers larger than this are not parsed for usage (an LLM answer is far smaller). */
const JSON_USAGE_LIMIT = 4 * 1024 * 1024;

export async function usageOfJson(provider: Provider, copy: ReadableStream<Uint8Array>): Promise<Usage | null> {
  const head = await readHead(copy, JSON_USAGE_LIMIT, 120_000);
  if (head === "timeout") return null;
  if (head.more) {
    void head.reader.cancel().catch(() => {});
    return null;
  }
  return provider.usage.fromJson(parseJsonBody(new TextDecoder().decode(concat(head.chunks))));
}

/** Watches SSE bytes go by; `end()` gives the usage seen (null when the stream stated none). */
export class SseUsage {
  private readonly decoder = new TextDecoder();
  private partial = "";
  private event = "";
  private data: string[] = [];
  private usage: Usage | null = null;

  constructor(private readonly provider: Provider) {}

  observe(chunk: Uint8Array): void {
    const text = this.partial + this.decoder.decode(chunk, { stream: true });
    let start = 0;
    for (;;) {
      const nl = text.indexOf("\n", start);
      if (nl < 0) break;
      this.line(text.slice(start, text[nl - 1] === "\r" ? nl - 1 : nl));
      start = nl + 1;
    }
    this.partial = text.slice(start);
    // A line longer than this is no usage event: drop it rather than grow without bound.
    if (this.partial.length > 1024 * 1024) this.partial = "";
  }

  end(): Usage | null {
    if (this.partial) this.line(this.partial);
    this.line("");
    return this.usage;
  }

  private line(line: string) {
    if (line === "") {
      const data = this.data.join("\n");
      if (data.includes('"usage"')) this.usage = this.provider.usage.fromSse(this.usage, this.event || "message", parseJsonBody(data));
      this.event = "";
      this.data = [];
      return;
    }
    if (line.startsWith("event:")) this.event = line.slice(6).trim();
    else if (line.startsWith("data:")) this.data.push(line.slice(line[5] === " " ? 6 : 5));
  }
}
