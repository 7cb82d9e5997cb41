// @ts-check
/**
 * Ringing: a soft ring tone made with Web Audio (no sound file from anywhere), the tab
 * title, and a desktop notification where the user allowed them. It keeps only what it
 * needs to stop ringing.
 */

/** One ring: two tones together, on for RING_MS, then silence until the next. */
const RING_MS = 1200;
const PERIOD_MS = 3000;
const VOLUME = 0.06;

/**
 * @typedef {object} Ringer
 * @property {(from: string) => void} start  ring for a call from `from` (again: no-op)
 * @property {() => void} stop
 * @property {() => NotificationPermission | 'unsupported'} notifications
 * @property {() => Promise<void>} askNotifications  ask the user (from a click)
 */

/**
 * @param {{onOpen: () => void}} options  onOpen: the user clicked the notification
 * @returns {Ringer}
 */
export function createRinger({ onOpen }) {
  /** @type {AudioContext | null} */
  let audio = null;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let timer;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  let titleTimer;
  /** @type {Notification | null} */
  let notification = null;
  let title = '';
  let ringing = false;
  /**
   * Notification.permission, read once and then kept up to date: in Chromium each read is a
   * synchronous round trip to the browser process, and every render asks (issue 8: a page
   * that renders while a call connects must not block its main thread on it).
   * @type {NotificationPermission | 'unsupported'}
   */
  let permission = typeof Notification === 'undefined' ? 'unsupported' : Notification.permission;
  const reread = () => {
    permission = typeof Notification === 'undefined' ? 'unsupported' : Notification.permission;
  };
  if (permission !== 'unsupported') {
    navigator.permissions
      ?.query({ name: 'notifications' })
      .then((status) => status.addEventListener('change', reread))
      .catch(() => {});
  }

  const beep = () => {
    if (!audio) {
      return;
    }
    const now = audio.currentTime;
    const gain = audio.createGain();
    gain.gain.setValueAtTime(0, now);
    gain.gain.linearRampToValueAtTime(VOLUME, now + 0.05);
    gain.gain.setValueAtTime(VOLUME, now + RING_MS / 1000 - 0.1);
    gain.gain.linearRampToValueAtTime(0, now + RING_MS / 1000);
    gain.connect(audio.destination);
    for (const frequency of [440, 480]) {
      const osc = audio.createOscillator();
      osc.frequency.value = frequency;
      osc.connect(gain);
      osc.start(now);
      osc.stop(now + RING_MS / 1000);
    }
  };

  return {
    start(from) {
      if (ringing) {
        return;
      }
      ringing = true;
      try {
        audio = new AudioContext();
        // Without a user gesture first the context may stay suspended: then it is silent.
        audio.resume().catch(() => {});
        beep();
        timer = setInterval(beep, PERIOD_MS);
      } catch {
        audio = null;
      }
      title = document.title;
      const calling = `📞 ${from} is calling`;
      let flip = false;
      document.title = calling;
      titleTimer = setInterval(() => {
        flip = !flip;
        document.title = flip ? title : calling;
      }, 1000);
      if (permission === 'granted') {
        try {
          notification = new Notification('Incoming call', { body: `${from} is calling you`, tag: 'callbox-call' });
          notification.onclick = () => {
            window.focus();
            onOpen();
          };
        } catch {
          notification = null; // e.g. Android Chrome allows them only from a service worker
        }
      }
    },
    stop() {
      if (!ringing) {
        return;
      }
      ringing = false;
      clearInterval(timer);
      clearInterval(titleTimer);
      audio?.close().catch(() => {});
      audio = null;
      document.title = title;
      notification?.close();
      notification = null;
    },
    notifications: () => permission,
    async askNotifications() {
      reread();
      if (permission === 'default') {
        await Notification.requestPermission();
        reread();
      }
    },
  };
}
