// @ts-check
/**
 * The connection check from the page: run it (netcheck.js) with the server's ICE servers
 * and show its progress and results. The state stays main.js's (read with `page.get()`,
 * changed with `page.update`).
 */
import { describe } from './devices.js';
import { describeCheck, runCheck } from './netcheck.js';

/** @typedef {import('./main.js').Page} Page */

/**
 * @param {Page} page
 * @param {object} deps
 * @param {() => Promise<RTCIceServer[]>} deps.iceServers
 */
export function createChecking(page, { iceServers }) {
  const { update, render } = page;

  async function run() {
    update({ checking: true, check: [] });
    render();
    try {
      const servers = await iceServers();
      update({ check: describeCheck(servers, await runCheck(servers)) });
    } catch (err) {
      update({ check: [{ result: 'fail', text: `The check could not run: ${describe(err)}` }] });
    }
    update({ checking: false });
    render();
  }

  return { run };
}
