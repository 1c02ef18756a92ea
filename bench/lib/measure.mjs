/**
 * Measuring tools: an autocannon run that keeps every response time (autocannon's own histogram
 * rounds to whole milliseconds; its 'response' event carries the hrtime duration as a float), a
 * sequential request timer with microsecond resolution (headers, first body byte, end), and
 * percentiles.
 */
import http from "node:http";
import autocannon from "autocannon";

export function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export function summarize(values) {
  const s = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of s) sum += v;
  return { n: s.length, mean: s.length ? sum / s.length : NaN, p50: percentile(s, 0.5), p90: percentile(s, 0.9), p99: percentile(s, 0.99), min: s[0], max: s[s.length - 1] };
}

/**
 * One autocannon run. Returns { requests, ok, non2xx, errors, seconds, rps, lat: number[] (ms) }.
 * rps counts 2xx answers received during the run divided by its wall time.
 */
export function load({ url, method = "POST", headers = {}, body, connections, seconds }) {
  return new Promise((resolve, reject) => {
    const lat = [];
    let ok = 0;
    let non2xx = 0;
    const t0 = performance.now();
    const inst = autocannon(
      { url, method, headers, body, connections, duration: seconds, pipelining: 1, timeout: 10, excludeErrorStats: true },
      (err, res) => {
        if (err) return reject(err);
        const wall = (performance.now() - t0) / 1000;
        resolve({ requests: ok + non2xx, ok, non2xx, errors: res.errors + res.timeouts, seconds: wall, rps: ok / wall, lat });
      },
    );
    inst.on("response", (_client, status, _bytes, responseTime) => {
      if (status >= 200 && status < 300) {
        ok++;
        lat.push(responseTime);
      } else non2xx++;
    });
  });
}

/** A keep-alive agent with one connection: sequential requests reuse it, like a client would. */
export function agent() {
  return new http.Agent({ keepAlive: true, maxSockets: 1, keepAliveMsecs: 60_000 });
}

/**
 * One request, timed with performance.now(): { status, headers, tHeaders, tFirstByte, tEnd, bytes, text? }
 * (times in ms from the moment the request was handed to the socket). Body data is counted, and kept
 * only with keepBody. onData(bytesSoFar) is called per chunk (for memory sampling).
 */
export function timed(url, { method = "POST", headers = {}, body, agent: ag, keepBody = false, onData } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const payload = body === undefined ? undefined : Buffer.from(body);
    const h = { ...headers };
    if (payload) h["content-length"] = String(payload.length);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: h, agent: ag }, (res) => {
      const tHeaders = performance.now() - t0;
      let tFirstByte = NaN;
      let bytes = 0;
      const chunks = [];
      res.on("data", (c) => {
        if (bytes === 0) tFirstByte = performance.now() - t0;
        bytes += c.length;
        if (keepBody) chunks.push(c);
        if (onData) onData(bytes);
      });
      res.on("end", () => {
        resolve({ status: res.statusCode, headers: res.headers, tHeaders, tFirstByte, tEnd: performance.now() - t0, bytes, text: keepBody ? Buffer.concat(chunks).toString() : undefined });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    const t0 = performance.now();
    req.end(payload);
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
