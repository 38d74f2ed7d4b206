/* Clock synchronisation with the server (mirrors rooms/clock.py) and the partner playout delay.
 *
 * Pure: no DOM, no network; runs in Node for tests/e2e/test_static.py.
 */

/** Median as Python's statistics.median: the mean of the middle two for an even count. */
export function median(values) {
  const xs = values.slice().sort((a, b) => a - b);
  const n = xs.length;
  if (n === 0) throw new RangeError("median of no values");
  const mid = n >> 1;
  return n % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
}

/** The q-quantile (0–1) of `values`, linear between closest ranks (numpy's default). */
export function quantile(values, q) {
  const xs = values.slice().sort((a, b) => a - b);
  if (!xs.length) throw new RangeError("quantile of no values");
  const pos = (xs.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo);
}

/**
 * NTP-style clock estimate over the last `window` exchanges (RFC 5905, section 8).
 * t0/t3 on the client clock, t1/t2 on the server clock, all ms.
 *   offset = ((t1 - t0) + (t2 - t3)) / 2   (server - client)
 *   rtt    = (t3 - t0) - (t2 - t1)
 */
export class ClockEstimator {
  constructor(window = 9) {
    if (window < 1) throw new RangeError("window must be at least 1 sample");
    this.window = window;
    this.samples = [];
    this.rttHistory = []; // the last 64 round trips, for the jitter estimate
  }

  add(t0, t1, t2, t3) {
    if (t3 < t0) throw new RangeError(`t3 (${t3}) is before t0 (${t0}) on the client clock`);
    if (t2 < t1) throw new RangeError(`t2 (${t2}) is before t1 (${t1}) on the server clock`);
    const sample = { offset: (t1 - t0 + (t2 - t3)) / 2, rtt: t3 - t0 - (t2 - t1) };
    this.samples.push(sample);
    while (this.samples.length > this.window) this.samples.shift();
    this.rttHistory.push(sample.rtt);
    while (this.rttHistory.length > 64) this.rttHistory.shift();
  }

  get size() {
    return this.samples.length;
  }

  /** Median server-minus-client offset, ms (0 before any sample). */
  get offsetMs() {
    return this.samples.length ? median(this.samples.map((s) => s.offset)) : 0;
  }

  /** Median round-trip time, ms, or null before any sample. */
  get rttMs() {
    return this.samples.length ? median(this.samples.map((s) => s.rtt)) : null;
  }

  toServer(clientMs) {
    return clientMs + this.offsetMs;
  }

  toClient(serverMs) {
    return serverMs - this.offsetMs;
  }
}

export const PLAYOUT_MARGIN_MS = 5;
export const PLAYOUT_MAX_MS = 500;
export const PLAYOUT_MIN_NOTES = 8; // partner notes needed before their own delays decide

/**
 * The default playout delay (ms) of a partner's notes: how long after its timestamp `t`
 * (server clock) a partner's note is sounded here — a jitter buffer.
 *
 * Once `PLAYOUT_MIN_NOTES` notes of the partner have arrived: the 95th percentile of their
 * transit delays (arrival here − `t`, both on the server clock) plus a margin, so about one
 * note in twenty comes too late for its slot (it is then played on arrival) while the delay
 * stays as short as the path allows. Before that, a prior from the clock samples: half the
 * partner's RTT (their uplink) + half ours (our downlink) + our RTT jitter (p95 − median of
 * our last round trips) + the margin. Clamped to 0–500 ms.
 *
 * `transitMs`: recent transit delays, ms; `partnerRttMs`: the partner's median RTT from
 * room:state (or null); `ownRtts`: our recent round trips, ms.
 */
export function playoutDelayMs({ transitMs = [], partnerRttMs = null, ownRtts = [] } = {}) {
  let delay;
  if (transitMs.length >= PLAYOUT_MIN_NOTES) {
    delay = quantile(transitMs, 0.95) + PLAYOUT_MARGIN_MS;
  } else {
    const own = ownRtts.length ? median(ownRtts) : 0;
    const jitter = ownRtts.length ? quantile(ownRtts, 0.95) - own : 0;
    const partner = partnerRttMs === null || partnerRttMs === undefined ? own : partnerRttMs;
    delay = partner / 2 + own / 2 + jitter + PLAYOUT_MARGIN_MS;
  }
  return Math.min(PLAYOUT_MAX_MS, Math.max(0, Math.round(delay)));
}

/** The page clock, epoch ms (monotonic within the page). */
export const localMs = () => performance.timeOrigin + performance.now();
