// @ts-check
/**
 * The room's link, to copy or to show as a QR code for a phone (qr.js, loaded the first
 * time it is shown). The state stays main.js's (read with `page.get()`, changed with
 * `page.update`).
 */
import { describe } from './devices.js';

/** @typedef {import('./main.js').Page} Page */

/**
 * @param {string} room
 * @returns {string} the page's address for `room`
 */
export function roomLink(room) {
  const url = new URL('/', location.origin);
  url.searchParams.set('room', room);
  return url.href;
}

/** @param {Page} page */
export function createInvite(page) {
  const { get, update, ui } = page;

  function copyLink() {
    navigator.clipboard
      ?.writeText(roomLink(get().room))
      .then(() => ui.flashCopy('Copied'))
      .catch(() => ui.flashCopy('Copy failed: select the link'));
  }

  async function toggleQr() {
    update({ qrShown: !get().qrShown });
    if (get().qrShown && !get().qr) {
      try {
        const { qrDataUrl } = await import('./qr.js');
        update({ qr: qrDataUrl(roomLink(get().room)) });
      } catch (err) {
        page.fail('qr', { title: 'No QR code', message: describe(err) });
      }
    }
    page.render();
  }

  return { copyLink, toggleQr };
}
