// @ts-check
/**
 * Negotiation: one RTCPeerConnection for one call, with the W3C "perfect negotiation"
 * pattern (docs/protocol.md, "Renegotiation"): the answerer of the call is polite (on a
 * colliding offer it rolls its own back and answers), the caller is impolite (it ignores
 * the colliding offer; its own is answered). Either side may renegotiate: a screen share,
 * a new track, an ICE restart.
 *
 * The first offer and answer travel as the seed protocol's newOffer / newAnswer (the
 * caller calls `offer()`, the answerer `answer()`); after that every description and
 * candidate leaves through `onDescription` / `onCandidate`, and whoever holds this peer
 * picks the route (the call's data channel once it is open, else the server's
 * `renegotiate`). Remote descriptions and candidates come in through `receive()` and
 * `addRemoteCandidate()`, one at a time in arrival order; candidates that arrive before
 * their description are held and added right after it.
 *
 * The call's data channel (PLAN.md decision 6) is created here, negotiated with id 0,
 * before the first offer or answer, so the offer carries its m=application section.
 *
 * ICE restart: the side that `restarts` (the caller) restarts ICE when the connection is
 * `failed`, or `disconnected` for RESTART_AFTER_MS. Any offer of ours left unanswered for
 * ANSWER_MS is rolled back; then this call makes no more offers (the other side does not
 * answer renegotiations: e.g. an aiortc peer asked for an ICE restart).
 */

/** How long ICE may stay `disconnected` before an ICE restart. */
const RESTART_AFTER_MS = 3000;
/** How long an offer of ours may wait for its answer before it is rolled back. */
const ANSWER_MS = 10000;
/** How long the first offer waits for its candidates (host ones take milliseconds). */
const OFFER_GATHER_MS = 300;
/** How long `firstCandidate` waits at most after the answer is set. */
const FIRST_CANDIDATE_MS = 50;

/**
 * @typedef {object} PeerState
 * @property {RTCIceConnectionState} ice
 * @property {RTCPeerConnectionState} connection
 * @property {boolean} restarting  an ICE restart is in progress (not yet connected again)
 * @property {boolean} stuck  an offer of ours went unanswered: no more renegotiation
 */

/**
 * @typedef {object} Peer
 * @property {RTCDataChannel | null} channel  the call's `callbox` data channel (null when
 *   the caller's offer had none: e.g. the seed's page)
 * @property {(stream: MediaStream | null) => Promise<RTCSessionDescriptionInit>} offer
 *   caller: add the local tracks (receive-only transceivers for what `stream` lacks),
 *   make the first offer and set it locally
 * @property {(offer: RTCSessionDescriptionInit, stream: MediaStream | null) => Promise<void>} prepare
 *   answerer, before the user answers: set the caller's offer, add our tracks, make the
 *   answer (no network traffic yet: nothing is set locally)
 * @property {(offer: RTCSessionDescriptionInit, stream: MediaStream | null) => Promise<RTCSessionDescriptionInit>} answer
 *   answerer: set the offer (unless prepared), add the local tracks, make the answer
 * @property {() => Promise<void>} firstCandidate  answerer: resolves at the first local
 *   candidate after the answer was set (or the end of gathering, or FIRST_CANDIDATE_MS)
 * @property {(description: RTCSessionDescriptionInit) => Promise<void>} receive
 *   a description from the other side: the answer to our first offer, or any later one
 * @property {(candidate: RTCIceCandidateInit) => Promise<void>} addRemoteCandidate
 * @property {(old: MediaStreamTrack, next: MediaStreamTrack | null) => Promise<boolean>} replaceTrack
 *   send `next` instead of `old` (a device switch; null: send nothing, the camera stopped;
 *   `old` still names that sender afterwards): no renegotiation
 * @property {(track: MediaStreamTrack, stream: MediaStream) => void} addTrack
 *   send one more track (a screen share): renegotiates
 * @property {(track: MediaStreamTrack) => void} removeTrack  stop sending it: renegotiates
 * @property {(servers: RTCIceServer[]) => void} setIceServers  fresh TURN credentials
 * @property {() => boolean} restartIce  restart ICE now (false: not possible now)
 * @property {() => RTCPeerConnection} connection  for getStats (read only)
 * @property {() => void} close  close the connection (idempotent; our tracks stay open)
 */

/**
 * @param {object} options
 * @param {boolean} options.polite  true for the answerer (PLAN.md decision 1)
 * @param {boolean} options.restarts  this side restarts ICE when it breaks (the caller)
 * @param {boolean} options.channel  open the call's data channel (the caller always; the
 *   answerer when the offer has an m=application section)
 * @param {RTCIceServer[]} options.iceServers
 * @param {(description: RTCSessionDescriptionInit) => void} options.onDescription
 *   a renegotiation description to send to the other side
 * @param {(candidate: RTCIceCandidateInit) => void} options.onCandidate  a local candidate
 * @param {(state: PeerState) => void} options.onState
 * @param {(track: MediaStreamTrack, stream: MediaStream) => void} options.onTrack  a remote track
 * @param {import('./log.js').Logger} options.log
 * @param {(name: string) => void} [options.mark]  a timeline mark (performance.mark)
 * @returns {Peer}
 */
export function createPeer({
  polite,
  restarts,
  channel: withChannel,
  iceServers,
  onDescription,
  onCandidate,
  onState,
  onTrack,
  log,
  mark = () => {},
}) {
  const pc = new RTCPeerConnection({ iceServers });
  const channel = withChannel
    ? pc.createDataChannel('callbox', { negotiated: true, id: 0, ordered: true })
    : null;
  /** @type {RTCIceCandidateInit[]} */
  let pending = [];
  let closed = false;
  /** The first offer/answer exchange is done: later negotiations are renegotiations. */
  let negotiated = false;
  /** Perfect negotiation: we are between deciding to offer and setting the offer. */
  let makingOffer = false;
  /** Perfect negotiation (impolite side): the last remote offer was ignored (glare). */
  let ignoreOffer = false;
  /** An ICE restart is in progress until ICE is up again. */
  let restarting = false;
  /** An offer of ours went unanswered: make no more (see the module comment). */
  let stuck = false;
  /** Remote operations, one at a time in arrival order. */
  let chain = Promise.resolve();
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let disconnectedTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let answerTimer;
  /** The answer's first local candidate (see `firstCandidate`). */
  let firstLocal = Promise.resolve();
  /** @type {MediaStream | null} */
  let looseStream = null;
  /** @type {WeakMap<RTCRtpSender, MediaStreamTrack>} senders put on null, and their track */
  const replaced = new WeakMap();

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

  const report = () => {
    if (!closed) {
      onState({ ice: pc.iceConnectionState, connection: pc.connectionState, restarting, stuck });
    }
  };

  /** @param {RTCSessionDescription | null} description */
  const plain = (description) => {
    if (!description) {
      throw new Error('no local description');
    }
    return { type: description.type, sdp: description.sdp };
  };

  /** @param {RTCIceCandidateInit} candidate */
  const addCandidate = async (candidate) => {
    try {
      await pc.addIceCandidate(candidate);
    } catch (err) {
      // One bad candidate (or one of an offer we ignored) must not end the call.
      if (!ignoreOffer) {
        log.warn('addIceCandidate failed', candidate, err);
      }
    }
  };

  const flushPending = async () => {
    const held = pending;
    pending = [];
    for (const candidate of held) {
      await addCandidate(candidate);
    }
  };

  const restartIce = () => {
    if (closed || !negotiated || stuck || restarting) {
      return false;
    }
    log.info('ICE restart', pc.iceConnectionState);
    clearTimeout(disconnectedTimer);
    restarting = true;
    report();
    pc.restartIce(); // the offer follows from negotiationneeded
    return true;
  };

  const watchIce = () => {
    clearTimeout(disconnectedTimer);
    if (!restarts || !negotiated || closed) {
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

  /** No answer to our offer: roll it back and stop offering in this call. */
  const giveUpOffer = () =>
    serial(async () => {
      if (closed || pc.signalingState !== 'have-local-offer') {
        return;
      }
      log.warn('no answer to our renegotiation offer: rolled back; no more offers in this call');
      stuck = true;
      await pc.setLocalDescription({ type: 'rollback' }).catch((err) => log.warn('rollback', err));
      await flushPending();
      restarting = restarting && !iceUp();
      report();
    });

  pc.onicecandidate = ({ candidate }) => {
    // A null candidate marks the end of gathering; the protocol has no message for it.
    if (candidate && !closed) {
      onCandidate(candidate.toJSON());
    }
  };
  pc.oniceconnectionstatechange = () => {
    log.info('ice', pc.iceConnectionState);
    mark(`ice-${pc.iceConnectionState}`);
    if (restarting && iceUp() && pc.signalingState === 'stable') {
      restarting = false;
    }
    watchIce();
    report();
  };
  pc.onconnectionstatechange = () => {
    log.info('connection', pc.connectionState);
    mark(`connection-${pc.connectionState}`);
    report();
  };
  pc.onsignalingstatechange = () => {
    if (pc.signalingState === 'stable') {
      clearTimeout(answerTimer);
      if (restarting && iceUp()) {
        restarting = false;
        report();
      }
    }
  };
  pc.onnegotiationneeded = async () => {
    // The first offer is made by offer(); after it, either side renegotiates here.
    if (closed || !negotiated) {
      return;
    }
    if (stuck) {
      log.warn('renegotiation needed, but the other side does not answer renegotiations');
      return;
    }
    try {
      makingOffer = true;
      const before = remoteUfrag(pc.localDescription);
      await pc.setLocalDescription();
      if (closed || pc.signalingState !== 'have-local-offer') {
        return;
      }
      if (before && remoteUfrag(pc.localDescription) !== before && !restarting) {
        restarting = true; // pc.restartIce() called by someone else: show it
        report();
      }
      clearTimeout(answerTimer);
      answerTimer = setTimeout(giveUpOffer, ANSWER_MS);
      onDescription(plain(pc.localDescription));
    } catch (err) {
      log.warn('renegotiation offer failed', err);
    } finally {
      makingOffer = false;
    }
  };
  pc.ontrack = ({ track, streams }) => {
    log.info('remote track', track.kind);
    const stream = streams[0] ?? (looseStream ??= new MediaStream());
    if (!streams[0]) {
      stream.addTrack(track);
    }
    if (!closed) {
      onTrack(track, stream);
    }
  };

  /**
   * @param {MediaStream | null} stream
   * @param {boolean} offering  caller: add receive-only transceivers for missing kinds
   */
  const addLocal = (stream, offering) => {
    const tracks = stream?.getTracks() ?? [];
    for (const track of tracks) {
      pc.addTrack(track, /** @type {MediaStream} */ (stream));
    }
    if (offering) {
      for (const kind of ['audio', 'video']) {
        if (!tracks.some((t) => t.kind === kind)) {
          pc.addTransceiver(kind, { direction: 'recvonly' });
        }
      }
    }
  };

  /** Answerer, before the click: the offer set, the tracks added, the answer made. */
  let prepared = '';
  /** @type {MediaStream | null | undefined} the stream whose tracks `prepare` added */
  let preparedWith;
  /** @type {RTCSessionDescriptionInit | null} */
  let preparedAnswer = null;

  return {
    channel,

    async offer(stream) {
      addLocal(stream, true);
      await pc.setLocalDescription(await pc.createOffer());
      // The offer waits in the room until someone answers, so a few milliseconds for the
      // candidates to be in it cost nobody anything; then the answerer can start ICE checks
      // the moment it answers, without waiting for the candidates in newAnswer's ack.
      await gathered(pc, OFFER_GATHER_MS);
      return plain(pc.localDescription);
    },

    prepare(offer, stream) {
      return serial(async () => {
        if (closed || prepared) {
          return;
        }
        await pc.setRemoteDescription(offer);
        prepared = offer.sdp ?? '';
        await flushPending();
        // Added after the offer, the tracks reuse the offer's transceivers. The answer is
        // made now (no network traffic: gathering starts when it is set, at the click).
        addLocal(stream, false);
        preparedWith = stream;
        preparedAnswer = await pc.createAnswer();
      });
    },

    answer(offer, stream) {
      return serial(async () => {
        if (prepared !== (offer.sdp ?? '')) {
          await pc.setRemoteDescription(offer);
          prepared = offer.sdp ?? '';
          await flushPending();
        }
        if (preparedWith !== stream) {
          addLocal(stream, false);
          preparedAnswer = null;
        }
        mark('answer-start');
        await pc.setLocalDescription(preparedAnswer ?? (await pc.createAnswer()));
        firstLocal = nextCandidate(pc, FIRST_CANDIDATE_MS).then((came) => {
          mark(came ? 'first-candidate' : 'first-candidate-late');
        });
        mark('answer-set');
        negotiated = true;
        return plain(pc.localDescription);
      });
    },

    firstCandidate: () => firstLocal,

    receive(description) {
      return serial(async () => {
        if (closed) {
          return;
        }
        const collision =
          description.type === 'offer' && (makingOffer || pc.signalingState !== 'stable');
        ignoreOffer = !polite && collision;
        if (ignoreOffer) {
          log.info('glare: ignoring their offer (we are the impolite side)');
          return;
        }
        if (collision) {
          log.info('glare: rolling back our offer (we are the polite side)');
        }
        if (description.type === 'answer' && pc.signalingState !== 'have-local-offer') {
          log.warn('an answer with no offer of ours out: ignored');
          return;
        }
        if (description.type === 'offer') {
          restarting = restarting || iceCredentialsChange(pc.remoteDescription, description);
        }
        // setRemoteDescription rolls our own offer back by itself on a collision.
        await pc.setRemoteDescription(description);
        await flushPending();
        if (!negotiated) {
          negotiated = true; // the answer to our first offer
          mark('answer-applied');
        }
        if (description.type === 'offer') {
          await pc.setLocalDescription();
          onDescription(plain(pc.localDescription));
        }
        if (restarting && iceUp()) {
          restarting = false;
        }
        watchIce();
        report();
      });
    },

    addRemoteCandidate(candidate) {
      return serial(async () => {
        if (closed) {
          return;
        }
        // Held until their description is set: none yet, or (an ICE restart's candidates
        // overtaking its description) one with other credentials.
        const current = remoteUfrag(pc.remoteDescription);
        if (!current || (candidate.usernameFragment && candidate.usernameFragment !== current)) {
          pending.push(candidate);
          return;
        }
        await addCandidate(candidate);
      });
    },

    async replaceTrack(old, next) {
      // a sender put on null (camera stopped) is found by the track it had
      const sender = pc.getSenders().find((s) => s.track === old || (s.track === null && replaced.get(s) === old));
      if (!sender) {
        return false;
      }
      await sender.replaceTrack(next);
      if (next === null) {
        replaced.set(sender, old);
      } else {
        replaced.delete(sender);
      }
      return true;
    },

    addTrack(track, stream) {
      pc.addTrack(track, stream);
    },

    removeTrack(track) {
      const sender = pc.getSenders().find((s) => s.track === track);
      if (sender && pc.signalingState !== 'closed') {
        pc.removeTrack(sender);
      }
    },

    setIceServers(servers) {
      if (!closed) {
        pc.setConfiguration({ ...pc.getConfiguration(), iceServers: servers });
      }
    },

    restartIce,

    connection: () => pc,

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
      pc.onsignalingstatechange = null;
      pc.ontrack = null;
      // The tracks belong to whoever opened them (the page stops them: callflow.js).
      channel?.close();
      pc.close();
    },
  };
}

/**
 * Resolve once ICE gathering is complete, or after `ms`.
 * @param {RTCPeerConnection} pc
 * @param {number} ms
 * @returns {Promise<boolean>}
 */
const gathered = (pc, ms) =>
  iceEvent(pc, 'icegatheringstatechange', ms, () => pc.iceGatheringState === 'complete');

/**
 * Resolve at the next `icecandidate` event (a candidate, or null: the end of gathering).
 * @param {RTCPeerConnection} pc
 * @param {number} ms
 * @returns {Promise<boolean>}
 */
const nextCandidate = (pc, ms) => iceEvent(pc, 'icecandidate', ms);

/**
 * Resolve with true at the first `type` event after which `holds()` (or at once once
 * gathering is complete: no ICE event of either kind comes then), with false after `ms`.
 * @param {RTCPeerConnection} pc
 * @param {'icegatheringstatechange' | 'icecandidate'} type
 * @param {number} ms
 * @param {() => boolean} [holds]
 * @returns {Promise<boolean>}
 */
function iceEvent(pc, type, ms, holds = () => true) {
  if (pc.iceGatheringState === 'complete') {
    return Promise.resolve(true);
  }
  return new Promise((resolve) => {
    /** @param {boolean} came */
    const done = (came) => {
      clearTimeout(timer);
      pc.removeEventListener(type, check);
      resolve(came);
    };
    const check = () => holds() && done(true);
    const timer = setTimeout(() => done(false), ms);
    pc.addEventListener(type, check);
  });
}

/**
 * Whether an SDP carries `candidate` itself (an RTCIceCandidate's string). Compared on
 * what names a candidate (foundation, component, transport, priority, address, port): the
 * tails differ, Chromium's candidate strings carry `ufrag ...` and its SDP lines do not.
 * @param {string} sdp
 * @param {string} candidate  `candidate:...`
 */
export function carries(sdp, candidate) {
  const key = candidate.trim().split(/\s+/).slice(0, 6).join(' ');
  return key.startsWith('candidate:') && sdp.includes(`\na=${key} `);
}

/**
 * The ICE username fragment of a description ('' without one).
 * @param {RTCSessionDescriptionInit | null} description
 */
function remoteUfrag(description) {
  return /a=ice-ufrag:(\S+)/.exec(description?.sdp ?? '')?.[1] ?? '';
}

/**
 * Whether an offer changes the ICE credentials (an ICE restart by the other side).
 * @param {RTCSessionDescriptionInit | null} current
 * @param {RTCSessionDescriptionInit} next
 */
export function iceCredentialsChange(current, next) {
  return Boolean(current && remoteUfrag(current) !== remoteUfrag(next));
}

/**
 * Whether an offer asks for a data channel (an m=application section).
 * @param {RTCSessionDescriptionInit} offer
 */
export function offersChannel(offer) {
  return /^m=application /m.test(offer.sdp ?? '');
}
