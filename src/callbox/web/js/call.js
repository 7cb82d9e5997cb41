// @ts-check
/**
 * The call state machine: placing, answering, the server's call events, ICE restart
 * and hang-up. It works on the state object that main.js owns (passed in) and changes
 * the page only through the functions main.js gives it.
 *
 * Phases: idle -> calling (caller, offer waiting) -> connecting -> connected, with
 * connected <-> reconnecting while ICE is broken or restarting, and -> ended -> idle.
 */
import { createPeer } from './peer.js';

/** @typedef {import('./ui.js').OfferView} OfferView */
/** @typedef {import('./ui.js').UiError} UiError */

/** How long a call may stay `reconnecting` before it is given up. */
const GIVE_UP_MS = 30000;

/**
 * @typedef {object} Call  the call in progress (at most one)
 * @property {'caller' | 'answerer'} role
 * @property {string | null} offerId  null until the server acked newOffer
 * @property {string} peerName
 * @property {import('./peer.js').Peer | null} peer
 * @property {MediaStream | null} stream  our camera and microphone, if any
 * @property {RTCIceCandidateInit[]} outbox  local candidates waiting for the offerId
 * @property {boolean} wasConnected  media flowed once: trouble now means reconnecting
 * @property {ReturnType<typeof setTimeout> | undefined} giveUpTimer
 */

/**
 * @typedef {object} CallState  the part of main.js's state this module reads and writes
 * @property {Call | null} call
 * @property {Map<string, OfferView>} offers
 * @property {string} phase
 * @property {string} ice
 * @property {string[]} iceTrail
 * @property {boolean} muted
 * @property {boolean} cameraOff
 */

/** @param {unknown} err */
export function describe(err) {
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

/**
 * @param {object} deps
 * @param {CallState} deps.state
 * @param {import('./ui.js').Ui} deps.ui
 * @param {import('./log.js').Logger} deps.log
 * @param {(event: string, payload: unknown) => Promise<any>} deps.send  emit, unwrap the ack
 * @param {() => Promise<RTCIceServer[]>} deps.iceServers
 * @param {(phase: string) => void} deps.setPhase
 * @param {(ice: string) => void} deps.setIce
 * @param {(kind: string, err: UiError) => void} deps.fail
 * @param {(kind: string) => void} deps.clearError
 */
export function createCalls({ state, ui, log, send, iceServers, setPhase, setIce, fail, clearError }) {
  /**
   * @param {Call} call
   * @param {RTCIceCandidateInit} candidate
   */
  const sendCandidate = (call, candidate) => {
    send('sendIceCandidateToSignalingServer', { iceCandidate: candidate, offerId: call.offerId }).catch(
      (err) => log.warn('candidate not sent', describe(err)),
    );
  };

  /**
   * @param {Call} call
   * @param {import('./peer.js').PeerState} peerState
   */
  const onPeerState = (call, { ice, connection, restarting }) => {
    if (state.call !== call) {
      return;
    }
    setIce(ice);
    const trouble = restarting || ice === 'disconnected' || ice === 'failed';
    if (connection === 'connected' && !trouble) {
      call.wasConnected = true;
      clearTimeout(call.giveUpTimer);
      call.giveUpTimer = undefined;
      clearError('call');
      setPhase('connected');
    } else if (call.wasConnected && (trouble || connection === 'failed')) {
      setPhase('reconnecting');
      call.giveUpTimer ??= setTimeout(() => {
        if (state.call === call && state.phase === 'reconnecting') {
          fail('call', {
            title: 'Connection lost',
            message: 'The connection to the other side could not be restored.',
          });
          endCall();
        }
      }, GIVE_UP_MS);
    } else if (!call.wasConnected && connection === 'failed') {
      fail('call', {
        title: 'Connection failed',
        message: 'No network path to the other side was found (a TURN server may be needed).',
      });
      endCall();
    }
  };

  /**
   * @param {Call} call
   * @param {RTCIceServer[]} servers
   */
  const makePeer = (call, servers) =>
    createPeer({
      role: call.role,
      iceServers: servers,
      log: log.child('peer'),
      onSignal: (candidate) => {
        if (call.offerId === null) {
          call.outbox.push(candidate);
        } else {
          sendCandidate(call, candidate);
        }
      },
      onRenegotiate: (offer) => {
        send('renegotiate', { offerId: call.offerId, description: offer }).catch((err) =>
          log.warn('renegotiate not sent', describe(err)),
        );
      },
      onState: (peerState) => onPeerState(call, peerState),
      onTrack: (stream) => {
        if (state.call === call) {
          ui.setRemoteStream(stream);
        }
      },
    });

  /**
   * @param {'caller' | 'answerer'} role
   * @param {string | null} offerId
   * @param {string} peerName
   * @returns {Call}
   */
  const newCall = (role, offerId, peerName) => {
    clearError('media');
    clearError('call');
    ui.showNotice('');
    /** @type {Call} */
    const call = {
      role,
      offerId,
      peerName,
      peer: null,
      stream: null,
      outbox: [],
      wasConnected: false,
      giveUpTimer: undefined,
    };
    state.call = call;
    state.iceTrail = ['new'];
    state.ice = 'new';
    return call;
  };

  /**
   * Start the call's media: the camera and microphone, or none for a receive-only call.
   * On failure, offer a receive-only retry and return undefined.
   * @param {Call} call
   * @param {boolean} receiveOnly
   * @param {string} retryLabel
   * @param {() => void} retry
   * @returns {Promise<MediaStream | null | undefined>}
   */
  const startMedia = async (call, receiveOnly, retryLabel, retry) => {
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
  };

  /**
   * Give the call its local media, unless the call was ended while the camera opened.
   * @param {any} call
   * @param {MediaStream | null} stream
   * @returns {boolean} false when the call is gone (the stream is then stopped)
   */
  const adoptStream = (call, stream) => {
    call.stream = stream;
    if (state.call !== call) {
      stream?.getTracks().forEach((t) => t.stop());
      return false;
    }
    ui.setLocalStream(stream);
    return true;
  };

  /** Place a call: the offer waits on the server until someone answers it. */
  async function placeCall(receiveOnly = false) {
    if (state.call) {
      return;
    }
    const call = newCall('caller', null, '');
    setPhase('calling');
    const stream = await startMedia(call, receiveOnly, 'Call without camera', () => placeCall(true));
    if (stream === undefined) {
      return;
    }
    try {
      if (!adoptStream(call, stream)) {
        return;
      }
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
      setPhase('calling');
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
    const call = newCall('answerer', offerId, view.offererUserName);
    setPhase('connecting');
    const stream = await startMedia(call, receiveOnly, 'Answer without camera', () =>
      answerCall(offerId, true),
    );
    if (stream === undefined) {
      return;
    }
    try {
      if (!adoptStream(call, stream)) {
        return;
      }
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
    clearTimeout(call.giveUpTimer);
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
   * The server no longer has our call (the socket was away too long, or the server
   * started a new session): end it without telling the server.
   * @param {string} message
   */
  function lostCall(message) {
    if (state.call) {
      fail('call', { title: 'Call ended', message });
      endCall({ notify: false });
    }
  }

  return {
    placeCall,
    answerCall,
    endCall,

    /**
     * The socket came back and the server resumed our session.
     * @param {string | null} offerId  the offer or call the server kept
     */
    resumed(offerId) {
      const call = state.call;
      if (call && call.offerId !== null && call.offerId !== offerId) {
        lostCall('The server did not keep the call while the connection was away.');
      }
    },

    /** The socket came back as a new session: the call is over on the server. */
    sessionLost() {
      lostCall('The connection to the server was lost for too long, so the call ended.');
    },

    /** @param {any} payload  offerRemoved */
    offerRemoved(payload) {
      const call = state.call;
      if (call?.role === 'caller' && call.offerId === payload?.offerId && payload?.reason !== 'answered') {
        ui.showNotice(`Your call was withdrawn by the server (${payload?.reason ?? 'no reason'}).`);
        endCall({ notify: false });
      }
    },

    /** @param {any} payload  answerResponse */
    answered(payload) {
      const call = state.call;
      if (call?.role !== 'caller' || !call.peer || payload?.offerId !== call.offerId) {
        return;
      }
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
    },

    /** @param {any} payload  receivedIceCandidateFromServer */
    remoteCandidate(payload) {
      state.call?.peer?.addRemoteCandidate(payload);
    },

    /** @param {any} payload  renegotiate: the caller's new offer, or the answer to ours */
    renegotiate(payload) {
      const call = state.call;
      const description = payload?.description;
      if (!call?.peer || (payload?.offerId && payload.offerId !== call.offerId) || !description) {
        return;
      }
      call.peer
        .renegotiate(description)
        .then((answer) => {
          if (answer && state.call === call) {
            return send('renegotiate', { offerId: call.offerId, description: answer });
          }
          return undefined;
        })
        .catch((err) => log.warn('renegotiation failed', describe(err)));
    },

    /** @param {any} payload  callEnded */
    ended(payload) {
      const call = state.call;
      if (call && (payload?.offerId === undefined || payload.offerId === call.offerId)) {
        const who = payload?.by ? String(payload.by) : 'The other side';
        if (payload?.reason === 'peer-disconnected') {
          fail('call', { title: 'Peer left', message: `${who} left the call (disconnected).` });
        } else {
          ui.showNotice(`${who} hung up.`);
        }
        endCall({ notify: false });
      }
    },
  };
}
