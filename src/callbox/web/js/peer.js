// @ts-check
/**
 * One RTCPeerConnection for one call, as a factory (like webrtc/samples'
 * perfect-negotiation peer.js). Caller and answerer roles are fixed by the
 * protocol, so there is no renegotiation and no glare handling.
 *
 * Remote ICE candidates that arrive before the remote description is set are
 * buffered and added, in order, right after it is set.
 */

/**
 * @typedef {object} PeerState
 * @property {RTCIceConnectionState} ice
 * @property {RTCPeerConnectionState} connection
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
 * @property {() => void} close  stop the local tracks and close the connection (idempotent)
 */

/**
 * @param {object} options
 * @param {RTCIceServer[]} options.iceServers
 * @param {(candidate: RTCIceCandidateInit) => void} options.onSignal  a local candidate to send
 * @param {(state: PeerState) => void} options.onState  ICE or connection state changed
 * @param {(stream: MediaStream) => void} options.onTrack  the remote media stream
 * @param {import('./log.js').Logger} options.log
 * @returns {Peer}
 */
export function createPeer({ iceServers, onSignal, onState, onTrack, log }) {
  const pc = new RTCPeerConnection({ iceServers });
  /** @type {RTCIceCandidateInit[]} */
  let pending = [];
  let closed = false;
  /** @type {MediaStream | null} */
  let remoteStream = null;

  const reportState = () => {
    if (!closed) {
      onState({ ice: pc.iceConnectionState, connection: pc.connectionState });
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
    reportState();
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

    async answer(offer, stream) {
      await setRemote(offer);
      // Added after the offer, the tracks reuse the offer's transceivers.
      addLocal(stream);
      await pc.setLocalDescription(await pc.createAnswer());
      return plain(pc.localDescription);
    },

    async acceptAnswer(answer) {
      await setRemote(answer);
    },

    async addRemoteCandidate(candidate) {
      if (closed) {
        return;
      }
      if (!pc.remoteDescription) {
        pending.push(candidate);
        return;
      }
      await addCandidate(candidate);
    },

    close() {
      if (closed) {
        return;
      }
      closed = true;
      pending = [];
      pc.onicecandidate = null;
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
