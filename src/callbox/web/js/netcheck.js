// @ts-check
/**
 * "Test connection" (issue 10): gather ICE candidates with the server's ICE servers in a
 * throwaway RTCPeerConnection and say in words what was found: host addresses; a
 * server-reflexive one ("STUN works"); a relay ("TURN works"); or why not (no answer in
 * time, wrong credentials, ...). `describeCheck` is pure (a test feeds it fabricated
 * results); `runCheck` does the gathering.
 */

/** How long gathering may take before the check reports what it has. */
const CHECK_MS = 8000;

/**
 * @typedef {object} Gathered
 * @property {{type: string, url: string, address: string}[]} candidates
 * @property {{url: string, errorCode: number, errorText: string}[]} errors  icecandidateerror
 * @property {boolean} timedOut  gathering did not complete in time
 */

/**
 * @typedef {object} CheckLine
 * @property {'host' | 'stun' | 'turn'} what
 * @property {'ok' | 'fail' | 'none'} result  none: not configured
 * @property {string} text
 */

/**
 * @param {RTCIceServer[]} servers
 * @param {'stun' | 'turn'} scheme
 * @returns {string[]} the URLs of that scheme (turns: counts as turn)
 */
function urlsOf(servers, scheme) {
  return servers
    .flatMap((s) => (Array.isArray(s.urls) ? s.urls : [s.urls]))
    .filter((u) => typeof u === 'string' && u.split(':')[0].replace(/s$/, '') === scheme);
}

/**
 * What an icecandidateerror means, in words.
 * @param {{errorCode: number, errorText: string}} e
 */
export function errorWords(e) {
  if (e.errorCode === 401) {
    return 'wrong credentials (401 Unauthorized)';
  }
  if (e.errorCode === 403) {
    return 'refused (403 Forbidden)';
  }
  if (e.errorCode === 437 || e.errorCode === 438) {
    return `refused (${e.errorCode}: allocation mismatch or stale nonce)`;
  }
  if (e.errorCode === 486) {
    return 'refused (486: allocation quota reached)';
  }
  if (e.errorCode === 701) {
    return 'no answer (the server could not be reached)';
  }
  return `error ${e.errorCode}${e.errorText ? ` (${e.errorText})` : ''}`;
}

/**
 * @param {RTCIceServer[]} servers  what the check gathered with
 * @param {Gathered} g
 * @returns {CheckLine[]}
 */
export function describeCheck(servers, g) {
  /** @type {CheckLine[]} */
  const lines = [];
  const of = (/** @type {string} */ type) => g.candidates.filter((c) => c.type === type);
  const hosts = of('host');
  lines.push(
    hosts.length
      ? { what: 'host', result: 'ok', text: `Local addresses: ${hosts.length} found.` }
      : { what: 'host', result: 'fail', text: 'Local addresses: none found (is WebRTC blocked?).' },
  );
  for (const scheme of /** @type {const} */ (['stun', 'turn'])) {
    const urls = urlsOf(servers, scheme);
    const what = scheme === 'stun' ? 'STUN' : 'TURN';
    const found = scheme === 'stun' ? of('srflx') : of('relay');
    const errors = g.errors.filter((e) => urls.includes(e.url) || (e.url && e.url.startsWith(scheme)));
    if (scheme === 'stun' && !urls.length && !found.length) {
      lines.push({ what: 'stun', result: 'none', text: 'STUN: no STUN server configured.' });
    } else if (scheme === 'turn' && !urls.length) {
      lines.push({ what: 'turn', result: 'none', text: 'TURN: no TURN server configured (calls between networks may fail).' });
    } else if (found.length) {
      const text =
        scheme === 'stun'
          ? `STUN works: your public address is ${found[0].address || 'known'}.`
          : `TURN works: a relay was allocated (${found[0].address || found[0].url}).`;
      lines.push({ what: scheme, result: 'ok', text });
    } else if (errors.length) {
      const why = [...new Set(errors.map((e) => `${e.url || what}: ${errorWords(e)}`))].join('; ');
      lines.push({ what: scheme, result: 'fail', text: `${what} failed: ${why}.` });
    } else if (scheme === 'stun') {
      lines.push({
        what: 'stun',
        result: 'fail',
        text: g.timedOut
          ? 'STUN: no answer in time (blocked, or the server is down).'
          : 'STUN: no public address found (no NAT in front of this device, or no answer).',
      });
    } else {
      lines.push({
        what: 'turn',
        result: 'fail',
        text: g.timedOut ? 'TURN: no answer in time (blocked, or the server is down).' : 'TURN: no relay was allocated.',
      });
    }
  }
  return lines;
}

/**
 * Gather candidates with `servers` and return what came.
 * @param {RTCIceServer[]} servers
 * @param {number} [timeoutMs]
 * @returns {Promise<Gathered>}
 */
export async function runCheck(servers, timeoutMs = CHECK_MS) {
  const pc = new RTCPeerConnection({ iceServers: servers });
  /** @type {Gathered} */
  const g = { candidates: [], errors: [], timedOut: false };
  try {
    pc.createDataChannel('check');
    const done = new Promise((resolve) => {
      const timer = setTimeout(() => {
        g.timedOut = true;
        resolve(undefined);
      }, timeoutMs);
      pc.onicecandidate = (event) => {
        const { candidate } = event;
        if (!candidate) {
          clearTimeout(timer);
          resolve(undefined);
        } else if (candidate.type) {
          g.candidates.push({
            type: candidate.type,
            url: /** @type {any} */ (event).url ?? '',
            address: candidate.address ?? '',
          });
        }
      };
    });
    pc.onicecandidateerror = (event) => {
      const e = /** @type {RTCPeerConnectionIceErrorEvent} */ (event);
      g.errors.push({ url: e.url ?? '', errorCode: e.errorCode, errorText: e.errorText ?? '' });
    };
    await pc.setLocalDescription(await pc.createOffer());
    await done;
  } finally {
    pc.close();
  }
  return g;
}
