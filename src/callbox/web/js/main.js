// @ts-check
/**
 * The page: owns the single state object, wires signaling, peer and UI together.
 * The only module with top-level effects.
 */
import { createLogger, levelFromQuery } from './log.js';
import { createPeer } from './peer.js';
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

/**
 * @typedef {object} Call  the call in progress (at most one)
 * @property {'caller' | 'answerer'} role
 * @property {string | null} offerId  null until the server acked newOffer
 * @property {string} peerName
 * @property {import('./peer.js').Peer | null} peer
 * @property {MediaStream | null} stream  our camera and microphone, if any
 * @property {RTCIceCandidateInit[]} outbox  local candidates waiting for the offerId
 */

const state = {
  name: initialName(),
  room: initialRoom(),
  password: '',
  /** @type {string | null} resume token from welcome, sent back on reconnect */
  resume: null,
  me: '',
  socket: 'connecting',
  /** @type {string[]} */
  socketTrail: [],
  needPassword: false,
  /** @type {RTCIceServer[] | null} */
  iceServers: null,
  /** @type {Map<string, OfferView>} waiting offers of the room, in arrival order */
  offers: new Map(),
  /** idle | calling | connecting | connected | ended */
  phase: 'idle',
  ice: '-',
  /** @type {string[]} */
  iceTrail: [],
  /** @type {Call | null} */
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

/** @param {unknown} err */
function describe(err) {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The readable meaning of a getUserMedia failure.
 * @param {unknown} err
 * @returns {string}
 */
function mediaMessage(err) {
  const name = err instanceof DOMException ? err.name : '';
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'Permission to use the camera and microphone was denied.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera or microphone was found.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The camera or microphone is in use by another application.';
    default:
      return `The camera and microphone could not be opened (${describe(err)}).`;
  }
}

/** @returns {Promise<MediaStream>} */
async function openMedia() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new DOMException('this page is not a secure context (use https)', 'SecurityError');
  }
  return navigator.mediaDevices.getUserMedia({ audio: true, video: true });
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

/**
 * @param {Call} call
 * @param {RTCIceServer[]} servers
 */
function makePeer(call, servers) {
  return createPeer({
    iceServers: servers,
    log: log.child('peer'),
    onSignal: (candidate) => {
      if (call.offerId === null) {
        call.outbox.push(candidate);
      } else {
        sendCandidate(call, candidate);
      }
    },
    onState: ({ ice, connection }) => {
      if (state.call !== call) {
        return;
      }
      setIce(ice);
      if (connection === 'connected') {
        clearError('call');
        setPhase('connected');
      } else if (connection === 'failed') {
        fail('call', {
          title: 'Connection failed',
          message: 'No network path to the other side was found (a TURN server may be needed).',
        });
        endCall();
      }
    },
    onTrack: (stream) => {
      if (state.call === call) {
        ui.setRemoteStream(stream);
      }
    },
  });
}

/**
 * @param {Call} call
 * @param {RTCIceCandidateInit} candidate
 */
function sendCandidate(call, candidate) {
  send('sendIceCandidateToSignalingServer', { iceCandidate: candidate, offerId: call.offerId }).catch(
    (err) => log.warn('candidate not sent', describe(err)),
  );
}

/**
 * Start the call's media: the camera and microphone, or none for a receive-only call.
 * On failure, offer a receive-only retry and return undefined.
 * @param {Call} call
 * @param {boolean} receiveOnly
 * @param {string} retryLabel
 * @param {() => void} retry
 * @returns {Promise<MediaStream | null | undefined>}
 */
async function startMedia(call, receiveOnly, retryLabel, retry) {
  if (receiveOnly) {
    return null;
  }
  try {
    return await openMedia();
  } catch (err) {
    if (state.call === call) {
      dropCall(call);
      setPhase('idle');
      fail('media', {
        title: 'No camera',
        message: `${mediaMessage(err)} You can still see and hear the other side.`,
        action: { label: retryLabel, run: retry },
      });
    }
    return undefined;
  }
}

/** Place a call: the offer waits on the server until someone answers it. */
async function placeCall(receiveOnly = false) {
  if (state.call) {
    return;
  }
  clearError('media');
  clearError('call');
  ui.showNotice('');
  /** @type {Call} */
  const call = { role: 'caller', offerId: null, peerName: '', peer: null, stream: null, outbox: [] };
  state.call = call;
  state.iceTrail = ['new'];
  state.ice = 'new';
  setPhase('calling');
  const stream = await startMedia(call, receiveOnly, 'Call without camera', () => placeCall(true));
  if (stream === undefined) {
    return;
  }
  try {
    call.stream = stream;
    if (state.call !== call) {
      stream?.getTracks().forEach((t) => t.stop());
      return;
    }
    ui.setLocalStream(stream);
    call.peer = makePeer(call, await iceServers());
    const offer = await call.peer.offer(stream);
    if (state.call !== call) {
      return;
    }
    const ack = await send('newOffer', offer);
    if (state.call !== call) {
      // Hung up while the offer was on its way: withdraw it.
      send('hangup', { offerId: ack.offerId }).catch(() => {});
      return;
    }
    call.offerId = ack.offerId;
    for (const candidate of call.outbox.splice(0)) {
      sendCandidate(call, candidate);
    }
    ui.showNotice('Waiting for someone to answer…');
    render();
  } catch (err) {
    if (state.call === call) {
      fail('call', { title: 'Call failed', message: describe(err) });
      endCall();
    }
  }
}

/**
 * Answer a waiting offer.
 * @param {string} offerId
 * @param {boolean} receiveOnly
 */
async function answerCall(offerId, receiveOnly = false) {
  const view = state.offers.get(offerId);
  if (state.call || !view) {
    return;
  }
  clearError('media');
  clearError('call');
  ui.showNotice('');
  /** @type {Call} */
  const call = {
    role: 'answerer',
    offerId,
    peerName: view.offererUserName,
    peer: null,
    stream: null,
    outbox: [],
  };
  state.call = call;
  state.iceTrail = ['new'];
  state.ice = 'new';
  setPhase('connecting');
  const stream = await startMedia(call, receiveOnly, 'Answer without camera', () =>
    answerCall(offerId, true),
  );
  if (stream === undefined) {
    return;
  }
  try {
    call.stream = stream;
    if (state.call !== call) {
      stream?.getTracks().forEach((t) => t.stop());
      return;
    }
    ui.setLocalStream(stream);
    const peer = makePeer(call, await iceServers());
    call.peer = peer;
    for (const candidate of view.offerIceCandidates ?? []) {
      peer.addRemoteCandidate(candidate);
    }
    const answer = await peer.answer(view.offer, stream);
    if (state.call !== call) {
      return;
    }
    const buffered = await send('newAnswer', {
      offerId,
      offererUserName: view.offererUserName,
      answer,
    });
    if (state.call !== call) {
      return;
    }
    for (const candidate of Array.isArray(buffered) ? buffered : []) {
      peer.addRemoteCandidate(candidate);
    }
  } catch (err) {
    if (state.call !== call) {
      return;
    }
    const code = /** @type {any} */ (err).code;
    if (code === 'offer_taken' || code === 'not_found') {
      fail('call', {
        title: 'Call already taken',
        message: `The call from ${view.offererUserName} was already taken by someone else, or withdrawn.`,
      });
      state.offers.delete(offerId);
      endCall({ notify: false });
    } else {
      fail('call', { title: 'Answer failed', message: describe(err) });
      endCall();
    }
  }
}

/**
 * Release a call's resources: close the peer, stop the camera, clear the videos.
 * @param {Call} call
 */
function dropCall(call) {
  if (state.call === call) {
    state.call = null;
  }
  call.peer?.close();
  call.stream?.getTracks().forEach((track) => track.stop());
  ui.setLocalStream(null);
  ui.setRemoteStream(null);
  state.muted = false;
  state.cameraOff = false;
}

/**
 * The one way a call ends: hang up, page hidden, peer left, failure.
 * Idempotent: without a call it does nothing.
 * @param {{notify?: boolean}} [options]  notify: tell the server (false when it told us)
 */
function endCall({ notify = true } = {}) {
  const call = state.call;
  if (!call) {
    return;
  }
  if (notify && call.offerId !== null) {
    send('hangup', { offerId: call.offerId }).catch((err) => log.warn('hangup', describe(err)));
  }
  dropCall(call);
  setIce('closed');
  setPhase('ended');
}

/**
 * @param {string} event
 * @param {any} payload
 */
function onServerEvent(event, payload) {
  const call = state.call;
  switch (event) {
    case 'welcome':
      if (call && !payload.resume) {
        // We were away and the server does not resume sessions: it ended our call.
        fail('call', {
          title: 'Call ended',
          message: 'The connection to the server was lost, so the call ended.',
        });
        endCall({ notify: false });
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
      if (
        call?.role === 'caller' &&
        call.offerId === payload?.offerId &&
        payload?.reason !== 'answered'
      ) {
        ui.showNotice(`Your call was withdrawn by the server (${payload?.reason ?? 'no reason'}).`);
        endCall({ notify: false });
      }
      render();
      break;
    case 'answerResponse':
      if (call?.role === 'caller' && call.peer && payload?.offerId === call.offerId) {
        call.peerName = String(payload.answererUserName ?? '');
        ui.showNotice('');
        setPhase('connecting');
        const peer = call.peer;
        peer
          .acceptAnswer(payload.answer)
          .then(() => {
            for (const candidate of payload.answererIceCandidates ?? []) {
              peer.addRemoteCandidate(candidate);
            }
          })
          .catch((err) => {
            if (state.call === call) {
              fail('call', { title: 'Call failed', message: describe(err) });
              endCall();
            }
          });
      }
      break;
    case 'receivedIceCandidateFromServer':
      call?.peer?.addRemoteCandidate(payload);
      break;
    case 'callEnded':
      if (call && (payload?.offerId === undefined || payload.offerId === call.offerId)) {
        const who = payload?.by ? String(payload.by) : 'The other side';
        if (payload?.reason === 'peer-disconnected') {
          fail('call', { title: 'Peer left', message: `${who} left the call (disconnected).` });
        } else {
          ui.showNotice(`${who} hung up.`);
        }
        endCall({ notify: false });
      }
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
    fail('socket', {
      title: 'Server unreachable',
      message: `Lost contact with the signaling server (${detail.error ?? detail.reason}).${retrying}`,
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
      if (state.resume) {
        auth.resume = state.resume;
      }
      return auth;
    },
    onEvent: onServerEvent,
    onStatus: onSocketStatus,
    log: log.child('socket'),
  });
}

ui.bind({
  onCall: () => placeCall(false),
  onHangup: () => {
    ui.showNotice('');
    endCall();
  },
  onAnswer: (offerId) => answerCall(offerId, false),
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
    endCall();
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

window.addEventListener('pagehide', () => endCall());

ui.setIdentity(state.name, state.room);
render();
connect();
