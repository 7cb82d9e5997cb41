// @ts-check
/**
 * Connection quality from getStats: round-trip time, packet loss, bitrate, the remote
 * video's resolution, and the path (direct, via STUN, or relayed through TURN). The
 * functions on reports are pure (a test feeds them a fabricated report); `createStatsPoller`
 * is the only part that touches a peer connection.
 */

/** @typedef {'direct' | 'stun' | 'relay'} Path */

/**
 * @typedef {object} Sample
 * @property {number} at  the report's timestamp (ms)
 * @property {Path | null} path  null while no candidate pair is selected
 * @property {string} localType  candidate type of our side of the pair ('' unknown)
 * @property {string} remoteType
 * @property {number | null} rttMs
 * @property {number | null} lossPercent  of the packets expected since the previous sample
 * @property {number | null} inKbps  received, all media
 * @property {number | null} outKbps  sent, all media
 * @property {number} width  remote video (0 without)
 * @property {number} height
 * @property {number} bytesIn  totals, for the next sample's rates
 * @property {number} bytesOut
 * @property {number} packetsIn
 * @property {number} packetsLost
 * @property {number} audioBytesIn  received audio (an audio-only call's proof of media)
 */

/**
 * The path of a candidate pair, from its two candidate types: relayed when either side
 * goes through TURN; via STUN when either side used its public (server-reflexive) address;
 * else direct (host, or peer-reflexive addresses learnt while checking).
 * @param {string} localType
 * @param {string} remoteType
 * @returns {Path}
 */
export function pathOf(localType, remoteType) {
  if (localType === 'relay' || remoteType === 'relay') {
    return 'relay';
  }
  if (localType === 'srflx' || remoteType === 'srflx') {
    return 'stun';
  }
  return 'direct';
}

/** Words for a path, as the indicator shows it. */
export const PATH_TEXT = { direct: 'direct', stun: 'via STUN', relay: 'relayed' };

/**
 * @param {any[]} entries  the report's values (`[...report.values()]`)
 * @param {Sample | null} previous  the sample before, for rates
 * @returns {Sample}
 */
export function summarize(entries, previous) {
  const byId = new Map(entries.map((e) => [e.id, e]));
  const transport = entries.find((e) => e.type === 'transport' && e.selectedCandidatePairId);
  const pair =
    (transport && byId.get(transport.selectedCandidatePairId)) ??
    entries.find((e) => e.type === 'candidate-pair' && e.selected) ??
    entries.find((e) => e.type === 'candidate-pair' && e.nominated && e.state === 'succeeded');
  const localType = String(byId.get(pair?.localCandidateId)?.candidateType ?? '');
  const remoteType = String(byId.get(pair?.remoteCandidateId)?.candidateType ?? '');
  let bytesIn = 0;
  let bytesOut = 0;
  let packetsIn = 0;
  let packetsLost = 0;
  let audioBytesIn = 0;
  let width = 0;
  let height = 0;
  let at = 0;
  for (const e of entries) {
    at = Math.max(at, Number(e.timestamp) || 0);
    if (e.type === 'inbound-rtp') {
      bytesIn += e.bytesReceived ?? 0;
      packetsIn += e.packetsReceived ?? 0;
      packetsLost += Math.max(0, e.packetsLost ?? 0);
      if (e.kind === 'audio') {
        audioBytesIn += e.bytesReceived ?? 0;
      }
      if (e.kind === 'video' && (e.frameWidth ?? 0) * (e.frameHeight ?? 0) > width * height) {
        width = e.frameWidth;
        height = e.frameHeight;
      }
    } else if (e.type === 'outbound-rtp') {
      bytesOut += e.bytesSent ?? 0;
    }
  }
  const seconds = previous ? (at - previous.at) / 1000 : 0;
  const rate = (/** @type {number} */ now, /** @type {number} */ before) =>
    seconds > 0 && now >= before ? Math.round(((now - before) * 8) / seconds / 1000) : null;
  const expected = previous ? packetsIn - previous.packetsIn + (packetsLost - previous.packetsLost) : 0;
  const rtt = pair?.currentRoundTripTime;
  return {
    at,
    path: pair ? pathOf(localType, remoteType) : null,
    localType,
    remoteType,
    rttMs: typeof rtt === 'number' ? Math.round(rtt * 1000) : null,
    lossPercent:
      previous && expected > 0
        ? Math.round((1000 * Math.max(0, packetsLost - previous.packetsLost)) / expected) / 10
        : null,
    inKbps: previous ? rate(bytesIn, previous.bytesIn) : null,
    outKbps: previous ? rate(bytesOut, previous.bytesOut) : null,
    width,
    height,
    bytesIn,
    bytesOut,
    packetsIn,
    packetsLost,
    audioBytesIn,
  };
}

/**
 * How good the call is, for the indicator's colour.
 * @param {Sample} s
 * @returns {'good' | 'fair' | 'poor' | 'unknown'}
 */
export function qualityLevel(s) {
  if (s.path === null) {
    return 'unknown';
  }
  const rtt = s.rttMs ?? 0;
  const loss = s.lossPercent ?? 0;
  if (rtt > 400 || loss > 8) {
    return 'poor';
  }
  if (rtt > 150 || loss > 2) {
    return 'fair';
  }
  return 'good';
}

/** @param {number | null} kbps */
const bitrate = (kbps) =>
  kbps === null ? '' : kbps >= 1000 ? `${(kbps / 1000).toFixed(1)} Mbit/s` : `${kbps} kbit/s`;

/**
 * The indicator's details, in words: "direct · 4 ms · 0% loss · ↓1.2 Mbit/s ↑1.1 Mbit/s · 640×480".
 * @param {Sample} s
 * @returns {string}
 */
export function describeSample(s) {
  const parts = [s.path ? PATH_TEXT[s.path] : 'no path yet'];
  if (s.rttMs !== null) {
    parts.push(`${s.rttMs} ms`);
  }
  if (s.lossPercent !== null) {
    parts.push(`${s.lossPercent}% loss`);
  }
  const rates = [s.inKbps === null ? '' : `↓${bitrate(s.inKbps)}`, s.outKbps === null ? '' : `↑${bitrate(s.outKbps)}`]
    .filter(Boolean)
    .join(' ');
  if (rates) {
    parts.push(rates);
  }
  if (s.width && s.height) {
    parts.push(`${s.width}×${s.height}`);
  }
  return parts.join(' · ');
}

/**
 * After fresh TURN credentials were applied with setConfiguration: must ICE restart?
 * Chrome keeps an existing TURN allocation on the credentials it was made with, so a relay
 * in use is re-allocated (an ICE restart) to carry the fresh ones before the old expire.
 * A direct or STUN path uses no credentials: nothing to do.
 * @param {Sample | null} s  the latest sample
 */
export function restartAfterRefresh(s) {
  return s?.localType === 'relay';
}

/**
 * Sample a peer connection every `intervalMs` while it lives, the first time after
 * `firstMs`: getStats works on WebRTC's own threads, and just after connected the other
 * side's DTLS handshake (or its data channel) may still be finishing (issue 8).
 * @param {() => RTCPeerConnection | null} connection
 * @param {(sample: Sample) => void} onSample
 * @param {number} intervalMs
 * @param {number} firstMs
 * @returns {{stop: () => void, latest: () => Sample | null}}
 */
export function createStatsPoller(connection, onSample, intervalMs = 2000, firstMs = 500) {
  /** @type {Sample | null} */
  let last = null;
  let stopped = false;
  const tick = async () => {
    const pc = connection();
    if (stopped || !pc || pc.connectionState === 'closed') {
      return;
    }
    try {
      const report = await pc.getStats();
      if (!stopped) {
        last = summarize([...report.values()], last);
        onSample(last);
      }
    } catch {
      // A closing connection: the next tick (if any) tries again.
    }
  };
  const timer = setInterval(tick, intervalMs);
  const first = setTimeout(tick, Math.min(firstMs, intervalMs));
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
      clearTimeout(first);
    },
    latest: () => last,
  };
}
