// @ts-check
/**
 * The ICE servers the server hands out (welcome, the `iceServers` event, GET /config) and
 * their TURN credentials' life (PLAN.md decision 7): refreshed at half their TTL, and when
 * a call's path breaks (before the ICE restart that follows). It owns only that list and its
 * timer; what a refresh means for a call is for `onFresh` to decide.
 */

/** A refresh on trouble only when the credentials are older than this. */
const STALE_MS = 60000;

/**
 * @param {object} options
 * @param {(event: string, payload: unknown) => Promise<any>} options.send  to the server
 * @param {() => boolean} options.serverReady
 * @param {(servers: RTCIceServer[], restartRelay: boolean) => void} options.onFresh
 * @param {import('./log.js').Logger} options.log
 */
export function createIceServers({ send, serverReady, onFresh, log }) {
  /** @type {RTCIceServer[] | null} */
  let servers = null;
  /** @type {number | null} seconds the credentials stay valid (null: they do not expire) */
  let ttl = null;
  let fetchedAt = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;

  /** @param {number | null | undefined} seconds */
  const schedule = (seconds) => {
    clearTimeout(timer);
    ttl = typeof seconds === 'number' && seconds > 0 ? seconds : null;
    fetchedAt = Date.now();
    if (ttl !== null) {
      timer = setTimeout(() => refresh(true), (ttl * 1000) / 2);
    }
  };

  /** @param {boolean} restartRelay  a relayed call restarts ICE with the fresh ones */
  const refresh = async (restartRelay) => {
    clearTimeout(timer);
    if (!serverReady()) {
      timer = setTimeout(() => refresh(restartRelay), 5000);
      return;
    }
    try {
      const ack = await send('iceServers', {});
      if (Array.isArray(ack?.iceServers)) {
        servers = ack.iceServers;
        schedule(ack.ttl ?? null);
        onFresh(ack.iceServers, restartRelay);
      }
    } catch (err) {
      log.warn('ICE servers not refreshed', err instanceof Error ? err.message : String(err));
      timer = setTimeout(() => refresh(restartRelay), 10000);
    }
  };

  return {
    /** @returns {RTCIceServer[] | null} the latest list, if any came */
    current: () => servers,

    /** @returns {Promise<RTCIceServer[]>} the latest list, else GET /config's */
    async get() {
      if (servers) {
        return servers;
      }
      const response = await fetch('/config');
      if (!response.ok) {
        throw new Error(`GET /config answered ${response.status}`);
      }
      const config = await response.json();
      servers = Array.isArray(config.iceServers) ? config.iceServers : [];
      return /** @type {RTCIceServer[]} */ (servers);
    },

    /**
     * The list and TTL a welcome brought.
     * @param {unknown} list
     * @param {unknown} seconds
     */
    welcome(list, seconds) {
      if (Array.isArray(list)) {
        servers = list;
      }
      schedule(typeof seconds === 'number' ? seconds : null);
    },

    /** A call's path broke: fresh credentials first, if they expire and are not new. */
    trouble() {
      if (ttl !== null && Date.now() - fetchedAt > STALE_MS) {
        refresh(false);
      }
    },

    refresh,
  };
}
