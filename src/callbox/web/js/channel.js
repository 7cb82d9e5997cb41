// @ts-check
/**
 * The call's data channel (PLAN.md decision 6, docs/protocol.md "The call's data
 * channel"): UTF-8 JSON objects of at most 64 KiB, each with a `type`; unknown types are
 * ignored. Once it is open, the call's own messages (hang-up, media state, chat,
 * renegotiation) travel here, so the call does not need the server any more.
 *
 * This module only checks and encodes messages and wraps an RTCDataChannel; what a
 * message means for the call is for the caller of `createChannel` to decide.
 */

/** Largest message, in bytes of UTF-8. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** Longest chat text, in characters. */
export const MAX_CHAT_CHARS = 2000;

/**
 * @typedef {{type: 'hello', name: string, features: string[]}
 *   | {type: 'hangup'}
 *   | {type: 'media', audio: boolean, video: boolean, screen: boolean}
 *   | {type: 'chat', id: string, text: string}
 *   | {type: 'description', description: RTCSessionDescriptionInit}
 *   | {type: 'candidate', candidate: RTCIceCandidateInit}} Message
 */

/** What this client speaks (sent in `hello`). */
export const FEATURES = ['hangup', 'media', 'chat', 'renegotiate'];

/** @param {unknown} value */
const isObject = (value) => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Parse and check one message; null for anything that is not a valid known message.
 * @param {unknown} data  what the channel delivered
 * @returns {Message | null}
 */
export function parseMessage(data) {
  if (typeof data !== 'string' || new TextEncoder().encode(data).length > MAX_MESSAGE_BYTES) {
    return null;
  }
  /** @type {any} */
  let m;
  try {
    m = JSON.parse(data);
  } catch {
    return null;
  }
  if (!isObject(m)) {
    return null;
  }
  switch (m.type) {
    case 'hello':
      return typeof m.name === 'string' && Array.isArray(m.features)
        ? {
            type: 'hello',
            name: m.name.slice(0, 64),
            features: m.features.filter((/** @type {unknown} */ f) => typeof f === 'string'),
          }
        : null;
    case 'hangup':
      return { type: 'hangup' };
    case 'media':
      return typeof m.audio === 'boolean' && typeof m.video === 'boolean'
        ? { type: 'media', audio: m.audio, video: m.video, screen: m.screen === true }
        : null;
    case 'chat':
      return typeof m.id === 'string' &&
        typeof m.text === 'string' &&
        m.text.length > 0 &&
        m.text.length <= MAX_CHAT_CHARS
        ? { type: 'chat', id: m.id.slice(0, 64), text: m.text }
        : null;
    case 'description': {
      const d = m.description;
      return isObject(d) && (d.type === 'offer' || d.type === 'answer') && typeof d.sdp === 'string'
        ? { type: 'description', description: { type: d.type, sdp: d.sdp } }
        : null;
    }
    case 'candidate':
      return isObject(m.candidate) && typeof m.candidate.candidate === 'string'
        ? { type: 'candidate', candidate: m.candidate }
        : null;
    default:
      return null; // unknown types are ignored (a newer peer may speak more)
  }
}

/**
 * @typedef {object} Channel
 * @property {() => boolean} open  whether messages can be sent now
 * @property {(message: Message) => boolean} send  false when closed or too large
 * @property {() => void} close  stop listening (the peer connection closes the channel)
 */

/**
 * @param {RTCDataChannel} dc
 * @param {object} handlers
 * @param {() => void} handlers.onOpen
 * @param {(message: Message) => void} handlers.onMessage
 * @param {() => void} handlers.onClose  the other side closed it, or the connection died
 * @param {import('./log.js').Logger} handlers.log
 * @returns {Channel}
 */
export function createChannel(dc, { onOpen, onMessage, onClose, log }) {
  let listening = true;
  dc.onopen = () => {
    if (listening) {
      log.info('data channel open');
      onOpen();
    }
  };
  dc.onclose = () => {
    if (listening) {
      log.info('data channel closed');
      onClose();
    }
  };
  dc.onmessage = ({ data }) => {
    const message = parseMessage(data);
    if (!message) {
      log.debug('ignored data channel message', String(data).slice(0, 80));
    } else if (listening) {
      onMessage(message);
    }
  };
  return {
    open: () => dc.readyState === 'open',
    send(message) {
      const text = JSON.stringify(message);
      if (dc.readyState !== 'open' || new TextEncoder().encode(text).length > MAX_MESSAGE_BYTES) {
        return false;
      }
      try {
        dc.send(text);
        return true;
      } catch (err) {
        log.warn('data channel send failed', err);
        return false;
      }
    },
    close() {
      listening = false;
      dc.onopen = dc.onclose = dc.onmessage = null;
    },
  };
}
