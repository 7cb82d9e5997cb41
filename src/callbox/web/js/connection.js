// @ts-check
/**
 * The page's connection to the server: connect with the page's identity (and its resume
 * token), follow the socket's status (the indicator and its trail, and the errors it
 * explains), and connect again where a new attempt cures a refusal (PLAN.md decisions 4
 * and 5). signaling.js does the socket's part; the state stays main.js's (read with
 * `page.get()`, changed with `page.update` and `page.setSocket`).
 */
import { createSignaling } from './signaling.js';

/** @typedef {import('./main.js').Page} Page */
/** @typedef {import('./signaling.js').SocketStatus} SocketStatus */
/** @typedef {import('./signaling.js').StatusDetail} StatusDetail */

/**
 * @param {Page} page
 * @param {object} deps
 * @param {(event: string, payload: any) => void} deps.onEvent  every server event
 */
export function createConnection(page, { onEvent }) {
  const { get, update, log } = page;

  /** @returns {import('./signaling.js').Auth} what this (re)connection attempt sends */
  function auth() {
    /** @type {import('./signaling.js').Auth} */
    const auth = { userName: get().name, room: get().room };
    if (get().resume || get().declareResume) {
      auth.resume = get().resume ?? true;
    }
    if (get().password) {
      auth.password = get().password;
    }
    update({ resumeTried: get().resume });
    return auth;
  }

  /** Connect anew (the first time, and for another name, room or password). */
  function connect() {
    get().signaling?.close();
    update({ me: '' });
    page.offers.clear();
    update({ refused: false });
    update({ signaling: createSignaling({ auth, onEvent, onStatus, log: log.child('socket') }) });
  }

  /** Try again now (the Reconnect button). */
  function reconnect() {
    get().signaling?.reconnect();
  }

  /**
   * @param {SocketStatus} status
   * @param {StatusDetail} detail
   */
  function onStatus(status, detail) {
    if (connectsAgain(status, detail)) {
      return;
    }
    page.setSocket(status);
    if (status === 'connected') {
      page.clearError('socket');
    } else {
      explain(status, detail);
    }
    page.render();
  }

  /**
   * The refusals a new attempt cures by itself: connect again at once.
   * @param {SocketStatus} status
   * @param {StatusDetail} detail
   * @returns {boolean} true when it connects again
   */
  function connectsAgain(status, detail) {
    if (status === 'offline' && detail.code === 'invalid_payload' && /resume/.test(detail.reason ?? '') && get().declareResume && !get().resumeTried) {
      // An older server that does not know `resume: true`: connect as its seed clients do.
      log.warn('the server does not take auth.resume: true; connecting without it');
      update({ declareResume: false });
      reconnect();
      return true;
    }
    if (status === 'offline' && detail.code === 'unauthorized' && get().resumeTried) {
      // PLAN.md decision 5: the server would not resume (it restarted, or the grace is
      // over). Connect as a new session; a call whose media flows goes on (see welcomed).
      log.warn('resume refused; connecting as a new session');
      update({ resume: null, resumeTried: null });
      reconnect();
      return true;
    }
    return false;
  }

  /**
   * Say why the socket is not connected, where the user can do something about it.
   * @param {SocketStatus} status
   * @param {StatusDetail} detail
   */
  function explain(status, detail) {
    if (detail.code === 'unauthorized') {
      update({ needPassword: true });
      page.fail('auth', {
        title: 'Password needed',
        message: get().password
          ? 'The server refused this password. Enter it again.'
          : 'This server needs a password. Enter it below.',
      });
    } else if (detail.code === 'invalid_payload' || detail.code === 'too_large' || detail.code === 'forbidden') {
      const text = detail.reason ?? detail.error ?? 'refused';
      if (/name/i.test(text) && !/room/i.test(text)) {
        update({ nameNote: `The server refused this name: ${text}` });
      } else {
        update({ roomNote: `The server refused this room: ${text}` });
      }
      update({ refused: true });
    } else if (detail.error || (detail.reason && detail.reason !== 'io client disconnect')) {
      const retrying = status === 'reconnecting' ? ' Retrying by itself…' : '';
      const keeping = get().call && status === 'reconnecting' ? ' The call goes on meanwhile.' : '';
      page.fail('socket', {
        title: 'Server unreachable',
        message: `Lost contact with the signaling server (${detail.error ?? detail.reason}).${retrying}${keeping}`,
        action: { label: 'Reconnect now', run: reconnect },
      });
    }
  }

  return { connect, reconnect };
}
