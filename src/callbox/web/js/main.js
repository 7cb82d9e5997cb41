// @ts-check
/**
 * The page: owns the single state object and wires the modules together. The only module
 * with top-level effects, and the only one that changes `state`.
 *
 * The flows (placing.js, answering.js, callflow.js, media.js, events.js, connection.js,
 * identity.js, invite.js, checking.js) keep nothing of their own: they get `page`, read the
 * state with `page.get()` (typed read-only: StateView), and change it only through the
 * functions here, `page.update(patch)` for plain fields and a setter for each field that
 * has a rule (phase, ICE and socket trails, errors, the room's offers).
 */
import { createAnswering } from './answering.js';
import { createCallFlow } from './callflow.js';
import { createChecking } from './checking.js';
import { createConnection } from './connection.js';
import { canPickSpeaker } from './devices.js';
import { createEvents } from './events.js';
import { createIceServers } from './iceservers.js';
import { createIdentity } from './identity.js';
import { createInvite, roomLink } from './invite.js';
import { createLogger, levelFromQuery } from './log.js';
import { createMedia } from './media.js';
import { createPlacing } from './placing.js';
import { createRinger } from './ringing.js';
import { restartAfterRefresh } from './stats.js';
import { initialDevices, initialName, initialRoom } from './prefs.js';
import { createUi } from './ui.js';

/** @typedef {import('./ui.js').OfferView} OfferView */
/** @typedef {import('./ui.js').UiError} UiError */
/** @typedef {import('./call.js').Call} Call */

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
  /** send `auth.resume: true` (false only for a server that predates it and refuses it) */
  declareResume: true,
  me: '',
  socket: 'connecting',
  /** @type {string[]} */
  socketTrail: [],
  needPassword: false,
  /** the server refused for a reason retrying does not cure (room name, password) */
  refused: false,
  /** @type {Map<string, OfferView>} waiting offers of the room, in arrival order */
  offers: new Map(),
  /** @type {Set<string>} offers this user declined (no ringing for them again) */
  declined: new Set(),
  /** @type {{offerId: string, name: string} | null} the call that rings */
  incoming: null,
  /** @type {{offerId: string, call: Call, stream: MediaStream | null} | null} ready to answer */
  prepared: null,
  /** @type {{offerId: string, done: Promise<void>} | null} a preparation under way (the camera opening) */
  preparing: null,
  /** idle | calling | connecting | connected | reconnecting | ended */
  phase: 'idle',
  ice: '-',
  /** @type {string[]} */
  iceTrail: [],
  /** @type {Call | null} */
  call: null,
  /** @type {MediaStream | null} our camera and microphone in the call */
  stream: null,
  /** @type {MediaStreamTrack | null} */
  screenTrack: null,
  muted: false,
  cameraOff: false,
  /** @type {import('./ui.js').ChatLine[]} */
  chat: [],
  /** @type {{level: string, path: string, text: string} | null} */
  quality: null,
  /** @type {ReturnType<typeof import('./stats.js').createStatsPoller> | null} */
  poller: null,
  /** @type {import('./devices.js').DeviceLists} */
  devices: { cameras: [], microphones: [], speakers: [] },
  chosen: initialDevices(),
  nameNote: '',
  roomNote: '',
  qrShown: false,
  qr: '',
  checking: false,
  /** @type {{result: string, text: string}[]} */
  check: [],
  /** @type {string | null} what kind of error is on screen, to clear it when it is over */
  errorKind: null,
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  endedTimer: undefined,
  /** @type {import('./signaling.js').Signaling | null} */
  signaling: null,
};

/** @typedef {typeof state} State */
/**
 * A field as the other modules see it: collections without their mutators, objects with
 * read-only properties.
 * @template T
 * @typedef {T extends Map<infer K, infer V> ? ReadonlyMap<K, V>
 *   : T extends Set<infer V> ? ReadonlySet<V>
 *   : T extends Array<infer E> ? ReadonlyArray<E>
 *   : T extends object ? Readonly<T>
 *   : T} ReadOnly
 */
/** @typedef {{readonly [K in keyof State]: ReadOnly<State[K]>}} StateView  the state, read-only */
/**
 * The fields `update` may set: the others change only through their setters.
 * @typedef {Partial<Omit<State, 'phase' | 'endedTimer' | 'ice' | 'iceTrail' | 'socket' | 'socketTrail' | 'errorKind' | 'offers' | 'declined'>>} Patch
 */

// ---------------------------------------------------------------- changing the state

/** @param {Patch} patch  set plain fields (no render: the caller renders when it is done) */
function update(patch) {
  Object.assign(state, patch);
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
        state.ice = '-';
        state.iceTrail = [];
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
  }
}

/** A new call: its ICE trail starts again, at "new". */
function newIceTrail() {
  state.iceTrail = [];
  state.ice = '';
  setIce('new');
}

/** @param {import('./signaling.js').SocketStatus} status */
function setSocket(status) {
  if (state.socket !== status || state.socketTrail.length === 0) {
    pushTrail(state.socketTrail, status);
  }
  state.socket = status;
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

/** The room's waiting offers. */
const offers = {
  /** @param {readonly OfferView[]} views  new (or again announced) offers, in arrival order */
  add(views) {
    for (const view of views) {
      if (view?.offerId) {
        state.offers.set(view.offerId, view);
      }
    }
  },
  /** @param {string} offerId */
  remove(offerId) {
    state.offers.delete(offerId);
  },
  clear() {
    state.offers = new Map();
  },
};

/** The offers this user declined. */
const declined = {
  /** @param {string} offerId */
  add(offerId) {
    state.declined.add(offerId);
  },
  /** @param {string} offerId */
  remove(offerId) {
    state.declined.delete(offerId);
  },
  clear() {
    state.declined.clear();
  },
};

/** @param {import('./ui.js').ChatLine} line */
function addChat(line) {
  state.chat = [...state.chat, line].slice(-200);
}

// ---------------------------------------------------------------- reading the state

function render() {
  const view = state.call?.view() ?? null;
  const stream = state.stream;
  const seconds = view?.connectedAt ? Math.floor((Date.now() - view.connectedAt) / 1000) : null;
  ui.render({
    me: state.me,
    room: state.room,
    socket: state.socket,
    socketTrail: state.socketTrail,
    canReconnect: state.socket !== 'connected' && !state.needPassword && !state.refused,
    phase: state.phase,
    ice: state.ice,
    iceTrail: state.iceTrail,
    peerName: view?.peerName ?? '',
    inCall: view !== null,
    hasAudio: (stream?.getAudioTracks().length ?? 0) > 0,
    hasVideo: (stream?.getVideoTracks().length ?? 0) > 0,
    muted: state.muted,
    cameraOff: state.cameraOff,
    sharing: state.screenTrack !== null,
    canShare: Boolean(navigator.mediaDevices?.getDisplayMedia) && (view?.canRenegotiate ?? false),
    remote: view?.remote ?? { known: false, audio: false, video: false, screen: false },
    remoteVideo: view?.remoteVideo ?? 'none',
    incoming: state.incoming,
    offers: [...state.offers.values()],
    needPassword: state.needPassword,
    chat: state.chat,
    chatOpen: view?.channelOpen ?? false,
    seconds,
    quality: view ? state.quality : null,
    devices: state.devices,
    chosen: state.chosen,
    canPickSpeaker: canPickSpeaker(),
    notifications: ringer.notifications(),
    nameNote: state.nameNote,
    roomNote: state.roomNote,
    roomInvalid: Boolean(state.roomNote),
    link: roomLink(state.room),
    qrShown: state.qrShown,
    qr: state.qr,
    checking: state.checking,
    check: state.check,
    pipAvailable: document.pictureInPictureEnabled === true,
  });
}

/** @param {string} name  a timeline mark for the benchmark (performance.mark, silent) */
function mark(name) {
  performance.mark(`callbox:${name}`);
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

const serverReady = () => state.signaling?.ready() === true;

/**
 * Whether `call` is still the page's call (after an await: it may have ended meanwhile).
 * @param {Call} call
 */
const current = (call) => state.call === call;

/** What every flow module gets of the page. */
const page = {
  /** @returns {StateView} the state itself, typed read-only: change it with the functions below */
  get: () => state,
  update,
  setPhase,
  setIce,
  newIceTrail,
  setSocket,
  fail,
  clearError,
  offers,
  declined,
  addChat,
  render,
  mark,
  send,
  serverReady,
  current,
  ui,
  log,
};
/** @typedef {typeof page} Page */

// ---------------------------------------------------------------- wiring

const ice = createIceServers({
  send,
  serverReady,
  log: log.child('ice'),
  onFresh: (servers, restartRelay) => {
    const call = state.call;
    call?.setIceServers(servers);
    // A relay in use keeps its old credentials: re-allocate it (stats.js restartAfterRefresh).
    if (call && restartRelay && restartAfterRefresh(state.poller?.latest() ?? null)) {
      log.info('relayed call: ICE restart with the fresh TURN credentials');
      call.restartIce();
    }
  },
});
/** @returns {Promise<RTCIceServer[]>} */
const iceServers = () => ice.get();

const ringer = createRinger({ onOpen: () => render() });
const media = createMedia(page);
const callflow = createCallFlow(page, { ice, media, updateIncoming: () => answering.updateIncoming() });
const answering = createAnswering(page, { ice, ringer, callflow, media });
const placing = createPlacing(page, { iceServers, ringer, callflow, media, answerCall: answering.answerCall });
const events = createEvents(page, { ice, callflow, updateIncoming: answering.updateIncoming, settleDoubleCall: placing.settleDoubleCall });
const connection = createConnection(page, { onEvent: events.onServerEvent });
const identity = createIdentity(page, { endCall: () => callflow.endCall(), connect: connection.connect });
const invite = createInvite(page);
const checking = createChecking(page, { iceServers });

ui.bind({
  onCall: () => placing.placeCall(false),
  onHangup: () => callflow.endCall(),
  onAnswer: (offerId) => answering.answerCall(offerId, false),
  onDecline: answering.decline,
  onMute: media.toggleMute,
  onCamera: media.toggleCamera,
  onScreen: media.toggleScreen,
  onIdentity: identity.change,
  onPassword: identity.setPassword,
  onReconnect: connection.reconnect,
  onChat: callflow.sendChat,
  onDevice: media.chooseDevice,
  onDevicesOpen: media.refreshDevices,
  onCopyLink: invite.copyLink,
  onToggleQr: invite.toggleQr,
  onCheck: checking.run,
  onNotify: () => ringer.askNotifications().then(render),
});

window.addEventListener('pagehide', () => callflow.endCall());
navigator.mediaDevices?.addEventListener?.('devicechange', media.refreshDevices);
// the call timer
setInterval(() => state.call?.view().connectedAt && render(), 1000);

identity.start();
render();
connection.connect();
