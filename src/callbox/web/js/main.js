// @ts-check
/**
 * The page: owns the single state object, wires signaling, peer and UI together.
 * The only module with top-level effects.
 */
import { createCalls } from './call.js';
import { createLogger, levelFromQuery } from './log.js';
import { createSignaling } from './signaling.js';
import { createUi } from './ui.js';

/** @typedef {import('./ui.js').OfferView} OfferView */
/** @typedef {import('./ui.js').UiError} UiError */

const NAME_KEY = 'callbox.name';
const TRAIL_LENGTH = 6;
/** How long "ended" stays on screen before the page shows idle again. */
const ENDED_MS = 2500;

const log = createLogger('callbox', levelFromQuery(location.search));
const ui = createUi();

const state = {
  name: initialName(),
  room: initialRoom(),
  password: '',
  /** @type {string | null} resume token from welcome, sent back on reconnect */
  resume: null,
  /** @type {string | null} the token the current connection attempt carries */
  resumeTried: null,
  me: '',
  socket: 'connecting',
  /** @type {string[]} */
  socketTrail: [],
  needPassword: false,
  /** @type {RTCIceServer[] | null} */
  iceServers: null,
  /** @type {Map<string, OfferView>} waiting offers of the room, in arrival order */
  offers: new Map(),
  /** idle | calling | connecting | connected | reconnecting | ended */
  phase: 'idle',
  ice: '-',
  /** @type {string[]} */
  iceTrail: [],
  /** @type {import('./call.js').Call | null} */
  call: null,
  muted: false,
  cameraOff: false,
  /** @type {string | null} what kind of error is on screen, to clear it when it is over */
  errorKind: null,
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  endedTimer: undefined,
  /** @type {import('./signaling.js').Signaling | null} */
  signaling: null,
};

/** @returns {string} the stored name, or a new random guest name (then stored) */
function initialName() {
  let name = '';
  try {
    name = localStorage.getItem(NAME_KEY) ?? '';
  } catch {
    // Storage can be blocked (privacy settings): a name for this page only, then.
  }
  if (!name) {
    const digits = new Uint16Array(1);
    crypto.getRandomValues(digits);
    name = `guest-${(digits[0] % 10000).toString().padStart(4, '0')}`;
    storeName(name);
  }
  return name;
}

/** @param {string} name */
function storeName(name) {
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // See initialName.
  }
}

/** @returns {string} */
function initialRoom() {
  return new URLSearchParams(location.search).get('room')?.trim() || 'lobby';
}

function render() {
  const call = state.call;
  const stream = call?.stream ?? null;
  ui.render({
    me: state.me,
    room: state.room,
    socket: state.socket,
    socketTrail: state.socketTrail,
    phase: state.phase,
    ice: state.ice,
    iceTrail: state.iceTrail,
    peerName: call?.peerName ?? '',
    inCall: call !== null,
    hasAudio: (stream?.getAudioTracks().length ?? 0) > 0,
    hasVideo: (stream?.getVideoTracks().length ?? 0) > 0,
    muted: state.muted,
    cameraOff: state.cameraOff,
    needPassword: state.needPassword,
    offers: [...state.offers.values()],
  });
}

/**
 * @param {string[]} trail
 * @param {string} value
 */
function pushTrail(trail, value) {
  trail.push(value);
  trail.splice(0, Math.max(0, trail.length - TRAIL_LENGTH));
}

/** @param {string} phase */
function setPhase(phase) {
  clearTimeout(state.endedTimer);
  if (state.phase !== phase) {
    log.info('call', state.phase, '->', phase);
    state.phase = phase;
  }
  if (phase === 'ended') {
    state.endedTimer = setTimeout(() => {
      if (state.phase === 'ended') {
        state.phase = 'idle';
        render();
      }
    }, ENDED_MS);
  }
  render();
}

/** @param {string} ice */
function setIce(ice) {
  if (state.ice !== ice) {
    state.ice = ice;
    pushTrail(state.iceTrail, ice);
    render();
  }
}

/**
 * @param {string} kind  e.g. 'socket', 'call', 'media'
 * @param {UiError} err
 */
function fail(kind, err) {
  log.warn(kind, err.title, err.message);
  state.errorKind = kind;
  ui.showError(err);
}

/** @param {string} kind  clear the error on screen if it is of this kind */
function clearError(kind) {
  if (state.errorKind === kind) {
    state.errorKind = null;
    ui.showError(null);
  }
}

/** @returns {Promise<RTCIceServer[]>} */
async function iceServers() {
  if (state.iceServers) {
    return state.iceServers;
  }
  const response = await fetch('/config');
  if (!response.ok) {
    throw new Error(`GET /config answered ${response.status}`);
  }
  const config = await response.json();
  /** @type {RTCIceServer[]} */
  const servers = Array.isArray(config.iceServers) ? config.iceServers : [];
  state.iceServers = servers;
  return servers;
}

/**
 * Send a message and unwrap its ack: `{error}` acks become exceptions with a `code`.
 * @param {string} event
 * @param {unknown} payload
 */
async function send(event, payload) {
  if (!state.signaling) {
    throw new Error('not connected to the server');
  }
  const ack = await state.signaling.send(event, payload);
  if (ack && typeof ack === 'object' && !Array.isArray(ack) && ack.error) {
    const err = new Error(ack.error.message ?? ack.error.code);
    /** @type {any} */ (err).code = ack.error.code;
    throw err;
  }
  return ack;
}

const calls = createCalls({
  state,
  ui,
  log,
  send,
  iceServers,
  setPhase,
  setIce,
  fail,
  clearError,
});

/**
 * @param {string} event
 * @param {any} payload
 */
function onServerEvent(event, payload) {
  switch (event) {
    case 'welcome':
      state.resumeTried = null;
      if (payload.resumed) {
        log.info('session resumed', payload.offerId ?? '');
        calls.resumed(payload.offerId ?? null);
      } else {
        // A new session: whatever call we had is over on the server.
        calls.sessionLost();
      }
      state.me = String(payload.userName ?? '');
      state.room = String(payload.room ?? state.room);
      state.iceServers = Array.isArray(payload.iceServers) ? payload.iceServers : null;
      state.resume = payload.resume ?? null;
      state.needPassword = false;
      clearError('auth');
      render();
      break;
    case 'availableOffers':
      state.offers = new Map();
      for (const view of Array.isArray(payload) ? payload : []) {
        state.offers.set(view.offerId, view);
      }
      render();
      break;
    case 'newOfferAwaiting':
      for (const view of Array.isArray(payload) ? payload : [payload]) {
        if (view?.offerId) {
          state.offers.set(view.offerId, view);
        }
      }
      render();
      break;
    case 'offerRemoved':
      state.offers.delete(payload?.offerId);
      calls.offerRemoved(payload);
      render();
      break;
    case 'answerResponse':
      calls.answered(payload);
      break;
    case 'receivedIceCandidateFromServer':
      calls.remoteCandidate(payload);
      break;
    case 'renegotiate':
      calls.renegotiate(payload);
      break;
    case 'callEnded':
      calls.ended(payload);
      break;
    case 'signalingError':
      fail('server', {
        title: 'Server refused a request',
        message: `${payload?.message ?? payload?.code ?? 'unknown error'}${
          payload?.event ? ` (${payload.event})` : ''
        }`,
      });
      break;
    default:
      log.debug('unhandled event', event);
  }
}

/**
 * @param {import('./signaling.js').SocketStatus} status
 * @param {import('./signaling.js').StatusDetail} detail
 */
function onSocketStatus(status, detail) {
  if (detail.error === 'unauthorized' && state.resumeTried) {
    // The server would not resume (grace over, or the token is no longer valid):
    // start a new session; the call, if any, is over.
    log.warn('resume refused; connecting as a new session');
    state.resume = null;
    state.resumeTried = null;
    calls.sessionLost();
    connect();
    return;
  }
  if (state.socket !== status || state.socketTrail.length === 0) {
    pushTrail(state.socketTrail, status);
  }
  state.socket = status;
  if (status === 'connected') {
    clearError('socket');
  } else if (detail.error === 'unauthorized') {
    state.needPassword = true;
    fail('auth', {
      title: 'Password needed',
      message: state.password
        ? 'The server refused this password. Enter it again.'
        : 'This server needs a password. Enter it below.',
    });
  } else if (detail.error || (detail.reason && detail.reason !== 'io client disconnect')) {
    const retrying = status === 'reconnecting' ? ' Retrying…' : '';
    const keeping = state.call && status === 'reconnecting' ? ' The call goes on meanwhile.' : '';
    fail('socket', {
      title: 'Server unreachable',
      message: `Lost contact with the signaling server (${detail.error ?? detail.reason}).${retrying}${keeping}`,
    });
  }
  render();
}

function connect() {
  state.signaling?.close();
  state.me = '';
  state.offers = new Map();
  state.signaling = createSignaling({
    auth: () => {
      /** @type {import('./signaling.js').Auth} */
      const auth = { userName: state.name, room: state.room };
      if (state.password) {
        auth.password = state.password;
      }
      state.resumeTried = state.resume;
      // true declares that this page can resume; the token resumes the session
      auth.resume = state.resume ?? true;
      return auth;
    },
    onEvent: onServerEvent,
    onStatus: onSocketStatus,
    log: log.child('socket'),
  });
}

ui.bind({
  onCall: () => calls.placeCall(false),
  onHangup: () => {
    ui.showNotice('');
    calls.endCall();
  },
  onAnswer: (offerId) => calls.answerCall(offerId, false),
  onMute: () => {
    state.muted = !state.muted;
    state.call?.stream?.getAudioTracks().forEach((t) => (t.enabled = !state.muted));
    render();
  },
  onCamera: () => {
    state.cameraOff = !state.cameraOff;
    state.call?.stream?.getVideoTracks().forEach((t) => (t.enabled = !state.cameraOff));
    render();
  },
  onIdentity: (name, room) => {
    const nextName = name || state.name;
    const nextRoom = room || 'lobby';
    if (nextName === state.name && nextRoom === state.room && state.me) {
      return;
    }
    calls.endCall();
    state.name = nextName;
    state.room = nextRoom;
    state.resume = null;
    storeName(nextName);
    const url = new URL(location.href);
    url.searchParams.set('room', nextRoom);
    history.replaceState(null, '', url);
    ui.setIdentity(nextName, nextRoom);
    connect();
  },
  onPassword: (password) => {
    state.password = password;
    state.resume = null;
    connect();
  },
});

window.addEventListener('pagehide', () => calls.endCall());

ui.setIdentity(state.name, state.room);
render();
connect();
