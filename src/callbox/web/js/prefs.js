// @ts-check
/**
 * What the page remembers between visits (localStorage): the user's name and chosen
 * devices; and the room the link asks for. Storage can be blocked (privacy settings): then
 * the values last for this page only.
 */

const NAME_KEY = 'callbox.name';
const DEVICE_KEY = 'callbox.devices';

/** @typedef {{camera: string, microphone: string, speaker: string}} DeviceChoice */

/**
 * @param {string} key
 * @param {string} value
 */
function store(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // blocked: this page only
  }
}

/** @returns {string} the stored name, or a new random guest name (then stored) */
export function initialName() {
  let name = '';
  try {
    name = localStorage.getItem(NAME_KEY) ?? '';
  } catch {
    // blocked: a name for this page only
  }
  if (!name) {
    const digits = new Uint16Array(1);
    crypto.getRandomValues(digits);
    name = `guest-${(digits[0] % 10000).toString().padStart(4, '0')}`;
    saveName(name);
  }
  return name;
}

/** @param {string} name */
export function saveName(name) {
  store(NAME_KEY, name);
}

/** @returns {DeviceChoice} */
export function initialDevices() {
  try {
    const saved = JSON.parse(localStorage.getItem(DEVICE_KEY) ?? '{}');
    return {
      camera: String(saved.camera ?? ''),
      microphone: String(saved.microphone ?? ''),
      speaker: String(saved.speaker ?? ''),
    };
  } catch {
    return { camera: '', microphone: '', speaker: '' };
  }
}

/** @param {DeviceChoice} chosen */
export function saveDevices(chosen) {
  store(DEVICE_KEY, JSON.stringify(chosen));
}

/** @returns {string} the room of the page's link (`?room=`), else `lobby` */
export function initialRoom() {
  return new URLSearchParams(location.search).get('room')?.trim() || 'lobby';
}
