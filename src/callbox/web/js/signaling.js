// @ts-check
/**
 * The socket.io connection to the callbox server (wire protocol: DESIGN.md section 2).
 * It knows nothing about calls: it forwards server events to `onEvent`, reports
 * its status to `onStatus`, and turns `send` into a promise of the server's ack.
 */
import { io } from '/vendor/socket.io.esm.min.js';

/** How long to wait for an ack before giving up. */
const ACK_TIMEOUT_MS = 10000;
/**
 * How long a message sent while the socket is away waits (socket.io keeps it in its
 * buffer and sends it once reconnected): the server's resume grace, 30 s by default,
 * plus the usual ack time.
 */
const QUEUED_ACK_TIMEOUT_MS = 40000;

/** First and longest wait before connecting again after the server closed the session. */
const RETRY_FIRST_MS = 1000;
const RETRY_MAX_MS = 10000;

/** @typedef {'connecting' | 'connected' | 'reconnecting' | 'offline'} SocketStatus */

/**
 * @typedef {object} StatusDetail
 * @property {string} [reason]  why the socket is not connected (socket.io's reason)
 * @property {string} [error]   connect_error message, e.g. "unauthorized"
 * @property {string} [code]    the server's refusal code (connect_error data.code)
 * @property {number} [retryInMs]  when the next attempt is due (reconnecting)
 */

/**
 * @typedef {object} Auth
 * @property {string} userName
 * @property {string} room
 * @property {string} [password]
 * @property {string | true} [resume]  true: "I can resume" (a new session); a token: resume
 * @property {number} [lastSeq]
 */

/**
 * @typedef {object} Signaling
 * @property {(event: string, payload: unknown) => Promise<any>} send
 *   emit an event and resolve with its ack; while socket.io is reconnecting the event
 *   waits in its buffer and goes out once reconnected (resumed). Rejects when offline
 *   for good, or on timeout
 * @property {() => void} reconnect  try again now (the Reconnect button); no-op if connected
 * @property {() => boolean} ready  connected and welcomed
 * @property {() => void} close  disconnect for good (idempotent)
 */

/**
 * @param {object} options
 * @param {() => Auth} options.auth  called on every (re)connection attempt
 * @param {(event: string, payload: any) => void} options.onEvent  every server event
 * @param {(status: SocketStatus, detail: StatusDetail) => void} options.onStatus
 * @param {import('./log.js').Logger} options.log
 * @returns {Signaling}
 */
export function createSignaling({ auth, onEvent, onStatus, log }) {
  let closed = false;
  // Events addressed to this session carry a sequence number as their last argument; on a
  // resume the server sends again everything after the last one we got (a dying socket
  // loses what was in flight).
  let lastSeq = 0;
  // Our own messages are numbered too (payload.seq) and kept until acknowledged: one that
  // was in flight when the socket died is sent again after the resume, and the server,
  // which remembers what it handled, answers it without running it twice. While the
  // session is away nothing is sent, so the re-sent ones keep their place in the order.
  let sendSeq = 0;
  /** @type {Map<number, {event: string, body: unknown, resolve: (ack: any) => void,
   *   reject: (err: Error) => void, timer: ReturnType<typeof setTimeout>}>} */
  const unacked = new Map();
  let ready = false; // connected and welcomed (a new session or a resumed one)
  // socket.io reconnects by itself after a lost transport, but not after the server
  // closed the session ("io server disconnect", e.g. an older server stopping): then we
  // connect again ourselves, with backoff (PLAN.md decision 4).
  let retries = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retryTimer;
  const socket = io(location.origin, {
    auth: (cb) => {
      const current = auth();
      if (typeof current.resume === 'string' && lastSeq > 0) {
        current.lastSeq = lastSeq;
      }
      cb(current);
    },
    // websocket first (no sticky sessions needed behind a balancer), polling if it fails
    transports: ['websocket', 'polling'],
    // Don't keep retrying forever at a fast pace when the server is gone.
    reconnectionDelayMax: 5000,
  });
  onStatus('connecting', {});

  /** Connect again after a pause that grows with each failed attempt. */
  const retryLater = () => {
    clearTimeout(retryTimer);
    const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** retries) * (0.8 + Math.random() * 0.4);
    retries += 1;
    retryTimer = setTimeout(() => {
      if (!closed && !socket.connected) {
        socket.connect();
      }
    }, delay);
    return Math.round(delay);
  };

  socket.on('connect', () => {
    log.info('connected', socket.id);
    retries = 0;
    clearTimeout(retryTimer);
    onStatus('connected', {});
  });
  socket.on('disconnect', (reason) => {
    log.warn('disconnected:', reason);
    ready = false;
    if (closed) {
      return;
    }
    for (const [seq, entry] of unacked) {
      // they wait for the resume now, at most the server's grace period
      clearTimeout(entry.timer);
      entry.timer = expire(seq, QUEUED_ACK_TIMEOUT_MS);
    }
    if (socket.active) {
      onStatus('reconnecting', { reason }); // socket.io tries again by itself
    } else if (reason === 'io server disconnect') {
      onStatus('reconnecting', { reason, retryInMs: retryLater() });
    } else {
      onStatus('offline', { reason });
    }
  });
  socket.on('connect_error', (err) => {
    log.warn('connect_error:', err.message);
    if (closed) {
      return;
    }
    /** @type {any} */
    const data = /** @type {any} */ (err).data;
    const code = typeof data?.code === 'string' ? data.code : undefined;
    const message = typeof data?.message === 'string' ? data.message : err.message;
    if (socket.active) {
      onStatus('reconnecting', { error: err.message });
    } else if (code === 'rate_limited' || code === 'unavailable') {
      // the server refused for now: try again later by ourselves
      onStatus('reconnecting', { error: message, code, retryInMs: retryLater() });
    } else {
      // refused for a reason retrying does not cure (password, room name): main decides
      onStatus('offline', { error: code ?? err.message, code, reason: message });
    }
  });
  socket.onAny((event, payload, seq) => {
    log.debug('<-', event, payload, seq ?? '');
    if (event === 'welcome') {
      if (!payload?.resumed) {
        lastSeq = 0; // a new session numbers from 1 again, both ways
        sendSeq = 0;
        for (const [n, entry] of unacked) {
          unacked.delete(n);
          clearTimeout(entry.timer);
          entry.reject(new Error('the server ended the session; message not sent'));
        }
      }
      ready = true;
      for (const [n, entry] of unacked) {
        transmit(n, entry); // what was in flight when the socket died, in order
      }
    } else if (typeof seq === 'number') {
      if (seq <= lastSeq) {
        return; // already handled before a resume
      }
      lastSeq = seq;
    }
    onEvent(event, payload);
  });

  /**
   * @param {number} seq
   * @param {number} ms
   */
  function expire(seq, ms) {
    return setTimeout(() => {
      const entry = unacked.get(seq);
      if (entry) {
        unacked.delete(seq);
        entry.reject(new Error(`no answer from the server to ${entry.event}`));
      }
    }, ms);
  }

  /**
   * @param {number} seq
   * @param {{event: string, body: unknown}} entry
   */
  function transmit(seq, entry) {
    log.debug('->', entry.event, entry.body);
    socket.emit(entry.event, entry.body, (/** @type {any} */ ack) => {
      const waiting = unacked.get(seq);
      if (!waiting) {
        return; // answered already (an ack of the first try and of the re-send)
      }
      unacked.delete(seq);
      clearTimeout(waiting.timer);
      log.debug('ack', entry.event, ack);
      waiting.resolve(ack);
    });
  }

  return {
    send(event, payload) {
      if (closed || !(socket.connected || socket.active)) {
        return Promise.reject(
          new Error(`not connected to the server (could not send ${event})`),
        );
      }
      const seq = ++sendSeq;
      const body =
        payload && typeof payload === 'object' && !Array.isArray(payload)
          ? { ...payload, seq }
          : payload;
      return new Promise((resolve, reject) => {
        const timer = expire(seq, ready ? ACK_TIMEOUT_MS : QUEUED_ACK_TIMEOUT_MS);
        const entry = { event, body, resolve, reject, timer };
        unacked.set(seq, entry);
        if (ready) {
          transmit(seq, entry);
        } else {
          log.debug('-> (queued until resumed)', event, body);
        }
      });
    },
    reconnect() {
      if (closed || socket.connected) {
        return;
      }
      clearTimeout(retryTimer);
      retries = 0;
      if (socket.active) {
        // socket.io is waiting between attempts: start over now
        socket.disconnect();
      }
      socket.connect();
    },
    ready: () => ready,
    close() {
      if (closed) {
        return;
      }
      closed = true;
      clearTimeout(retryTimer);
      for (const entry of unacked.values()) {
        clearTimeout(entry.timer);
      }
      unacked.clear();
      socket.offAny();
      socket.removeAllListeners();
      socket.disconnect();
    },
  };
}
