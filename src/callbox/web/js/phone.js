// @ts-check
/**
 * The phone page (/phone): shows the CA certificate's SHA-256 fingerprint so the user can
 * compare it with what the phone shows, and keeps the room of the link it came from.
 */

/**
 * The DER bytes of a PEM certificate.
 * @param {string} pem
 * @returns {Uint8Array<ArrayBuffer>}
 */
export function pemToDer(pem) {
  const body = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  return Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
}

/**
 * @param {ArrayBuffer} digest
 * @returns {string} like "AB:CD:..."
 */
export function colonHex(digest) {
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
}

async function showFingerprint() {
  const line = document.getElementById('fingerprint-line');
  const out = document.getElementById('fingerprint');
  const none = document.getElementById('no-ca');
  const download = document.getElementById('download');
  try {
    const response = await fetch('/ca.pem', { cache: 'no-store' });
    if (response.status === 404) {
      if (none) none.hidden = false;
      if (download) download.hidden = true;
      return;
    }
    const der = pemToDer(await response.text());
    const digest = await crypto.subtle.digest('SHA-256', der);
    if (out && line) {
      out.textContent = colonHex(digest);
      line.hidden = false;
    }
  } catch {
    // Not over HTTPS (no crypto.subtle) or offline: the steps still help.
  }
}

const room = new URLSearchParams(location.search).get('room');
const back = document.getElementById('back');
if (room && back instanceof HTMLAnchorElement) {
  back.href = `/?room=${encodeURIComponent(room)}`;
}
showFingerprint();
