// @ts-check
/**
 * All DOM access of the page. Elements are looked up once; `render(state)` only
 * sets textContent, disabled, hidden and data-state. Text that comes from other
 * users (their names) is only ever written with textContent: never as HTML.
 */

/**
 * @typedef {object} OfferView  a waiting call, as the server sends it
 * @property {string} offerId
 * @property {string} offererUserName
 * @property {RTCSessionDescriptionInit} offer
 * @property {RTCIceCandidateInit[]} offerIceCandidates
 * @property {string | null} answererUserName
 * @property {RTCSessionDescriptionInit | null} answer
 * @property {RTCIceCandidateInit[]} answererIceCandidates
 */

/**
 * @typedef {object} UiError  what the alert region shows
 * @property {string} title  short name of what failed
 * @property {string} message  what it means for the user, and what to do
 * @property {{label: string, run: () => void}} [action]  an optional way out
 */

/**
 * @typedef {object} ViewState  what the page shows (a read-only view of main.js's state)
 * @property {string} me  the name the server assigned ('' before welcome)
 * @property {string} room
 * @property {string} socket  connecting | connected | reconnecting | offline
 * @property {string[]} socketTrail
 * @property {string} phase  idle | calling | connecting | connected | reconnecting | ended
 * @property {string} ice  RTCIceConnectionState, or '-' without a call
 * @property {string[]} iceTrail
 * @property {string} peerName  who the call is with ('' when unknown)
 * @property {boolean} inCall
 * @property {boolean} hasAudio
 * @property {boolean} hasVideo
 * @property {boolean} muted
 * @property {boolean} cameraOff
 * @property {boolean} needPassword
 * @property {OfferView[]} offers
 */

/**
 * @typedef {object} Handlers
 * @property {() => void} onCall
 * @property {() => void} onHangup
 * @property {(offerId: string) => void} onAnswer
 * @property {() => void} onMute
 * @property {() => void} onCamera
 * @property {(name: string, room: string) => void} onIdentity  name or room edited
 * @property {(password: string) => void} onPassword
 */

/** @typedef {ReturnType<typeof createUi>} Ui */

/** Readable labels for the call phases. */
const PHASE_TEXT = {
  idle: 'idle',
  calling: 'calling…',
  connecting: 'connecting…',
  connected: 'connected',
  reconnecting: 'reconnecting…',
  ended: 'ended',
};

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
function byId(id, type) {
  const el = document.getElementById(id);
  if (!(el instanceof type)) {
    throw new Error(`index.html lacks #${id}`);
  }
  return el;
}

/** Look up the page's elements once and return the functions that change them. */
export function createUi() {
  const el = {
    me: byId('me', HTMLElement),
    myRoom: byId('my-room', HTMLElement),
    identity: byId('identity', HTMLFormElement),
    name: byId('name', HTMLInputElement),
    room: byId('room', HTMLInputElement),
    passwordForm: byId('password-form', HTMLFormElement),
    password: byId('password', HTMLInputElement),
    socketState: byId('socket-state', HTMLElement),
    socketTrail: byId('socket-trail', HTMLElement),
    callState: byId('call-state', HTMLElement),
    callPeer: byId('call-peer', HTMLElement),
    iceState: byId('ice-state', HTMLElement),
    iceTrail: byId('ice-trail', HTMLElement),
    call: byId('call', HTMLButtonElement),
    hangup: byId('hangup', HTMLButtonElement),
    mute: byId('mute', HTMLButtonElement),
    camera: byId('camera', HTMLButtonElement),
    localVideo: byId('local-video', HTMLVideoElement),
    remoteVideo: byId('remote-video', HTMLVideoElement),
    stage: byId('stage', HTMLElement),
    offers: byId('offers', HTMLUListElement),
    noOffers: byId('no-offers', HTMLElement),
    error: byId('error', HTMLElement),
    errorText: byId('error-text', HTMLElement),
    errorAction: byId('error-action', HTMLButtonElement),
    errorClose: byId('error-close', HTMLButtonElement),
    notice: byId('notice', HTMLElement),
  };
  /** @type {(() => void) | null} */
  let errorAction = null;
  /** Key of the rendered offer list, to rebuild it only when it changes. */
  let offersKey = '';

  /** @param {UiError | null} err */
  const showError = (err) => {
    errorAction = err?.action?.run ?? null;
    el.errorText.textContent = err ? `${err.title}: ${err.message}` : '';
    el.errorAction.textContent = err?.action?.label ?? '';
    el.errorAction.hidden = !err?.action;
    el.error.hidden = !err;
  };

  return {
    /**
     * Wire the user's actions to the handlers.
     * @param {Handlers} h
     */
    bind(h) {
      el.call.addEventListener('click', () => h.onCall());
      el.hangup.addEventListener('click', () => h.onHangup());
      el.mute.addEventListener('click', () => h.onMute());
      el.camera.addEventListener('click', () => h.onCamera());
      el.offers.addEventListener('click', (event) => {
        const target = event.target instanceof Element ? event.target.closest('button') : null;
        if (target?.dataset.offerId) {
          h.onAnswer(target.dataset.offerId);
        }
      });
      const identityChanged = () => h.onIdentity(el.name.value.trim(), el.room.value.trim());
      el.name.addEventListener('change', identityChanged);
      el.room.addEventListener('change', identityChanged);
      el.identity.addEventListener('submit', (event) => {
        event.preventDefault();
        identityChanged();
      });
      el.passwordForm.addEventListener('submit', (event) => {
        event.preventDefault();
        h.onPassword(el.password.value);
      });
      el.errorAction.addEventListener('click', () => {
        const run = errorAction;
        showError(null);
        run?.();
      });
      el.errorClose.addEventListener('click', () => showError(null));
    },

    /**
     * Put values in the name and room inputs (at start, or after the server renamed us).
     * @param {string} name
     * @param {string} room
     */
    setIdentity(name, room) {
      el.name.value = name;
      el.room.value = room;
    },

    /** @param {ViewState} s */
    render(s) {
      el.me.textContent = s.me || '…';
      el.myRoom.textContent = s.me ? s.room : '…';
      el.socketState.dataset.state = s.socket;
      el.socketState.textContent = s.socket;
      el.socketTrail.textContent = s.socketTrail.join(' → ');
      el.callState.dataset.state = s.phase;
      el.callState.textContent = PHASE_TEXT[/** @type {keyof PHASE_TEXT} */ (s.phase)] ?? s.phase;
      el.callPeer.textContent = s.peerName ? `with ${s.peerName}` : '';
      el.iceState.dataset.state = s.ice;
      el.iceState.textContent = s.ice;
      el.iceTrail.textContent = s.iceTrail.join(' → ');
      el.stage.dataset.state = s.phase;

      const online = s.socket === 'connected';
      el.call.disabled = !online || s.inCall;
      el.hangup.disabled = !s.inCall;
      el.mute.disabled = !s.inCall || !s.hasAudio;
      el.mute.textContent = s.muted ? 'Unmute' : 'Mute';
      el.mute.dataset.state = s.muted ? 'on' : 'off';
      el.camera.disabled = !s.inCall || !s.hasVideo;
      el.camera.textContent = s.cameraOff ? 'Camera on' : 'Camera off';
      el.camera.dataset.state = s.cameraOff ? 'on' : 'off';
      el.passwordForm.hidden = !s.needPassword;

      const disabled = !online || s.inCall;
      const key = JSON.stringify([disabled, s.offers.map((o) => [o.offerId, o.offererUserName])]);
      if (key !== offersKey) {
        offersKey = key;
        const items = s.offers.map((offer) => {
          const li = document.createElement('li');
          const button = document.createElement('button');
          button.type = 'button';
          button.dataset.offerId = offer.offerId;
          button.textContent = `Answer ${offer.offererUserName}`;
          button.disabled = disabled;
          li.append(button);
          return li;
        });
        el.offers.replaceChildren(...items);
        el.noOffers.hidden = items.length > 0;
      }
    },

    showError,

    /** @param {string} text  a passing, non-error message ('' clears it) */
    showNotice(text) {
      el.notice.textContent = text;
    },

    /** @param {MediaStream | null} stream */
    setLocalStream(stream) {
      el.localVideo.srcObject = stream;
    },

    /** @param {MediaStream | null} stream */
    setRemoteStream(stream) {
      if (el.remoteVideo.srcObject !== stream) {
        el.remoteVideo.srcObject = stream;
      }
      if (stream) {
        // Autoplay may be refused until the user interacts; the call goes on anyway.
        el.remoteVideo.play().catch(() => {});
      }
    },
  };
}
