// @ts-check
/**
 * The page's call, from start to end: make it (call.js) with the page's callbacks, make it
 * the page's call, follow its changes (phase, ICE, quality), carry its chat, and end it in
 * one way whoever ends it (endCall). Like every flow module it keeps nothing of its own:
 * it reads the state with `page.get()` and changes it through main.js (`page.update` and
 * the setters).
 */
import { createCall } from './call.js';
import { createStatsPoller, describeSample, PATH_TEXT, qualityLevel } from './stats.js';

/** @typedef {import('./main.js').Page} Page */
/** @typedef {import('./call.js').Call} Call */

/**
 * @param {Page} page
 * @param {object} deps
 * @param {ReturnType<typeof import('./iceservers.js').createIceServers>} deps.ice
 * @param {import('./media.js').Media} deps.media
 * @param {() => void} deps.updateIncoming  ring for the next waiting call (answering.js)
 */
export function createCallFlow(page, { ice, media, updateIncoming }) {
  const { get, update, ui, log } = page;

  /**
   * @param {'caller' | 'answerer'} role
   * @param {string | null} offerId
   * @param {string} peerName
   * @param {RTCIceServer[]} servers
   * @param {boolean} channel
   * @returns {Call}
   */
  function newCall(role, offerId, peerName, servers, channel) {
    /** @type {Call} */
    const call = createCall({
      role,
      offerId,
      peerName,
      iceServers: servers,
      channel,
      myName: () => get().me,
      send: page.send,
      serverReady: page.serverReady,
      log: log.child(role),
      mark: page.mark,
      onChange: () => callChanged(call),
      onEnd: (ending) => {
        if (!page.current(call)) {
          return;
        }
        if (ending.kind === 'error') {
          page.fail('call', { title: ending.title, message: ending.message });
        }
        finishCall(ending.kind === 'notice' ? ending.message : '');
      },
      onChat: (line) => {
        if (page.current(call)) {
          page.addChat(line);
          page.render();
        }
      },
    });
    return call;
  }

  /** @param {Call} call */
  function callChanged(call) {
    if (!page.current(call)) {
      return;
    }
    const view = call.view();
    const wasConnected = get().phase === 'connected';
    page.setIce(view.ice);
    if (view.phase === 'connected') {
      page.clearError('call');
    }
    if (view.ice === 'disconnected' || view.ice === 'failed') {
      ice.trouble(); // before the restart that follows, fresh credentials
    }
    ui.setRemote(call.remoteMedia());
    if (view.phase !== get().phase || wasConnected !== (view.phase === 'connected')) {
      page.setPhase(view.phase);
    } else {
      page.render();
    }
    if (view.phase === 'connected') {
      // After the page says so: the first sample and the local video's start cost CPU
      // that the other side's DTLS (or ours) may still need (issue 8).
      media.showPreview(); // held back while an answer connected (answering.js)
      if (!get().poller) {
        update({
          poller: createStatsPoller(call.connection, (sample) => {
            if (page.current(call)) {
              update({
                quality: {
                  level: qualityLevel(sample),
                  path: sample.path ? PATH_TEXT[sample.path] : '',
                  text: describeSample(sample),
                },
              });
              page.render();
            }
          }),
        });
      }
    }
  }

  /**
   * Answerer, before the click: load the prepared call's remote streams into the stage's
   * video and audio elements (nothing plays: no media flows before the answer). Loading a
   * stream blocks the main thread for a while (Chromium makes the media player and asks for
   * the audio output device synchronously: 15 ms measured); done at the click, that lands
   * between ICE checking and connected and holds back the events that say so (issue 8).
   * @param {Call | null} call  null: the prepared call went away; empty the elements
   */
  function preload(call) {
    if (!get().call) {
      ui.setRemote(call ? call.remoteMedia() : { main: null, camera: null, audio: null });
    }
  }

  /** Make `call` the page's call. */
  function adopt(/** @type {Call} */ call) {
    page.clearError('media');
    page.clearError('call');
    ui.showNotice('');
    for (const entry of performance.getEntriesByType('mark')) {
      if (entry.name.startsWith('callbox:')) {
        performance.clearMarks(entry.name); // the timeline is the newest call's
      }
    }
    update({ call, chat: [], quality: null });
    page.newIceTrail();
  }

  /**
   * Release what the call used and show it ended.
   * @param {string} notice  what to say ('' for nothing)
   */
  function finishCall(notice) {
    update({ call: null });
    get().poller?.stop();
    update({ poller: null });
    get().stream?.getTracks().forEach((t) => t.stop());
    get().screenTrack?.stop();
    update({ screenTrack: null });
    media.useStream(null);
    ui.setRemote({ main: null, camera: null, audio: null });
    ui.showNotice(notice);
    page.setIce('closed');
    page.setPhase('ended');
    updateIncoming();
  }

  /**
   * The one way a call ends here: hang up, page hidden, failure.
   * @param {{notify?: boolean, notice?: string}} [options]  notify: tell the other side
   */
  function endCall({ notify = true, notice = '' } = {}) {
    const call = get().call;
    if (!call) {
      return;
    }
    if (notify) {
      call.hangup();
    } else {
      call.close();
    }
    finishCall(notice);
  }

  /**
   * @param {string} text  the user's chat line
   * @returns {boolean} whether it went out
   */
  function sendChat(text) {
    const line = get().call?.sendChat(text) ?? null;
    if (line) {
      page.addChat(line);
      page.render();
    }
    return line !== null;
  }

  return { newCall, preload, adopt, endCall, sendChat };
}

/** @typedef {ReturnType<typeof createCallFlow>} CallFlow */
