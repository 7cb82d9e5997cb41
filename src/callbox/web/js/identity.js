// @ts-check
/**
 * Who and where the user is: the name and room they ask for (the server may give another
 * name, see events.js), kept in the page's link and the preferences, and the password. A
 * change ends the call and connects again. The state stays main.js's (read with
 * `page.get()`, changed with `page.update`).
 */
import { saveName } from './prefs.js';

const ROOM_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** @typedef {import('./main.js').Page} Page */

/**
 * @param {Page} page
 * @param {object} deps
 * @param {() => void} deps.endCall
 * @param {() => void} deps.connect  connect anew (connection.js)
 */
export function createIdentity(page, { endCall, connect }) {
  const { get, update, ui } = page;

  /**
   * The user changed the name or room fields.
   * @param {string} name
   * @param {string} room
   */
  function change(name, room) {
    // The input shows the name the server gave ("twin-2"); unchanged, we keep asking for
    // the one the user chose ("twin"), which may be free in another room.
    const nextName = name && name !== get().me ? name : get().name;
    const nextRoom = room || 'lobby';
    if (!ROOM_RE.test(nextRoom)) {
      update({ roomNote: 'A room name is 1 to 64 letters, digits, “_” or “-”.' });
      page.render();
      return;
    }
    if (nextName === get().name && nextRoom === get().room && get().me && !get().refused) {
      return;
    }
    endCall();
    update({ name: nextName, room: nextRoom, resume: null, nameNote: '', roomNote: '' });
    page.declined.clear();
    update({ qr: '', qrShown: false });
    saveName(nextName);
    const url = new URL(location.href);
    url.searchParams.set('room', nextRoom);
    history.replaceState(null, '', url);
    ui.setIdentity(nextName, nextRoom);
    connect();
  }

  /** @param {string} password */
  function setPassword(password) {
    update({ password, resume: null });
    connect();
  }

  /** The page opens: the fields, and a note if the link's room cannot be used. */
  function start() {
    if (!ROOM_RE.test(get().room)) {
      update({ roomNote: 'A room name is 1 to 64 letters, digits, “_” or “-”: the server will refuse this one.' });
    }
    ui.setIdentity(get().name, get().room);
  }

  return { change, setPassword, start };
}
