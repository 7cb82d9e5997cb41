// @ts-check
/**
 * One RTCPeerConnection for one call, as a factory (like webrtc/samples'
 * perfect-negotiation peer.js). Caller and answerer roles are fixed by the
 * protocol: only the caller ever makes an offer, so there is no glare.
 *
 * Remote ICE candidates that arrive before the remote description is set are
 * buffered and added, in order, right after it is set. Remote operations
 * (descriptions and candidates) run one at a time, in arrival order.
 *
 * ICE restart (docs/protocol.md, "Renegotiation"): the caller restarts ICE when
 * the connection is `failed`, or `disconnected` for RESTART_AFTER_MS; the new
 * offer goes out through `onRenegotiate`, the answer comes back through
 * `renegotiate()`. One restart at a time; one left unanswered is rolled back, and
 * then the call makes no more restarts (the other side can't: e.g. an aiortc peer).
 */

/** How long ICE may stay `disconnected` before the caller restarts it. */
const RESTART_AFTER_MS = 3000;
/** How long the caller waits for the answer to a restart offer before rolling it back. */
const RESTART_ANSWER_MS = 10000;

/**
 * @typedef {object} PeerState
 * @property {RTCIceConnectionState} ice
 * @property {RTCPeerConnectionState} connection
 * @property {boolean} restarting  an ICE restart is in progress (offer sent or received,
 *   not yet connected again)
 */

/**
 * @typedef {object} Peer
 * @property {(stream: MediaStream | null) => Promise<RTCSessionDescriptionInit>} offer
 *   add the local tracks (or receive-only transceivers when `stream` is null),
 *   create the offer and set it locally
 * @property {(offer: RTCSessionDescriptionInit, stream: MediaStream | null) => Promise<RTCSessionDescriptionInit>} answer
 *   set the remote offer, add the local tracks (none when `stream` is null),
 *   create the answer and set it locally
 * @property {(answer: RTCSessionDescriptionInit) => Promise<void>} acceptAnswer
 *   set the remote answer (caller side)
 * @property {(candidate: RTCIceCandidateInit) => Promise<void>} addRemoteCandidate
 *   add a remote candidate now, or after the remote description is set
 * @property {(description: RTCSessionDescriptionInit) => Promise<RTCSessionDescriptionInit | null>} renegotiate
 *   apply a description from the other side's `renegotiate`: an offer (answerer) is
 *   answered (the answer is returned, to send back); an answer (caller) is set (null)
 * @property {() => boolean} restartIce  caller: restart ICE now, unless one is in flight
 * @property {() => void} close  stop the local tracks and close the connection (idempotent)
 */

/**
 * @param {object} options
 * @param {'caller' | 'answerer'} options.role  only the caller restarts ICE and makes offers
 * @param {RTCIceServer[]} options.iceServers
 * @param {(candidate: RTCIceCandidateInit) => void} options.onSignal  a local candidate to send
 * @param {(offer: RTCSessionDescriptionInit) => void} options.onRenegotiate
 *   caller: a new offer (an ICE restart) to send with `renegotiate`
 * @param {(state: PeerState) => void} options.onState  ICE or connection state changed
 * @param {(stream: MediaStream) => void} options.onTrack  the remote media stream
 * @param {import('./log.js').Logger} options.log
 * @returns {Peer}
 */
export function createPeer({ role, iceServers, onSignal, onRenegotiate, onState, onTrack, log }) {
  const pc = new RTCPeerConnection({ iceServers });
  /** @type {RTCIceCandidateInit[]} */
  let pending = [];
  let closed = false;
  /** @type {MediaStream | null} */
  let remoteStream = null;
  /** The first offer/answer exchange is done: later negotiations are renegotiations. */
  let negotiated = false;
  /** Caller: a restart offer is out and its answer not applied yet. */
  let awaitingAnswer = false;
  /** A restart is in progress until ICE is connected again. */
  let restarting = false;
  /** False once a restart offer went unanswered (e.g. an aiortc peer): no more restarts. */
  let peerRestarts = true;
  /** Remote operations, one at a time in arrival order. */
  let chain = Promise.resolve();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let disconnectedTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let answerTimer;

  /**
   * Run `task` after the remote operations queued before it.
   * @template T
   * @param {() => Promise<T>} task
   * @returns {Promise<T>}
   */
  const serial = (task) => {
    const run = chain.then(task);
    chain = run.then(
      () => {},
      () => {},
    );
    return run;
  };

  const iceUp = () => pc.iceConnectionState === 'connected' || pc.iceConnectionState === 'completed';

  const reportState = () => {
    if (!closed) {
      onState({ ice: pc.iceConnectionState, connection: pc.connectionState, restarting });
    }
  };

  /** Caller: restart ICE (the offer follows from negotiationneeded). */
  const restartIce = () => {
    if (closed || role !== 'caller' || !negotiated || awaitingAnswer || !peerRestarts) {
      return false;
    }
    log.info('ICE restart', pc.iceConnectionState);
    clearTimeout(disconnectedTimer);
    restarting = true;
    reportState();
    pc.restartIce();
    return true;
  };

  /** Caller: after a restart with ICE still broken, the watch below tries again. */
  const watchIce = () => {
    clearTimeout(disconnectedTimer);
    if (role !== 'caller' || !negotiated || closed) {
      return;
    }
    if (pc.iceConnectionState === 'failed') {
      restartIce();
    } else if (pc.iceConnectionState === 'disconnected') {
      disconnectedTimer = setTimeout(() => {
        if (pc.iceConnectionState === 'disconnected') {
          restartIce();
        }
      }, RESTART_AFTER_MS);
    }
  };

  pc.onicecandidate = ({ candidate }) => {
    // A null candidate marks the end of gathering; the protocol has no message for it.
    if (candidate && !closed) {
      onSignal(candidate.toJSON());
    }
  };
  pc.oniceconnectionstatechange = () => {
    log.info('ice', pc.iceConnectionState);
    if (restarting && iceUp() && !awaitingAnswer) {
      restarting = false;
    }
    watchIce();
    reportState();
  };
  pc.onnegotiationneeded = async () => {
    // The first offer is made by offer(); after that only the caller renegotiates
    // (an ICE restart: restartIce() here or by anyone holding the connection).
    if (closed || role !== 'caller' || !negotiated || pc.signalingState !== 'stable') {
      return;
    }
    if (!peerRestarts) {
      log.warn('renegotiation needed, but the other side does not answer renegotiations');
      return;
    }
    try {
      restarting = true;
      awaitingAnswer = true;
      reportState();
      await pc.setLocalDescription();
      const offer = plain(pc.localDescription);
      if (closed) {
        return;
      }
      clearTimeout(answerTimer);
      answerTimer = setTimeout(rollback, RESTART_ANSWER_MS);
      onRenegotiate(offer);
    } catch (err) {
      log.warn('renegotiation offer failed', err);
      awaitingAnswer = false;
      restarting = !iceUp();
      reportState();
    }
  };
  pc.onconnectionstatechange = () => {
    log.info('connection', pc.connectionState);
    reportState();
  };
  pc.ontrack = ({ track, streams }) => {
    log.info('remote track', track.kind);
    const stream = streams[0] ?? (remoteStream ??= new MediaStream());
    if (!streams[0]) {
      stream.addTrack(track);
    }
    if (!closed) {
      onTrack(stream);
    }
  };

  /** @param {MediaStream | null} stream */
  const addLocal = (stream) => {
    if (stream) {
      for (const track of stream.getTracks()) {
        pc.addTrack(track, stream);
      }
    }
  };

  /** Caller: no answer to the restart offer came back; drop it so another can be made. */
  const rollback = () =>
    serial(async () => {
      if (closed || !awaitingAnswer || pc.signalingState !== 'have-local-offer') {
        return;
      }
      // Rolled back, a restart stays pending and would be offered again and again.
      log.warn('no answer to the ICE restart offer: rolled back; no more restarts');
      peerRestarts = false;
      awaitingAnswer = false;
      await pc.setLocalDescription({ type: 'rollback' }).catch((err) => log.warn('rollback', err));
      const held = pending;
      pending = [];
      for (const candidate of held) {
        await addCandidate(candidate);
      }
      restarting = !iceUp();
      watchIce();
      reportState();
    });

  /** @param {RTCSessionDescriptionInit} description */
  const setRemote = async (description) => {
    await pc.setRemoteDescription(description);
    const buffered = pending;
    pending = [];
    for (const candidate of buffered) {
      await addCandidate(candidate);
    }
  };

  /** @param {RTCIceCandidateInit} candidate */
  const addCandidate = async (candidate) => {
    try {
      await pc.addIceCandidate(candidate);
    } catch (err) {
      // One bad candidate must not end the call: others may still work.
      log.warn('addIceCandidate failed', candidate, err);
    }
  };

  /** @param {RTCSessionDescription | null} description */
  const plain = (description) => {
    if (!description) {
      throw new Error('no local description');
    }
    return { type: description.type, sdp: description.sdp };
  };

  return {
    async offer(stream) {
      if (stream) {
        addLocal(stream);
      } else {
        pc.addTransceiver('audio', { direction: 'recvonly' });
        pc.addTransceiver('video', { direction: 'recvonly' });
      }
      await pc.setLocalDescription(await pc.createOffer());
      return plain(pc.localDescription);
    },

    answer(offer, stream) {
      return serial(async () => {
        await setRemote(offer);
        // Added after the offer, the tracks reuse the offer's transceivers.
        addLocal(stream);
        await pc.setLocalDescription(await pc.createAnswer());
        negotiated = true;
        return plain(pc.localDescription);
      });
    },

    async acceptAnswer(answer) {
      await serial(() => setRemote(answer));
      negotiated = true;
      watchIce();
    },

    addRemoteCandidate(candidate) {
      return serial(async () => {
        if (closed) {
          return;
        }
        // During a restart the answer's new candidates may overtake the answer itself.
        if (!pc.remoteDescription || awaitingAnswer) {
          pending.push(candidate);
          return;
        }
        await addCandidate(candidate);
      });
    },

    renegotiate(description) {
      return serial(async () => {
        if (closed) {
          return null;
        }
        if (description.type === 'offer' && role === 'answerer') {
          log.info('renegotiation offer (ICE restart)');
          restarting = true;
          reportState();
          await setRemote(description);
          await pc.setLocalDescription();
          if (iceUp()) {
            restarting = false;
          }
          reportState();
          return plain(pc.localDescription);
        }
        if (description.type === 'answer' && role === 'caller' && awaitingAnswer) {
          clearTimeout(answerTimer);
          awaitingAnswer = false;
          await setRemote(description);
          if (iceUp()) {
            restarting = false;
          }
          watchIce();
          reportState();
          return null;
        }
        throw new Error(`unexpected renegotiate ${description.type} (${role}, ${pc.signalingState})`);
      });
    },

    restartIce,

    close() {
      if (closed) {
        return;
      }
      closed = true;
      pending = [];
      clearTimeout(disconnectedTimer);
      clearTimeout(answerTimer);
      pc.onicecandidate = null;
      pc.onnegotiationneeded = null;
      pc.oniceconnectionstatechange = null;
      pc.onconnectionstatechange = null;
      pc.ontrack = null;
      for (const sender of pc.getSenders()) {
        sender.track?.stop();
      }
      pc.close();
    },
  };
}
