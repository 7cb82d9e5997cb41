// @ts-check
/**
 * All DOM access of the page. Elements are looked up once; `render(view)` sets only
 * textContent, disabled, hidden, value, aria-* and data-* attributes. Text that comes from
 * other users (names, chat) is only ever written with textContent: never as HTML.
 */
import { createOfferList } from './offerlist.js';

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
 * @typedef {object} ChatLine
 * @property {string} id
 * @property {string} from
 * @property {string} text
 * @property {boolean} mine
 */

/**
 * @typedef {object} RemoteMedia  what the other side says it sends (data channel `media`)
 * @property {boolean} known  it told us (a peer without the data channel never does)
 * @property {boolean} audio
 * @property {boolean} video
 * @property {boolean} screen
 */

/**
 * @typedef {object} ViewState  what the page shows (a read-only view of main.js's state)
 * @property {string} me  the name the server assigned ('' before welcome)
 * @property {string} room
 * @property {string} socket  connecting | connected | reconnecting | offline
 * @property {string[]} socketTrail
 * @property {boolean} canReconnect  show the Reconnect button
 * @property {string} phase  idle | calling | connecting | connected | reconnecting | ended
 * @property {string} ice  RTCIceConnectionState, or '-' without a call
 * @property {string[]} iceTrail
 * @property {string} peerName  who the call is with ('' when unknown)
 * @property {boolean} inCall
 * @property {boolean} hasAudio  we send a microphone
 * @property {boolean} hasVideo  we send a camera
 * @property {boolean} muted
 * @property {boolean} cameraOff
 * @property {boolean} sharing
 * @property {boolean} canShare  getDisplayMedia exists and the call can renegotiate
 * @property {RemoteMedia} remote
 * @property {'none' | 'camera' | 'screen'} remoteVideo  what the stage shows
 * @property {{offerId: string, name: string} | null} incoming  the ringing call
 * @property {OfferView[]} offers
 * @property {boolean} needPassword
 * @property {ChatLine[]} chat
 * @property {boolean} chatOpen  the data channel is open
 * @property {number | null} seconds  call duration, null before connected
 * @property {{level: string, path: string, text: string} | null} quality
 * @property {{cameras: MediaDeviceInfo[], microphones: MediaDeviceInfo[], speakers: MediaDeviceInfo[]}} devices
 * @property {{camera: string, microphone: string, speaker: string}} chosen  device ids
 * @property {boolean} canPickSpeaker
 * @property {string} notifications  default | granted | denied | unsupported
 * @property {string} nameNote
 * @property {string} roomNote
 * @property {boolean} roomInvalid
 * @property {string} link  the room's link
 * @property {boolean} qrShown
 * @property {string} qr  data: URL of the link's QR code ('' until shown)
 * @property {boolean} checking
 * @property {{result: string, text: string}[]} check
 * @property {boolean} pipAvailable
 */

/**
 * @typedef {object} Handlers
 * @property {() => void} onCall
 * @property {() => void} onHangup
 * @property {(offerId: string) => void} onAnswer
 * @property {(offerId: string) => void} onDecline
 * @property {() => void} onMute
 * @property {() => void} onCamera
 * @property {() => void} onScreen
 * @property {(name: string, room: string) => void} onIdentity  name or room edited
 * @property {(password: string) => void} onPassword
 * @property {() => void} onReconnect
 * @property {(text: string) => boolean} onChat  false: not sent (keep the text)
 * @property {(kind: 'camera' | 'microphone' | 'speaker', id: string) => void} onDevice
 * @property {() => void} onDevicesOpen  the device picker was opened (refresh the lists)
 * @property {() => void} onCopyLink
 * @property {() => void} onToggleQr
 * @property {() => void} onCheck
 * @property {() => void} onNotify
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

/** @param {number} seconds */
export function clock(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.floor(seconds % 60);
  const two = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return h ? `${h}:${two(m)}:${two(s)}` : `${two(m)}:${two(s)}`;
}

/**
 * @param {HTMLElement} node
 * @param {string} text
 */
function setText(node, text) {
  if (node.textContent !== text) {
    node.textContent = text;
  }
}

/**
 * A toggle button: its label says what a click will do; aria-pressed says whether the
 * toggle is on now (muted, camera stopped, sharing).
 * @param {HTMLButtonElement} button
 * @param {boolean} pressed
 * @param {string} label
 * @param {boolean} disabled
 */
function toggle(button, pressed, label, disabled) {
  setText(button, label);
  button.setAttribute('aria-pressed', String(pressed));
  button.dataset.state = pressed ? 'on' : 'off';
  button.disabled = disabled;
}

/**
 * Rebuild a <select>'s options when the device list changed.
 * @param {HTMLSelectElement} select
 * @param {MediaDeviceInfo[]} devices
 * @param {string} chosen
 * @param {string} fallback  label of a device without a name
 */
function fillSelect(select, devices, chosen, fallback) {
  const key = JSON.stringify(devices.map((d) => [d.deviceId, d.label]));
  if (select.dataset.key !== key) {
    select.dataset.key = key;
    select.replaceChildren(
      ...devices.map((d, i) => {
        const option = document.createElement('option');
        option.value = d.deviceId;
        option.textContent = d.label || `${fallback} ${i + 1}`;
        return option;
      }),
    );
  }
  if (chosen && select.value !== chosen) {
    select.value = chosen;
  }
  select.disabled = devices.length === 0;
}

/** Look up the page's elements once and return the functions that change them. */
export function createUi() {
  const el = {
    me: byId('me', HTMLElement),
    myRoom: byId('my-room', HTMLElement),
    identity: byId('identity', HTMLFormElement),
    name: byId('name', HTMLInputElement),
    nameNote: byId('name-note', HTMLElement),
    room: byId('room', HTMLInputElement),
    roomNote: byId('room-note', HTMLElement),
    passwordForm: byId('password-form', HTMLFormElement),
    password: byId('password', HTMLInputElement),
    socketState: byId('socket-state', HTMLElement),
    socketTrail: byId('socket-trail', HTMLElement),
    reconnect: byId('reconnect', HTMLButtonElement),
    incoming: byId('incoming', HTMLElement),
    incomingName: byId('incoming-name', HTMLElement),
    incomingAnswer: byId('incoming-answer', HTMLButtonElement),
    incomingDecline: byId('incoming-decline', HTMLButtonElement),
    callState: byId('call-state', HTMLElement),
    callPeer: byId('call-peer', HTMLElement),
    iceState: byId('ice-state', HTMLElement),
    iceTrail: byId('ice-trail', HTMLElement),
    qualityDetails: byId('quality-details', HTMLElement),
    call: byId('call', HTMLButtonElement),
    hangup: byId('hangup', HTMLButtonElement),
    mute: byId('mute', HTMLButtonElement),
    camera: byId('camera', HTMLButtonElement),
    screen: byId('screen', HTMLButtonElement),
    stage: byId('stage', HTMLElement),
    stageText: byId('stage-text', HTMLElement),
    localVideo: byId('local-video', HTMLVideoElement),
    remoteVideo: byId('remote-video', HTMLVideoElement),
    remoteCamera: byId('remote-camera', HTMLVideoElement),
    remoteAudio: byId('remote-audio', HTMLAudioElement),
    badges: byId('remote-badges', HTMLUListElement),
    timer: byId('call-timer', HTMLElement),
    quality: byId('quality', HTMLElement),
    pip: byId('pip', HTMLButtonElement),
    fullscreen: byId('fullscreen', HTMLButtonElement),
    chat: byId('chat', HTMLElement),
    chatLog: byId('chat-log', HTMLOListElement),
    chatForm: byId('chat-form', HTMLFormElement),
    chatInput: byId('chat-input', HTMLInputElement),
    chatSend: byId('chat-send', HTMLButtonElement),
    offers: byId('offers', HTMLUListElement),
    noOffers: byId('no-offers', HTMLElement),
    error: byId('error', HTMLElement),
    errorText: byId('error-text', HTMLElement),
    errorAction: byId('error-action', HTMLButtonElement),
    errorClose: byId('error-close', HTMLButtonElement),
    notice: byId('notice', HTMLElement),
    devicesBox: byId('devices-box', HTMLDetailsElement),
    cameraSelect: byId('camera-select', HTMLSelectElement),
    micSelect: byId('mic-select', HTMLSelectElement),
    speakerSelect: byId('speaker-select', HTMLSelectElement),
    speakerLabel: byId('speaker-label', HTMLElement),
    notify: byId('notify', HTMLButtonElement),
    roomLink: byId('room-link', HTMLAnchorElement),
    phoneLink: byId('phone-link', HTMLAnchorElement),
    copyLink: byId('copy-link', HTMLButtonElement),
    showQr: byId('show-qr', HTMLButtonElement),
    qrBox: byId('qr-box', HTMLElement),
    qr: byId('qr', HTMLImageElement),
    check: byId('check', HTMLButtonElement),
    checkResult: byId('check-result', HTMLUListElement),
  };
  /** @type {(() => void) | null} */
  let errorAction = null;
  /** Keys of the rendered lists, to rebuild them only when they change. */
  let offersKey = '';
  let chatKey = '';
  let badgesKey = '';
  let checkKey = '';
  /** The incoming call's id, for the banner's buttons. */
  let incomingId = '';
  const showOffers = createOfferList(el.offers);

  /** @param {UiError | null} err */
  const showError = (err) => {
    errorAction = err?.action?.run ?? null;
    setText(el.errorText, err ? `${err.title}: ${err.message}` : '');
    setText(el.errorAction, err?.action?.label ?? '');
    el.errorAction.hidden = !err?.action;
    el.error.hidden = !err;
  };

  /**
   * @param {HTMLMediaElement} media
   * @param {MediaStream | null} stream
   */
  const attach = (media, stream) => {
    if (media.srcObject !== stream) {
      media.srcObject = stream;
    }
    if (stream && media.paused) {
      // Autoplay may be refused until the user interacts; the call goes on anyway.
      media.play().catch(() => {});
    }
  };

  /** @param {ViewState} s */
  const renderStage = (s) => {
    el.stage.dataset.state = s.phase;
    el.stage.dataset.remoteVideo = s.remoteVideo;
    const who = s.peerName || 'The other side';
    let text = 'No one on the line';
    if (s.phase === 'calling') {
      text = 'Waiting for someone to answer…';
    } else if (s.inCall && s.remoteVideo === 'none') {
      text =
        s.remote.known && !s.remote.video && !s.remote.screen
          ? `${who} has no camera on: you hear them only.`
          : s.phase === 'connected'
            ? `${who} sends no video (no camera).`
            : 'Connecting…';
    } else if (s.inCall && s.remote.known && !s.remote.video && !s.remote.screen) {
      text = `${who} turned the camera off.`;
    }
    setText(el.stageText, text);
    const showText = !s.inCall || s.remoteVideo === 'none' || (s.remote.known && !s.remote.video && !s.remote.screen);
    el.stageText.hidden = !showText && s.inCall;
    el.remoteVideo.setAttribute('aria-label', s.peerName ? `Video from ${s.peerName}` : 'Video from the other side');
    el.remoteCamera.hidden = s.remoteVideo !== 'screen' || !s.remote.video;

    /** @type {[string, string][]} */
    const badges = [];
    if (s.inCall && s.remote.known) {
      if (!s.remote.audio) badges.push(['muted', `${who} is muted`]);
      if (!s.remote.video) badges.push(['camera-off', `${who}'s camera is off`]);
      if (s.remote.screen) badges.push(['sharing', `${who} is sharing their screen`]);
    }
    if (s.sharing) badges.push(['you-share', 'You are sharing your screen']);
    const key = JSON.stringify(badges);
    if (key !== badgesKey) {
      badgesKey = key;
      el.badges.replaceChildren(
        ...badges.map(([kind, label]) => {
          const li = document.createElement('li');
          li.className = 'badge';
          li.dataset.kind = kind;
          li.textContent = label;
          return li;
        }),
      );
    }
    el.timer.hidden = s.seconds === null;
    setText(el.timer, clock(s.seconds ?? 0));
    el.quality.hidden = !s.quality;
    el.qualityDetails.hidden = !s.quality;
    if (s.quality) {
      el.quality.dataset.level = s.quality.level;
      el.quality.dataset.path = s.quality.path;
      setText(el.quality, s.quality.path ? `${s.quality.path}` : '…');
      el.quality.title = s.quality.text;
      setText(el.qualityDetails, s.quality.text);
    }
    el.pip.hidden = !s.pipAvailable || s.remoteVideo === 'none';
  };

  /** @param {ViewState} s */
  const renderLists = (s) => {
    const disabled = s.socket !== 'connected' || s.inCall;
    const okey = JSON.stringify([disabled, s.offers.map((o) => [o.offerId, o.offererUserName])]);
    if (okey !== offersKey) {
      offersKey = okey;
      showOffers(s.offers, disabled);
      el.noOffers.hidden = s.offers.length > 0;
    }
    const ckey = JSON.stringify(s.chat.map((c) => c.id));
    if (ckey !== chatKey) {
      chatKey = ckey;
      el.chatLog.replaceChildren(
        ...s.chat.map((line) => {
          const li = document.createElement('li');
          li.className = line.mine ? 'chat-line mine' : 'chat-line';
          const from = document.createElement('span');
          from.className = 'chat-from';
          from.textContent = line.mine ? 'You' : line.from;
          const text = document.createElement('span');
          text.className = 'chat-text';
          text.textContent = line.text;
          li.append(from, text);
          return li;
        }),
      );
      el.chatLog.lastElementChild?.scrollIntoView?.({ block: 'nearest' });
    }
    const kkey = JSON.stringify([s.checking, s.check]);
    if (kkey !== checkKey) {
      checkKey = kkey;
      el.check.disabled = s.checking;
      setText(el.check, s.checking ? 'Testing…' : 'Test connection');
      el.checkResult.replaceChildren(
        ...s.check.map((line) => {
          const li = document.createElement('li');
          li.dataset.result = line.result;
          li.textContent = line.text;
          return li;
        }),
      );
    }
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
      el.screen.addEventListener('click', () => h.onScreen());
      el.reconnect.addEventListener('click', () => h.onReconnect());
      el.incomingAnswer.addEventListener('click', () => incomingId && h.onAnswer(incomingId));
      el.incomingDecline.addEventListener('click', () => incomingId && h.onDecline(incomingId));
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
      el.chatForm.addEventListener('submit', (event) => {
        event.preventDefault();
        const text = el.chatInput.value.trim();
        if (text && h.onChat(text)) {
          el.chatInput.value = '';
        }
      });
      el.cameraSelect.addEventListener('change', () => h.onDevice('camera', el.cameraSelect.value));
      el.micSelect.addEventListener('change', () => h.onDevice('microphone', el.micSelect.value));
      el.speakerSelect.addEventListener('change', () => h.onDevice('speaker', el.speakerSelect.value));
      el.devicesBox.addEventListener('toggle', () => el.devicesBox.open && h.onDevicesOpen());
      el.copyLink.addEventListener('click', () => h.onCopyLink());
      el.showQr.addEventListener('click', () => h.onToggleQr());
      el.check.addEventListener('click', () => h.onCheck());
      el.notify.addEventListener('click', () => h.onNotify());
      el.fullscreen.addEventListener('click', () => {
        if (document.fullscreenElement) {
          document.exitFullscreen().catch(() => {});
        } else {
          el.stage.requestFullscreen?.().catch(() => {});
        }
      });
      el.pip.addEventListener('click', () => {
        if (document.pictureInPictureElement) {
          document.exitPictureInPicture().catch(() => {});
        } else {
          el.remoteVideo.requestPictureInPicture?.().catch(() => {});
        }
      });
      document.addEventListener('fullscreenchange', () => {
        setText(el.fullscreen, document.fullscreenElement ? 'Exit full screen' : 'Full screen');
      });
      el.remoteVideo.addEventListener('enterpictureinpicture', () => setText(el.pip, 'Exit picture-in-picture'));
      el.remoteVideo.addEventListener('leavepictureinpicture', () => setText(el.pip, 'Picture-in-picture'));
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
      setText(el.me, s.me || '…');
      setText(el.myRoom, s.me ? s.room : '…');
      el.socketState.dataset.state = s.socket;
      setText(el.socketState, s.socket);
      setText(el.socketTrail, s.socketTrail.join(' → '));
      el.reconnect.hidden = !s.canReconnect;
      el.callState.dataset.state = s.phase;
      setText(el.callState, PHASE_TEXT[/** @type {keyof PHASE_TEXT} */ (s.phase)] ?? s.phase);
      setText(el.callPeer, s.peerName && s.inCall ? `with ${s.peerName}` : '');
      el.iceState.dataset.state = s.ice;
      setText(el.iceState, s.ice);
      setText(el.iceTrail, s.iceTrail.join(' → '));

      incomingId = s.incoming?.offerId ?? '';
      el.incoming.hidden = !s.incoming;
      setText(el.incomingName, s.incoming?.name ?? '');
      el.incomingAnswer.disabled = s.socket !== 'connected';

      const online = s.socket === 'connected';
      el.call.disabled = !online || s.inCall;
      el.hangup.disabled = !s.inCall;
      toggle(el.mute, s.muted, s.muted ? 'Unmute' : 'Mute', !s.inCall || !s.hasAudio);
      toggle(el.camera, s.cameraOff, s.cameraOff ? 'Start camera' : 'Stop camera', !s.inCall || !s.hasVideo);
      toggle(el.screen, s.sharing, s.sharing ? 'Stop sharing' : 'Share screen', !s.inCall || !s.canShare);
      el.passwordForm.hidden = !s.needPassword;

      el.chat.hidden = !s.inCall && s.chat.length === 0;
      el.chatInput.disabled = !s.chatOpen;
      el.chatSend.disabled = !s.chatOpen;
      el.chatInput.placeholder = s.chatOpen ? 'Message' : s.inCall ? 'Chat opens once connected' : 'Chat ended with the call';

      setText(el.nameNote, s.nameNote);
      el.nameNote.hidden = !s.nameNote;
      setText(el.roomNote, s.roomNote);
      el.roomNote.hidden = !s.roomNote;
      el.room.setAttribute('aria-invalid', String(s.roomInvalid));

      fillSelect(el.cameraSelect, s.devices.cameras, s.chosen.camera, 'Camera');
      fillSelect(el.micSelect, s.devices.microphones, s.chosen.microphone, 'Microphone');
      fillSelect(el.speakerSelect, s.devices.speakers, s.chosen.speaker, 'Speaker');
      el.speakerLabel.hidden = !s.canPickSpeaker;
      el.notify.hidden = s.notifications !== 'default';

      if (el.roomLink.href !== s.link) {
        el.roomLink.href = s.link;
        el.roomLink.textContent = s.link;
        el.phoneLink.href = `/phone?room=${encodeURIComponent(s.room)}`;
      }
      el.qrBox.hidden = !s.qrShown;
      el.showQr.setAttribute('aria-expanded', String(s.qrShown));
      setText(el.showQr, s.qrShown ? 'Hide QR code' : 'Show QR code');
      if (s.qr && el.qr.getAttribute('src') !== s.qr) {
        el.qr.src = s.qr;
      }
      renderStage(s);
      renderLists(s);
    },

    showError,

    /** @param {string} text  a passing, non-error message ('' clears it) */
    showNotice(text) {
      setText(el.notice, text);
    },

    /** @param {string} text  say it on the copy button for a moment */
    flashCopy(text) {
      setText(el.copyLink, text);
      setTimeout(() => setText(el.copyLink, 'Copy link'), 2000);
    },

    /** @param {MediaStream | null} stream */
    setLocalStream(stream) {
      attach(el.localVideo, stream);
    },

    /**
     * What the stage plays: `main` in the big video, `camera` in the small remote tile
     * (while `main` is their screen), `audio` through the speaker element.
     * @param {{main: MediaStream | null, camera: MediaStream | null, audio: MediaStream | null}} media
     */
    setRemote({ main, camera, audio }) {
      attach(el.remoteVideo, main);
      attach(el.remoteCamera, camera);
      attach(el.remoteAudio, audio);
    },

    /**
     * @param {string} deviceId  the speaker to play the other side through
     * @returns {Promise<void>}
     */
    async setSpeaker(deviceId) {
      const audio = /** @type {any} */ (el.remoteAudio);
      if (typeof audio.setSinkId === 'function') {
        await audio.setSinkId(deviceId);
      }
    },

    /** Move the focus to the banner's Answer button (a call came in). */
    focusIncoming() {
      el.incomingAnswer.focus({ preventScroll: true });
    },
  };
}
