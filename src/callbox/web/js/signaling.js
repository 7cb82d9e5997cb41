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

/** @typedef {'connecting' | 'connected' | 'reconnecting' | 'offline'} SocketStatus */

/**
 * @typedef {object} StatusDetail
 * @property {string} [reason]  why the socket is not connected (socket.io's reason)
 * @property {string} [error]   connect_error message, e.g. "unauthorized"
 */

/**
 * @typedef {object} Auth
 * @property {string} userName
 * @property {string} room
 * @property {string} [password]
 * @property {string} [resume]
 * @property {number} [lastSeq]
 */

/**
 * @typedef {object} Signaling
 * @property {(event: string, payload: unknown) => Promise<any>} send
 *   emit an event and resolve with its ack; while socket.io is reconnecting the event
 *   waits in its buffer and goes out once reconnected (resumed). Rejects when offline
 *   for good, or on timeout
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
  const socket = io(location.origin, {
    auth: (cb) => {
      const current = auth();
      if (current.resume && lastSeq > 0) {
        current.lastSeq = lastSeq;
      }
      cb(current);
    },
    // Don't keep retrying forever at a fast pace when the server is gone.
    reconnectionDelayMax: 5000,
  });
  onStatus('connecting', {});

  socket.on('connect', () => {
    log.info('connected', socket.id);
    onStatus('connected', {});
  });
  socket.on('disconnect', (reason) => {
    log.warn('disconnected:', reason);
    if (closed) {
      return;
    }
    // socket.io reconnects by itself except after the server or we disconnected it.
    onStatus(socket.active ? 'reconnecting' : 'offline', { reason });
  });
  socket.on('connect_error', (err) => {
    log.warn('connect_error:', err.message);
    if (closed) {
      return;
    }
    onStatus(socket.active ? 'reconnecting' : 'offline', { error: err.message });
  });
  socket.onAny((event, payload, seq) => {
    log.debug('<-', event, payload, seq ?? '');
    if (event === 'welcome' && !payload?.resumed) {
      lastSeq = 0; // a new session numbers from 1 again
    } else if (typeof seq === 'number') {
      if (seq <= lastSeq) {
        return; // already handled before a resume
      }
      lastSeq = seq;
    }
    onEvent(event, payload);
  });

  return {
    async send(event, payload) {
      if (closed || !(socket.connected || socket.active)) {
        throw new Error(`not connected to the server (could not send ${event})`);
      }
      log.debug(socket.connected ? '->' : '-> (queued)', event, payload);
      const timeout = socket.connected ? ACK_TIMEOUT_MS : QUEUED_ACK_TIMEOUT_MS;
      const ack = await socket.timeout(timeout).emitWithAck(event, payload);
      log.debug('ack', event, ack);
      return ack;
    },
    close() {
      if (closed) {
        return;
      }
      closed = true;
      socket.offAny();
      socket.removeAllListeners();
      socket.disconnect();
    },
  };
}
