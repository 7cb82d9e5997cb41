// @ts-check
/**
 * The local media of the page's call: open the camera and microphone for it (and say what
 * is missing), mute, stop and start the camera, share the screen, switch devices, and keep
 * the device lists. devices.js does the browser's part; the state stays main.js's (read
 * with `page.get()`, changed with `page.update`).
 */
import { describe, listDevices, missingMessage, openDevice, openMedia, openScreen } from './devices.js';
import { saveDevices } from './prefs.js';

/** @typedef {import('./main.js').Page} Page */

/** @param {Page} page */
export function createMedia(page) {
  const { get, update, ui, fail, render, current, log } = page;

  /**
   * Open the camera and microphone for a call; say what is missing. Undefined: nothing
   * could be opened (an alert offers the receive-only way, `retry`).
   * @param {string} retryLabel
   * @param {() => void} retry
   * @returns {Promise<MediaStream | null | undefined>}
   */
  async function startMedia(retryLabel, retry) {
    const opened = await openMedia({ camera: get().chosen.camera, microphone: get().chosen.microphone });
    if (!opened.stream) {
      fail('media', {
        title: 'No camera or microphone',
        message: `${missingMessage(opened)} You can still see and hear the other side.`,
        action: { label: retryLabel, run: retry },
      });
      return undefined;
    }
    const missing = missingMessage(opened);
    if (missing) {
      fail('media', { title: 'Partly on', message: missing });
    }
    refreshDevices();
    return opened.stream;
  }

  /**
   * @param {MediaStream | null} stream  the call's camera and microphone from now on
   * @param {boolean} [preview]  show it in the local video now; false: once the call is
   *   connected (`showPreview`). Starting a video element's pipeline takes the CPU that ICE
   *   and DTLS need in the first milliseconds after Answer (issue 8).
   */
  function useStream(stream, preview = true) {
    update({ stream, muted: false, cameraOff: false });
    ui.setLocalStream(preview ? stream : null);
  }

  /** The call's stream in the local video (again: no-op). */
  function showPreview() {
    ui.setLocalStream(get().stream);
  }

  function sendMediaState() {
    const stream = get().stream;
    get().call?.setMedia({
      audio: Boolean(stream?.getAudioTracks().length) && !get().muted,
      video: Boolean(stream?.getVideoTracks().length) && !get().cameraOff,
    });
  }

  function toggleMute() {
    update({ muted: !get().muted });
    get().stream?.getAudioTracks().forEach((t) => (t.enabled = !get().muted));
    sendMediaState();
    render();
  }

  async function toggleScreen() {
    const call = get().call;
    if (!call) {
      return;
    }
    const shared = get().screenTrack;
    if (shared) {
      update({ screenTrack: null });
      call.stopScreen(shared);
      shared.stop();
      render();
      return;
    }
    try {
      const track = await openScreen();
      if (!current(call)) {
        track.stop();
        return;
      }
      update({ screenTrack: track });
      track.addEventListener('ended', () => {
        if (get().screenTrack === track) {
          toggleScreen(); // the browser's own "Stop sharing"
        }
      });
      call.shareScreen(track);
      render();
    } catch (err) {
      if (/** @type {any} */ (err)?.name !== 'NotAllowedError') {
        fail('media', { title: 'Screen not shared', message: describe(err) });
      }
    }
  }

  /**
   * @param {'camera' | 'microphone' | 'speaker'} kind
   * @param {string} id
   */
  async function chooseDevice(kind, id) {
    update({ chosen: { ...get().chosen, [kind]: id } });
    saveDevices(get().chosen);
    if (kind === 'speaker') {
      await ui.setSpeaker(id).catch((err) => fail('media', { title: 'Speaker not changed', message: describe(err) }));
      return;
    }
    const stream = get().stream;
    const call = get().call;
    const trackKind = kind === 'camera' ? 'video' : 'audio';
    const old = stream?.getTracks().find((t) => t.kind === trackKind);
    if (!stream || !call || !old || (trackKind === 'video' && get().cameraOff)) {
      return; // a stopped camera starts with the chosen one
    }
    try {
      const next = await openDevice(trackKind, id);
      next.enabled = trackKind === 'audio' ? !get().muted : !get().cameraOff;
      if (get().call !== call || get().stream !== stream) {
        next.stop();
        return;
      }
      await call.replaceTrack(old, next);
      stream.removeTrack(old);
      old.stop();
      stream.addTrack(next);
      ui.setLocalStream(null);
      ui.setLocalStream(stream);
    } catch (err) {
      fail('media', { title: `${kind === 'camera' ? 'Camera' : 'Microphone'} not switched`, message: describe(err) });
    }
    render();
  }

  /**
   * Stop the camera (its light goes off; the other side sees the camera-off badge), or start
   * it again: replaceTrack, no renegotiation.
   */
  async function toggleCamera() {
    const stream = get().stream;
    const call = get().call;
    const old = stream?.getVideoTracks()[0];
    if (!stream || !call || !old) {
      return;
    }
    try {
      if (!get().cameraOff) {
        update({ cameraOff: true });
        await call.replaceTrack(old, null);
        old.stop();
      } else {
        const next = await openDevice('video', get().chosen.camera);
        if (!current(call) || get().stream !== stream || !get().cameraOff) {
          next.stop();
          return;
        }
        await call.replaceTrack(old, next);
        stream.removeTrack(old);
        stream.addTrack(next);
        update({ cameraOff: false });
        ui.setLocalStream(null);
        ui.setLocalStream(stream);
      }
    } catch (err) {
      fail('media', { title: 'Camera', message: describe(err) });
    }
    sendMediaState();
    render();
  }

  async function refreshDevices() {
    try {
      update({ devices: await listDevices() });
      const inUse = (/** @type {string} */ kind) => get().stream?.getTracks().find((t) => t.kind === kind)?.getSettings().deviceId;
      const chosen = get().chosen;
      update({
        chosen: {
          ...chosen,
          camera: inUse('video') ?? chosen.camera,
          microphone: inUse('audio') ?? chosen.microphone,
        },
      });
      render();
    } catch (err) {
      log.warn('devices', describe(err));
    }
  }

  return { startMedia, useStream, showPreview, toggleMute, toggleScreen, chooseDevice, toggleCamera, refreshDevices };
}

/** @typedef {ReturnType<typeof createMedia>} Media */
