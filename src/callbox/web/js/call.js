// @ts-check
/**
 * One call: its peer connection (peer.js), its data channel (channel.js), the local media
 * it sends and the remote media it plays, and the route its messages take: the data
 * channel once it is open and ICE is up, else the server. main.js owns the page's state
 * and holds the call; the call owns only what belongs to itself, reports every change
 * with `onChange` (callflow.js reads it back with `view()`), and says when it ended by itself
 * (the other side hung up, the connection died) with `onEnd`.
 *
 * Phases: calling (caller, offer waiting) -> connecting -> connected, with
 * connected <-> reconnecting while ICE is broken or restarting.
 */
import { createChannel, FEATURES, MAX_CHAT_CHARS } from './channel.js';
import { carries, createPeer, offersChannel } from './peer.js';

/** How long a call may stay `reconnecting` before it is given up. */
const GIVE_UP_MS = 30000;
/** The same, once the server forgot the call (nobody can help restart ICE). */
const ORPHAN_GIVE_UP_MS = 10000;

/** @typedef {import('./ui.js').OfferView} OfferView */
/** @typedef {import('./ui.js').RemoteMedia} RemoteMedia */
/** @typedef {import('./ui.js').ChatLine} ChatLine */

/**
 * @typedef {object} CallView  what the page reads of a call
 * @property {'caller' | 'answerer'} role
 * @property {string | null} offerId
 * @property {string} peerName
 * @property {'calling' | 'connecting' | 'connected' | 'reconnecting'} phase
 * @property {string} ice
 * @property {boolean} channelOpen
 * @property {number | null} connectedAt  Date.now() when media first flowed
 * @property {RemoteMedia} remote
 * @property {'none' | 'camera' | 'screen'} remoteVideo
 * @property {boolean} canRenegotiate
 * @property {string[]} peerFeatures  from the other side's hello
 */

/**
 * @typedef {object} Ending  why a call ended by itself
 * @property {'notice' | 'error'} kind
 * @property {string} title
 * @property {string} message
 */

/**
 * @typedef {object} CallOptions
 * @property {'caller' | 'answerer'} role
 * @property {string | null} offerId
 * @property {string} peerName
 * @property {RTCIceServer[]} iceServers
 * @property {boolean} [channel]  answerer: whether the offer has a data channel
 * @property {() => string} myName
 * @property {(event: string, payload: unknown) => Promise<any>} send  to the server
 * @property {() => boolean} serverReady  the socket is connected and welcomed
 * @property {import('./log.js').Logger} log
 * @property {(name: string) => void} mark
 * @property {() => void} onChange
 * @property {(ending: Ending) => void} onEnd
 * @property {(line: ChatLine) => void} onChat
 */

/** @typedef {ReturnType<typeof createCall>} Call */

/** @param {unknown} err */
const describe = (err) => (err instanceof Error ? err.message : String(err));

/** @param {CallOptions} o */
export function createCall(o) {
  const { role, log } = o;
  let offerId = o.offerId;
  let peerName = o.peerName;
  /** @type {CallView['phase']} */
  let phase = role === 'caller' ? 'calling' : 'connecting';
  let ice = 'new';
  let wasConnected = false;
  /** @type {number | null} */
  let connectedAt = null;
  let ended = false;
  let stuck = false;
  /**
   * The server forgot the call but media flows (PLAN.md decisions 3, 5): without the
   * server nobody can repair a broken path, so trouble ends the call soon. 'peer': the
   * other side's session is gone too, so trouble means it is gone (end at once).
   * @type {'' | 'peer' | 'server'}
   */
  let orphan = '';
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let giveUpTimer;
  /** @type {RTCIceCandidateInit[]} local candidates waiting for the offerId */
  const outbox = [];
  /** The SDP of our first offer (caller), with the candidates gathered before it went. */
  let offerSdp = '';
  /** Where the last description went: its candidates follow it. */
  let route = /** @type {'server' | 'channel'} */ ('server');
  /** Where the other side's last offer came from: our answer goes back that way. */
  let offerRoute = /** @type {'' | 'server' | 'channel'} */ ('');
  /** @type {RemoteMedia} */
  let remote = { known: false, audio: false, video: false, screen: false };
  /** @type {string[]} */
  let peerFeatures = [];
  /** @type {Map<string, MediaStream>} remote streams; the first one is their camera */
  const streams = new Map();
  let cameraStreamId = '';
  /** @type {{audio: boolean, video: boolean, screen: boolean}} what we send */
  let local = { audio: false, video: false, screen: false };
  let chatCount = 0;

  const channelWanted = role === 'caller' || o.channel === true;

  const changed = () => {
    if (!ended) {
      o.onChange();
    }
  };

  /** @param {RTCIceCandidateInit} candidate */
  const candidateToServer = (candidate) => {
    o.send('sendIceCandidateToSignalingServer', { iceCandidate: candidate, offerId }).catch((err) =>
      log.warn('candidate not sent', describe(err)),
    );
  };

  const iceUp = () => ice === 'connected' || ice === 'completed';

  /** The data channel when it can carry messages now (open and ICE up). */
  const channelUsable = () => channel?.open() === true && iceUp();

  /** @param {RTCSessionDescriptionInit} description */
  const sendDescription = (description) => {
    // An answer goes back the way its offer came: the server relays an answer only to a
    // party whose offer it relayed (docs/protocol.md, "Renegotiation").
    const back = description.type === 'answer' ? offerRoute : '';
    if (back === 'channel' && channel?.open()) {
      route = 'channel';
      channel.send({ type: 'description', description });
    } else if (back === 'server' && o.serverReady() && offerId) {
      route = 'server';
      o.send('renegotiate', { offerId, description }).catch((err) => log.warn('renegotiate not sent', describe(err)));
    } else if (channelUsable()) {
      route = 'channel';
      channel?.send({ type: 'description', description });
    } else if (o.serverReady() && offerId) {
      route = 'server';
      o.send('renegotiate', { offerId, description }).catch((err) => log.warn('renegotiate not sent', describe(err)));
    } else if (channel?.open()) {
      route = 'channel'; // ICE is down and so is the server: the channel may come back first
      channel.send({ type: 'description', description });
    } else {
      log.warn('a renegotiation could not be sent: no channel and no server');
    }
  };

  /** @param {RTCIceCandidateInit} candidate */
  const sendCandidate = (candidate) => {
    if (offerId === null) {
      outbox.push(candidate);
    } else if (route === 'channel' && channel?.open()) {
      channel.send({ type: 'candidate', candidate });
    } else if (o.serverReady()) {
      candidateToServer(candidate);
    } else {
      channel?.send({ type: 'candidate', candidate });
    }
  };

  /** @param {import('./peer.js').PeerState} s */
  const onPeerState = (s) => {
    if (ended) {
      return;
    }
    ice = s.ice;
    stuck = s.stuck;
    const trouble = s.restarting || s.ice === 'disconnected' || s.ice === 'failed';
    if (s.connection === 'connected' && !trouble) {
      if (!wasConnected) {
        connectedAt = Date.now();
        o.mark('connected');
      }
      wasConnected = true;
      clearTimeout(giveUpTimer);
      giveUpTimer = undefined;
      phase = 'connected';
    } else if (wasConnected && orphan === 'peer' && (trouble || s.connection === 'failed')) {
      end({ kind: 'error', title: 'Peer left', message: `${peerName || 'The other side'} left the call (disconnected).` });
      return;
    } else if (wasConnected && (trouble || s.connection === 'failed')) {
      phase = 'reconnecting';
      giveUpTimer ??= setTimeout(() => {
        if (!ended && phase === 'reconnecting') {
          end({
            kind: 'error',
            title: 'Connection lost',
            message: `The connection to ${peerName || 'the other side'} could not be restored.`,
          });
        }
      }, orphan ? ORPHAN_GIVE_UP_MS : GIVE_UP_MS);
    } else if (!wasConnected && s.connection === 'failed') {
      end({
        kind: 'error',
        title: 'Connection failed',
        message: 'No network path to the other side was found (a TURN server may be needed: try "Test connection").',
      });
      return;
    }
    changed();
  };

  /**
   * @param {MediaStreamTrack} track
   * @param {MediaStream} stream
   */
  const onTrack = (track, stream) => {
    if (!streams.has(stream.id)) {
      streams.set(stream.id, stream);
      cameraStreamId ||= stream.id;
      stream.addEventListener('removetrack', changed);
      stream.addEventListener('addtrack', changed);
    }
    track.addEventListener('ended', changed);
    track.addEventListener('mute', changed);
    track.addEventListener('unmute', changed);
    changed();
  };

  const peer = createPeer({
    polite: role === 'answerer',
    restarts: role === 'caller',
    channel: channelWanted,
    iceServers: o.iceServers,
    log: log.child('peer'),
    mark: o.mark,
    onDescription: sendDescription,
    onCandidate: sendCandidate,
    onState: onPeerState,
    onTrack,
  });

  /** @type {import('./channel.js').Channel | null} */
  const channel = peer.channel
    ? createChannel(peer.channel, {
        log: log.child('channel'),
        onOpen: () => {
          channel?.send({ type: 'hello', name: o.myName(), features: FEATURES });
          channel?.send({ type: 'media', ...local });
          changed();
        },
        onClose: () => {
          if (!ended) {
            // closed without a hang-up first: their page or connection went away
            end({ kind: 'error', title: 'Peer left', message: `${peerName || 'The other side'} left the call (disconnected).` });
          }
        },
        onMessage: (m) => onMessage(m),
      })
    : null;

  /** @param {import('./channel.js').Message} m */
  const onMessage = (m) => {
    switch (m.type) {
      case 'hello':
        peerFeatures = m.features;
        if (!peerName && m.name) {
          peerName = m.name;
        }
        break;
      case 'hangup':
        end({ kind: 'notice', title: 'Call ended', message: `${peerName || 'The other side'} hung up.` });
        return;
      case 'media':
        remote = { known: true, audio: m.audio, video: m.video, screen: m.screen };
        break;
      case 'chat':
        o.onChat({ id: `r-${m.id}`, from: peerName || 'them', text: m.text, mine: false });
        break;
      case 'description':
        if (m.description.type === 'offer') {
          offerRoute = 'channel';
        }
        peer.receive(m.description).catch((err) => log.warn('renegotiation failed', describe(err)));
        break;
      case 'candidate':
        peer.addRemoteCandidate(m.candidate);
        break;
    }
    changed();
  };

  /** @param {Ending} ending */
  const end = (ending) => {
    if (ended) {
      return;
    }
    tellServerHangup();
    close();
    o.onEnd(ending);
  };

  const tellServerHangup = () => {
    if (offerId !== null && o.serverReady()) {
      // Also after the other side's hang-up on the channel: if its word to the server was
      // lost, our session would stay "in a call" there. An error (already ended) is fine.
      o.send('hangup', { offerId }).catch((err) => log.debug('hangup', describe(err)));
    }
  };

  const close = () => {
    if (ended) {
      return;
    }
    ended = true;
    clearTimeout(giveUpTimer);
    channel?.close();
    peer.close();
  };

  /** The stream whose video the stage shows, and which one it is. */
  const pickRemote = () => {
    const live = (/** @type {MediaStream | undefined} */ s) =>
      s?.getVideoTracks().some((t) => t.readyState === 'live') ?? false;
    const camera = streams.get(cameraStreamId);
    const screen = [...streams.values()].find((s) => s.id !== cameraStreamId && live(s));
    const screenOn = screen && (!remote.known || remote.screen);
    return {
      main: (screenOn ? screen : live(camera) ? camera : null) ?? null,
      camera: (screenOn && live(camera) ? camera : null) ?? null,
      audio: camera ?? null,
      kind: /** @type {CallView['remoteVideo']} */ (screenOn ? 'screen' : live(camera) ? 'camera' : 'none'),
    };
  };

  /** @param {Partial<typeof local>} next */
  const setLocal = (next) => {
    local = { ...local, ...next };
    channel?.send({ type: 'media', ...local });
  };

  return {
    /** @returns {CallView} */
    view() {
      return {
        role,
        offerId,
        peerName,
        phase,
        ice,
        channelOpen: channel?.open() === true,
        connectedAt,
        remote,
        remoteVideo: pickRemote().kind,
        canRenegotiate: !stuck && (phase === 'connected' || phase === 'reconnecting'),
        peerFeatures,
      };
    },

    remoteMedia: () => pickRemote(),

    connection: () => peer.connection(),

    /** Media flows: the call can go on without the server (PLAN.md decisions 3 and 5). */
    flowing: () => !ended && peer.connection().connectionState === 'connected' && iceUp(),

    /** Whether a hang-up would reach the other side without the server. */
    channelOpen: () => channel?.open() === true,

    /**
     * Caller: the first offer, with our media (null: receive only).
     * @param {MediaStream | null} stream
     */
    async offer(stream) {
      local = { audio: Boolean(stream?.getAudioTracks().length), video: Boolean(stream?.getVideoTracks().length), screen: false };
      const offer = await peer.offer(stream);
      offerSdp = offer.sdp ?? '';
      return offer;
    },

    /** @param {string} id  the server acked our offer: send the candidates held for it */
    setOfferId(id) {
      offerId = id;
      // Those gathered before the offer went out are in its SDP already: sent again, they
      // would only come back to the answerer in newAnswer's ack, to be added a second time.
      for (const candidate of outbox.splice(0)) {
        if (!candidate.candidate || !carries(offerSdp, candidate.candidate)) {
          candidateToServer(candidate);
        }
      }
    },

    /**
     * Answerer, before the click: set the waiting offer and its candidates, add our media.
     * @param {OfferView} view
     * @param {MediaStream | null} stream
     */
    async prepare(view, stream) {
      await peer.prepare(view.offer, stream);
      for (const candidate of view.offerIceCandidates ?? []) {
        peer.addRemoteCandidate(candidate);
      }
    },

    /**
     * Answerer: make the answer to `view.offer` with our media.
     * @param {OfferView} view
     * @param {MediaStream | null} stream
     */
    async answer(view, stream) {
      local = { audio: Boolean(stream?.getAudioTracks().length), video: Boolean(stream?.getVideoTracks().length), screen: false };
      const pending = peer.answer(view.offer, stream);
      for (const candidate of view.offerIceCandidates ?? []) {
        peer.addRemoteCandidate(candidate); // after the offer (queued in order); no-op twice
      }
      return pending;
    },

    /** Answerer: resolves once ICE has its first local candidate after the answer. */
    firstCandidate: () => peer.firstCandidate(),

    /** @param {RTCIceCandidateInit[]} candidates  the caller's, from newAnswer's ack */
    addCandidates(candidates) {
      for (const candidate of candidates) {
        peer.addRemoteCandidate(candidate);
      }
    },

    /** @param {any} payload  answerResponse (caller) */
    answered(payload) {
      o.mark('answer-response');
      const done = peer.receive(payload.answer).then(() => {
        for (const candidate of payload.answererIceCandidates ?? []) {
          peer.addRemoteCandidate(candidate);
        }
      });
      peerName = String(payload.answererUserName ?? '');
      phase = 'connecting';
      queueMicrotask(changed); // after the answer is on its way into the connection
      done.catch((err) =>
        end({ kind: 'error', title: 'Call failed', message: `The answer could not be used (${describe(err)}).` }),
      );
    },

    /** @param {RTCIceCandidateInit} candidate  from the server */
    remoteCandidate(candidate) {
      peer.addRemoteCandidate(candidate);
    },

    /** @param {RTCSessionDescriptionInit} description  from the server's `renegotiate` */
    renegotiate(description) {
      if (description.type === 'offer') {
        offerRoute = 'server';
      }
      peer.receive(description).catch((err) => log.warn('renegotiation failed', describe(err)));
    },

    /** We hang up: tell the other side on the channel and the server, then close. */
    hangup() {
      if (ended) {
        return;
      }
      channel?.send({ type: 'hangup' });
      tellServerHangup();
      close();
    },

    /** Close without telling anyone (the server told us the call is over). */
    close,

    /**
     * The server says the call ended. Keep it when media still flows and the other side
     * can still tell us it hangs up (the channel is open); else it is over.
     * @param {string} reason  callEnded's reason
     * @returns {boolean} true when the call goes on
     */
    serverEnded(reason) {
      const keep =
        (reason === 'server-shutdown' || reason === 'peer-disconnected') &&
        !ended &&
        peer.connection().connectionState === 'connected' &&
        iceUp() &&
        channel?.open() === true;
      if (keep) {
        offerId = null; // the server forgot the call: nothing to tell it any more
        orphan = reason === 'peer-disconnected' ? 'peer' : 'server';
      }
      return keep;
    },

    /** The server does not know our call any more (a new session): go on peer to peer. */
    detachFromServer() {
      offerId = null;
      orphan ||= 'server';
    },

    /**
     * What we send now, for the other side's badges (sent on the data channel).
     * @param {{audio: boolean, video: boolean}} media  microphone on, camera on
     */
    setMedia(media) {
      setLocal(media);
    },

    /**
     * Start sending a screen (renegotiates); `track` ends: stop sharing.
     * @param {MediaStreamTrack} track
     */
    shareScreen(track) {
      peer.addTrack(track, new MediaStream([track]));
      setLocal({ screen: true });
    },

    /** @param {MediaStreamTrack} track  the screen track to stop sending */
    stopScreen(track) {
      peer.removeTrack(track);
      setLocal({ screen: false });
    },

    /**
     * A device switch: send `next` instead of `old` (null: nothing, the camera stopped).
     * @param {MediaStreamTrack} old
     * @param {MediaStreamTrack | null} next
     */
    replaceTrack(old, next) {
      return peer.replaceTrack(old, next);
    },

    /**
     * @param {string} text
     * @returns {ChatLine | null} the line to show, or null when it could not be sent
     */
    sendChat(text) {
      const clipped = text.slice(0, MAX_CHAT_CHARS);
      chatCount += 1;
      const id = `${Date.now().toString(36)}-${chatCount}`;
      if (!channel?.send({ type: 'chat', id, text: clipped })) {
        return null;
      }
      return { id: `m-${id}`, from: o.myName(), text: clipped, mine: true };
    },

    /** @param {RTCIceServer[]} servers  fresh credentials (issue 10) */
    setIceServers(servers) {
      peer.setIceServers(servers);
    },

    restartIce: () => peer.restartIce(),
  };
}

/**
 * Whether an answerer should open the data channel for this offer.
 * @param {OfferView} view
 */
export function channelFor(view) {
  return offersChannel(view.offer);
}
