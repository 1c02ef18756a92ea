/**
 * Token usage of an answer, counted without holding it back: a JSON answer is read from a copy
 * (bounded), an SSE stream is watched chunk by chunk as it passes to the client, and only events
 * whose text mentions "usage" are parsed. The provider module says what its figures mean
 * (Anthropic's message_delta usage is cumulative, not additive).
 */
import type { Usage } from "../providers/telemetry";
import type { Provider } from "../providers/types";
import { concat, parseJsonBody } from "../util";

/** JSON answers larger than this are not parsed for usage (an LLM answer is far smaller). */
const JSON_USAGE_LIMIT = 4 * 1024 * 1024;

/**
 * Usage of a JSON answer, from a copy of its body (a tee branch). With a declared length within the
 * limit the runtime reads it in one go (a JS read loop costs far more per request); without one,
 * a plain loop reads at most the limit and lets the rest go.
 */
export async function usageOfJson(provider: Provider, copy: ReadableStream<Uint8Array>, declaredLength: string | null): Promise<Usage | null> {
  let text: string;
  if (declaredLength !== null) {
    if (!(Number(declaredLength) <= JSON_USAGE_LIMIT)) {
      await copy.cancel();
      return null;
    }
    text = await new Response(copy).text();
  } else {
    const reader = copy.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      size += r.value.byteLength;
      if (size > JSON_USAGE_LIMIT) {
        await reader.cancel();
        return null;
      }
      chunks.push(r.value);
    }
    text = new TextDecoder().decode(concat(chunks));
  }
  return text.includes('"usage"') ? provider.usage.fromJson(parseJsonBody(text)) : null;
}

/** Usage of a whole JSON answer already in memory (parsed only when it mentions usage). */
export function usageOf(provider: Provider, body: ArrayBuffer): Usage | null {
  const text = new TextDecoder().decode(body);
  return text.includes('"usage"') ? provider.usage.fromJson(parseJsonBody(text)) : null;
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
