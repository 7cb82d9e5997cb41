// @ts-check
/**
 * Answering: ring for the oldest waiting call nobody here declined, prepare its answer
 * while it rings where the camera and microphone are already allowed (issue 8), answer it
 * (prepared or not), or decline it. The state stays main.js's (read with `page.get()`,
 * changed with `page.update` and its setters).
 */
import { channelFor } from './call.js';
import { alreadyAllowed, describe, missingMessage, openMedia } from './devices.js';

/** @typedef {import('./main.js').Page} Page */
/** @typedef {import('./call.js').Call} Call */
/** @typedef {import('./ui.js').OfferView} OfferView */
/**
 * @typedef {object} Answering
 * @property {Call} call
 * @property {Promise<RTCSessionDescriptionInit>} answering
 * @property {() => void} [show]  what the page shows of it, once the answer is on its way
 */

/**
 * @param {Page} page
 * @param {object} deps
 * @param {ReturnType<typeof import('./iceservers.js').createIceServers>} deps.ice
 * @param {import('./ringing.js').Ringer} deps.ringer
 * @param {import('./callflow.js').CallFlow} deps.callflow
 * @param {import('./media.js').Media} deps.media
 */
export function createAnswering(page, { ice, ringer, callflow, media }) {
  const { get, update, log } = page;

  /**
   * Answer a waiting offer.
   * @param {string} offerId
   * @param {boolean} receiveOnly
   * @param {MediaStream} [reuse]  media already open (a double call)
   */
  async function answerCall(offerId, receiveOnly = false, reuse) {
    const clicked = performance.now();
    let view = get().offers.get(offerId);
    if (get().call || !view) {
      return;
    }
    const preparing = get().preparing;
    if (!receiveOnly && get().prepared?.offerId !== offerId && preparing?.offerId === offerId) {
      // Clicked while the camera opens for this very call: that is the media the answer
      // needs, sooner than opening it a second time. The page says it is connecting.
      const name = view.offererUserName;
      ringer.stop();
      page.setPhase('connecting');
      await preparing.done;
      view = get().offers.get(offerId);
      if (get().call) {
        return;
      }
      if (!view) {
        page.fail('call', {
          title: 'Call already taken',
          message: `The call from ${name} was already taken by someone else, or withdrawn.`,
        });
        page.setPhase('idle');
        return;
      }
    }
    const prepared = get().prepared;
    const ready = prepared?.offerId === offerId && !receiveOnly ? prepared : null;
    if (!ready) {
      discardPrepared();
    }
    update({ prepared: null, incoming: null });
    const started = ready ? answerPrepared(ready, view, clicked) : await answerNow(offerId, view, receiveOnly, reuse, clicked);
    if (started) {
      await sendAnswer(offerId, view, started);
    }
  }

  /**
   * Prepared before the click: answer first, show it once the answer is sent and ICE has
   * its first local candidate (issue 8: nothing before the answer that ICE does not need).
   * A render in the click's own task (layout, paint, the local video starting) keeps the
   * main thread from taking the answer back from setLocalDescription, and so delays
   * newAnswer. Then Chromium makes ICE's sockets through the page's main thread (a
   * DevTools throttling token, then a P2PSocketManager per socket, each a task there,
   * posted when setLocalDescription starts gathering): a render at that moment delays the
   * first connectivity check by its whole length (traced: 15-20 ms). So what the click
   * shows (its render, the ringer's stop) waits for that first candidate (50 ms at most).
   * @param {{call: Call, stream: MediaStream | null}} ready
   * @param {OfferView} view
   * @param {number} clicked
   * @returns {Answering}
   */
  function answerPrepared({ call, stream }, view, clicked) {
    callflow.adopt(call);
    const answering = call.answer(view, stream);
    performance.mark('callbox:click', { startTime: clicked });
    const show = () => {
      if (page.current(call)) {
        page.mark('answer-shown');
        ringer.stop();
        media.useStream(stream, false);
        page.setPhase('connecting');
      }
    };
    return { call, answering, show };
  }

  /**
   * Not prepared: make the call, open the media (unless `reuse` or receive only), answer.
   * @param {string} offerId
   * @param {OfferView} view
   * @param {boolean} receiveOnly
   * @param {MediaStream | undefined} reuse
   * @param {number} clicked
   * @returns {Promise<Answering | null>} null: no answer (no media, or the call ended)
   */
  async function answerNow(offerId, view, receiveOnly, reuse, clicked) {
    ringer.stop();
    const servers = ice.current() ?? (await ice.get().catch(() => []));
    const call = callflow.newCall('answerer', offerId, view.offererUserName, servers, channelFor(view));
    callflow.adopt(call);
    performance.mark('callbox:click', { startTime: clicked });
    page.setPhase('connecting');
    let stream = reuse ?? null;
    if (!receiveOnly && !stream) {
      const opened = await media.startMedia('Answer without camera', () => answerCall(offerId, true));
      if (opened === undefined) {
        call.close();
        update({ call: null });
        page.setPhase('idle');
        return null;
      }
      stream = opened;
    }
    if (!page.current(call)) {
      stream?.getTracks().forEach((t) => t.stop());
      return null;
    }
    const answering = call.answer(view, receiveOnly ? null : stream);
    media.useStream(receiveOnly ? null : stream);
    return { call, answering };
  }

  /**
   * Send the answer once made, then the caller's candidates the server kept for us.
   * @param {string} offerId
   * @param {OfferView} view
   * @param {Answering} started
   */
  async function sendAnswer(offerId, view, { call, answering, show }) {
    try {
      const answer = await answering.catch((err) => {
        show?.();
        throw err;
      });
      const acked = page.send('newAnswer', { offerId, offererUserName: view.offererUserName, answer });
      page.mark('answer-sent');
      if (show) {
        call.firstCandidate().then(show);
      }
      const buffered = await acked;
      page.mark('answer-acked');
      if (page.current(call)) {
        call.addCandidates(Array.isArray(buffered) ? buffered : []);
      }
    } catch (err) {
      if (!page.current(call)) {
        return;
      }
      const code = /** @type {any} */ (err).code;
      if (code === 'offer_taken' || code === 'not_found') {
        page.fail('call', {
          title: 'Call already taken',
          message: `The call from ${view.offererUserName} was already taken by someone else, or withdrawn.`,
        });
        page.offers.remove(offerId);
        callflow.endCall({ notify: false });
      } else {
        page.fail('call', { title: 'Answer failed', message: describe(err) });
        callflow.endCall();
      }
    }
  }

  function discardPrepared() {
    const prepared = get().prepared;
    update({ prepared: null });
    if (prepared) {
      prepared.call.close();
      prepared.stream?.getTracks().forEach((t) => t.stop());
      callflow.preload(null);
    }
  }

  /** Ring for the oldest waiting call nobody here declined, while this page has no call. */
  function updateIncoming() {
    const next = get().call ? undefined : [...get().offers.values()].find((o) => !get().declined.has(o.offerId));
    if (next?.offerId === get().incoming?.offerId) {
      return;
    }
    ringer.stop();
    discardPrepared();
    update({ incoming: next ? { offerId: next.offerId, name: next.offererUserName } : null });
    if (next) {
      ringer.start(next.offererUserName);
      prepare(next);
    }
    page.render();
  }

  /**
   * Before the click (issue 8): where the user already allowed the camera and microphone,
   * open them and set the caller's offer and candidates, so Answer only has to answer.
   * @param {OfferView} view
   */
  async function prepare(view) {
    /** @type {() => void} */
    let finish = () => {};
    const done = new Promise((resolve) => {
      finish = () => resolve(undefined);
    });
    const preparing = { offerId: view.offerId, done };
    update({ preparing });
    try {
      await prepareNow(view);
    } finally {
      if (get().preparing === preparing) {
        update({ preparing: null });
      }
      finish();
    }
  }

  /** @param {OfferView} view */
  async function prepareNow(view) {
    if (!(await alreadyAllowed()) || get().incoming?.offerId !== view.offerId || get().call) {
      return;
    }
    const servers = await ice.get().catch(() => /** @type {RTCIceServer[]} */ ([]));
    const opened = await openMedia({ camera: get().chosen.camera, microphone: get().chosen.microphone });
    if (get().incoming?.offerId !== view.offerId || get().call || get().prepared) {
      opened.stream?.getTracks().forEach((t) => t.stop());
      return;
    }
    if (!opened.stream || missingMessage(opened)) {
      opened.stream?.getTracks().forEach((t) => t.stop());
      return; // the click will open them and say what is missing
    }
    const call = callflow.newCall('answerer', view.offerId, view.offererUserName, servers, channelFor(view));
    update({ prepared: { offerId: view.offerId, call, stream: opened.stream } });
    call.prepare(view, opened.stream).then(
      () => {
        if (get().prepared?.call === call) {
          callflow.preload(call);
        }
      },
      (err) => {
        log.warn('could not prepare the answer', describe(err));
        if (get().prepared?.call === call) {
          discardPrepared();
        }
      },
    );
  }

  /** @param {string} offerId */
  function decline(offerId) {
    page.declined.add(offerId);
    page.send('decline', { offerId }).catch((err) => log.warn('decline', describe(err)));
    updateIncoming();
  }

  return { answerCall, updateIncoming, decline };
}
