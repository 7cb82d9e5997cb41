// @ts-check
/**
 * Placing a call: open the media, send the offer, and wait on the server until someone
 * answers it. And when two people of the room call at once, settle it into one call.
 * The state stays main.js's (read with `page.get()`, changed with `page.update`).
 */
import { describe } from './devices.js';

/** @typedef {import('./main.js').Page} Page */

/**
 * @param {Page} page
 * @param {object} deps
 * @param {() => Promise<RTCIceServer[]>} deps.iceServers
 * @param {import('./ringing.js').Ringer} deps.ringer
 * @param {import('./callflow.js').CallFlow} deps.callflow
 * @param {import('./media.js').Media} deps.media
 * @param {(offerId: string, receiveOnly?: boolean, reuse?: MediaStream) => Promise<void>} deps.answerCall
 */
export function createPlacing(page, { iceServers, ringer, callflow, media, answerCall }) {
  const { get, update, ui, log } = page;

  /** Place a call: the offer waits on the server until someone answers it. */
  async function placeCall(receiveOnly = false) {
    if (get().call) {
      return;
    }
    ringer.stop();
    const servers = await iceServers().catch(() => /** @type {RTCIceServer[]} */ ([]));
    const call = callflow.newCall('caller', null, '', servers, true);
    callflow.adopt(call);
    page.setPhase('calling');
    const stream = receiveOnly ? null : await media.startMedia('Call without camera', () => placeCall(true));
    if (stream === undefined) {
      call.close();
      update({ call: null });
      page.setPhase('idle');
      return;
    }
    if (!page.current(call)) {
      stream?.getTracks().forEach((t) => t.stop());
      return;
    }
    media.useStream(stream);
    try {
      const offer = await call.offer(stream);
      const ack = await page.send('newOffer', offer);
      if (!page.current(call)) {
        page.send('hangup', { offerId: ack.offerId }).catch(() => {}); // hung up meanwhile: withdraw
        return;
      }
      call.setOfferId(ack.offerId);
      ui.showNotice('Waiting for someone to answer…');
      page.render();
      settleDoubleCall();
    } catch (err) {
      if (page.current(call)) {
        page.fail('call', { title: 'Call failed', message: describe(err) });
        callflow.endCall();
      }
    }
  }

  /**
   * Both sides clicked Call at once: each sees the other's offer while its own waits. The
   * one whose offer id sorts higher withdraws its offer and answers the other's; the other
   * keeps waiting and is answered. So they end in one call.
   */
  function settleDoubleCall() {
    const call = get().call;
    const view = call?.view();
    if (!call || !view || view.role !== 'caller' || view.phase !== 'calling' || !view.offerId) {
      return;
    }
    const mine = view.offerId;
    const earlier = [...get().offers.values()].find((o) => o.offerId < mine && !get().declined.has(o.offerId));
    if (!earlier) {
      return;
    }
    log.info('both called at once: answering', earlier.offererUserName);
    const stream = get().stream;
    update({ stream: null }); // keep the camera for the answer
    call.hangup();
    update({ call: null });
    answerCall(earlier.offerId, stream === null, stream ?? undefined).then(() => {
      if (get().call) {
        ui.showNotice(`${earlier.offererUserName} called at the same time: you are in their call.`);
      }
    });
  }

  return { placeCall, settleDoubleCall };
}
