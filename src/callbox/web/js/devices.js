// @ts-check
/**
 * Media devices: the camera and microphone (asked for together, then one by one when
 * that fails, so a microphone without a camera still gives an audio call), the device
 * lists for the pickers, a screen to share, and readable reasons for what is missing.
 * It keeps no state: streams go back to the caller, which owns them.
 */

/**
 * @typedef {object} Opened
 * @property {MediaStream | null} stream  what could be opened (null: nothing)
 * @property {{audio?: unknown, video?: unknown}} missing  why a kind is missing
 */

/**
 * @typedef {object} DeviceLists
 * @property {MediaDeviceInfo[]} cameras
 * @property {MediaDeviceInfo[]} microphones
 * @property {MediaDeviceInfo[]} speakers
 */

/** @param {unknown} err */
const errName = (err) => (err instanceof DOMException || err instanceof Error ? err.name : '');

/** @param {unknown} err */
export function describe(err) {
  return err instanceof Error ? err.message : String(err);
}

/**
 * The readable meaning of a getUserMedia failure, for one kind of device.
 * @param {'camera' | 'microphone' | 'camera and microphone'} what
 * @param {unknown} err
 * @returns {string}
 */
export function mediaMessage(what, err) {
  switch (errName(err)) {
    case 'NotAllowedError':
    case 'SecurityError':
      return `Permission to use the ${what} was denied.`;
    case 'NotFoundError':
    case 'OverconstrainedError':
      return `No ${what} was found.`;
    case 'NotReadableError':
    case 'AbortError':
      return `The ${what} is in use by another application.`;
    default:
      return `The ${what} could not be opened (${describe(err)}).`;
  }
}

/**
 * What the user is told about the devices that could not be opened ('' when none).
 * @param {Opened} opened
 */
export function missingMessage({ stream, missing }) {
  const { audio, video } = missing;
  if (audio !== undefined && video !== undefined) {
    const same = errName(audio) === errName(video);
    return same
      ? mediaMessage('camera and microphone', audio)
      : `${mediaMessage('camera', video)} ${mediaMessage('microphone', audio)}`;
  }
  if (video !== undefined) {
    return `${mediaMessage('camera', video)} The other side will hear you but not see you.`;
  }
  if (audio !== undefined) {
    return `${mediaMessage('microphone', audio)} The other side will see you but not hear you.`;
  }
  return stream ? '' : 'Nothing to send.';
}

/** @returns {MediaDevices} */
function mediaDevices() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new DOMException('this page is not a secure context (use https)', 'SecurityError');
  }
  return navigator.mediaDevices;
}

/**
 * @param {string | undefined} deviceId
 * @returns {MediaTrackConstraints | boolean}
 */
const constraint = (deviceId) => (deviceId ? { deviceId: { exact: deviceId } } : true);

/**
 * Open the camera and the microphone: together (one prompt), else each alone.
 * Never throws: what failed is in `missing`.
 * @param {{camera?: string, microphone?: string}} [ids]  chosen device ids
 * @returns {Promise<Opened>}
 */
export async function openMedia(ids = {}) {
  /** @type {Opened['missing']} */
  const missing = {};
  let md;
  try {
    md = mediaDevices();
  } catch (err) {
    return { stream: null, missing: { audio: err, video: err } };
  }
  const audio = constraint(ids.microphone);
  const video = constraint(ids.camera);
  try {
    return { stream: await md.getUserMedia({ audio, video }), missing };
  } catch {
    // One of them is missing, busy or refused: ask for each alone to keep the other.
  }
  /** @type {MediaStreamTrack[]} */
  const tracks = [];
  for (const kind of /** @type {const} */ (['audio', 'video'])) {
    try {
      const stream = await md.getUserMedia(kind === 'audio' ? { audio } : { video });
      tracks.push(...stream.getTracks());
    } catch (err) {
      missing[kind] = err;
    }
  }
  return { stream: tracks.length ? new MediaStream(tracks) : null, missing };
}

/**
 * One device of a kind (a switch in the picker).
 * @param {'audio' | 'video'} kind
 * @param {string} deviceId
 * @returns {Promise<MediaStreamTrack>}
 */
export async function openDevice(kind, deviceId) {
  const stream = await mediaDevices().getUserMedia({ [kind]: constraint(deviceId) });
  return stream.getTracks()[0];
}

/** @returns {Promise<MediaStreamTrack>} a screen, window or tab to share */
export async function openScreen() {
  const md = mediaDevices();
  if (!md.getDisplayMedia) {
    throw new DOMException('this browser cannot share a screen', 'NotSupportedError');
  }
  const stream = await md.getDisplayMedia({ video: true, audio: false });
  return stream.getVideoTracks()[0];
}

/** @returns {Promise<DeviceLists>} */
export async function listDevices() {
  const all = navigator.mediaDevices?.enumerateDevices ? await navigator.mediaDevices.enumerateDevices() : [];
  return {
    cameras: all.filter((d) => d.kind === 'videoinput' && d.deviceId),
    microphones: all.filter((d) => d.kind === 'audioinput' && d.deviceId),
    speakers: all.filter((d) => d.kind === 'audiooutput' && d.deviceId),
  };
}

/** @returns {boolean} whether the speaker can be chosen (HTMLMediaElement.setSinkId) */
export function canPickSpeaker() {
  return 'setSinkId' in HTMLMediaElement.prototype;
}

/**
 * Whether the user already allowed both camera and microphone for this page (then they can
 * be opened before Answer is clicked without a prompt).
 * @returns {Promise<boolean>}
 */
export async function alreadyAllowed() {
  try {
    const names = /** @type {PermissionName[]} */ (['camera', 'microphone']);
    const states = await Promise.all(names.map((name) => navigator.permissions.query({ name })));
    return states.every((s) => s.state === 'granted');
  } catch {
    return false;
  }
}
