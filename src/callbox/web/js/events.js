// @ts-check
/**
 * The server's events (docs/protocol.md): welcome, the room's waiting offers, and the
 * page's call as the server sees it (answer, candidates, renegotiation, decline, end), and
 * the requests it refused. The state stays main.js's (read with `page.get()`, changed with
 * `page.update` and its setters).
 */

/** @typedef {import('./main.js').Page} Page */
/** @typedef {import('./call.js').Call} Call */
/** @typedef {import('./ui.js').OfferView} OfferView */

/**
 * @param {Page} page
 * @param {object} deps
 * @param {ReturnType<typeof import('./iceservers.js').createIceServers>} deps.ice
 * @param {import('./callflow.js').CallFlow} deps.callflow
 * @param {() => void} deps.updateIncoming  ring for the next waiting call (answering.js)
 * @param {() => void} deps.settleDoubleCall  both called at once (placing.js)
 */
export function createEvents(page, { ice, callflow, updateIncoming, settleDoubleCall }) {
  const { get, update, ui, log } = page;

  /** @param {any} payload  welcome */
  function welcomed(payload) {
    update({ resumeTried: null });
    const call = get().call;
    const keptId = payload.resumed ? (payload.offerId ?? null) : null;
    const callId = call?.view().offerId ?? null;
    if (call && callId !== null && callId !== keptId) {
      // The server no longer has our call (a restart, or the socket was away too long).
      if (call.flowing() && call.channelOpen()) {
        call.detachFromServer();
        ui.showNotice('Connected to the server again; the call goes on directly between you.');
      } else {
        page.fail('call', {
          title: 'Call ended',
          message: 'The connection to the server was lost for too long, so the call ended.',
        });
        callflow.endCall({ notify: false });
      }
    }
    const asked = get().name;
    const me = String(payload.userName ?? '');
    const room = String(payload.room ?? get().room);
    const nameNote =
      me && me !== asked && !payload.resumed
        ? `“${asked}” is already taken in this room, so you are “${me}”.`
        : me === asked
          ? ''
          : get().nameNote;
    update({ me, room, nameNote, roomNote: '' });
    ui.setIdentity(me || asked, room);
    ice.welcome(payload.iceServers, payload.iceServersTtl);
    if (Array.isArray(payload.iceServers)) {
      call?.setIceServers(payload.iceServers);
    }
    update({ resume: typeof payload.resume === 'string' ? payload.resume : null, needPassword: false, refused: false });
    page.clearError('auth');
    page.render();
  }

  /** @param {OfferView[]} views */
  function offersArrived(views) {
    page.offers.add(views);
    updateIncoming();
    settleDoubleCall();
    page.render();
  }

  /** @param {any} payload  offerRemoved */
  function offerRemoved(payload) {
    const call = get().call;
    const callId = call?.view().offerId ?? null;
    page.offers.remove(payload?.offerId);
    page.declined.remove(payload?.offerId);
    if (call?.view().role === 'caller' && callId === payload?.offerId && payload?.reason !== 'answered') {
      callflow.endCall({ notify: false, notice: `Your call was withdrawn by the server (${payload?.reason ?? 'no reason'}).` });
    }
    updateIncoming();
    page.render();
  }

  /**
   * The events about the page's call.
   * @param {string} event
   * @param {any} payload
   * @returns {boolean} whether `event` is one of them
   */
  function callEvent(event, payload) {
    const call = get().call;
    const callId = call?.view().offerId ?? null;
    switch (event) {
      case 'answerResponse':
        if (call?.view().role === 'caller' && payload?.offerId === callId) {
          ui.showNotice('');
          call.answered(payload);
        }
        return true;
      case 'receivedIceCandidateFromServer':
        call?.remoteCandidate(payload);
        return true;
      case 'renegotiate':
        if (call && payload?.description && (!payload.offerId || payload.offerId === callId)) {
          call.renegotiate(payload.description);
        }
        return true;
      case 'offerDeclined':
        if (call && payload?.offerId === callId) {
          ui.showNotice(`${payload.by ?? 'Someone'} declined your call. It is still waiting for others in the room.`);
        }
        return true;
      case 'callEnded':
        if (call && (payload?.offerId === undefined || payload.offerId === callId)) {
          serverEndedCall(call, payload);
        }
        return true;
      default:
        return false;
    }
  }

  /**
   * @param {Call} call
   * @param {any} payload  callEnded
   */
  function serverEndedCall(call, payload) {
    const who = payload?.by ? String(payload.by) : call.view().peerName || 'The other side';
    const reason = String(payload?.reason ?? '');
    if (call.serverEnded(reason)) {
      ui.showNotice(
        reason === 'server-shutdown'
          ? 'The server is restarting; the call goes on directly between you.'
          : `${who} lost contact with the server; the call goes on directly between you.`,
      );
      return;
    }
    if (reason === 'peer-disconnected') {
      page.fail('call', { title: 'Peer left', message: `${who} left the call (disconnected).` });
      callflow.endCall({ notify: false });
    } else if (reason === 'server-shutdown') {
      callflow.endCall({ notify: false, notice: 'The server stopped, and the call had no connection of its own yet.' });
    } else {
      callflow.endCall({ notify: false, notice: `${who} hung up.` });
    }
  }

  /**
   * Every server event (signaling.js's onEvent).
   * @param {string} event
   * @param {any} payload
   */
  function onServerEvent(event, payload) {
    switch (event) {
      case 'welcome':
        welcomed(payload);
        break;
      case 'availableOffers':
        page.offers.clear();
        offersArrived(Array.isArray(payload) ? payload : []);
        break;
      case 'newOfferAwaiting':
        offersArrived(Array.isArray(payload) ? payload : [payload]);
        break;
      case 'offerRemoved':
        offerRemoved(payload);
        break;
      case 'signalingError':
        page.fail('server', {
          title: 'Server refused a request',
          message: `${payload?.message ?? payload?.code ?? 'unknown error'}${payload?.event ? ` (${payload.event})` : ''}`,
        });
        break;
      default:
        if (!callEvent(event, payload)) {
          log.debug('unhandled event', event);
        }
    }
  }

  return { onServerEvent };
}
