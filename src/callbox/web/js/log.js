// @ts-check
/**
 * A small leveled logger. It is silent unless the page URL has `?debug=1`
 * (or `?debug=debug|info|warn|error` to pick the lowest level shown).
 * This is the only module allowed to write to the console.
 */

/** @typedef {'debug' | 'info' | 'warn' | 'error'} Level */

/** @type {Record<Level, number>} */
const RANK = { debug: 10, info: 20, warn: 30, error: 40 };

/**
 * @typedef {object} Logger
 * @property {(...args: unknown[]) => void} debug
 * @property {(...args: unknown[]) => void} info
 * @property {(...args: unknown[]) => void} warn
 * @property {(...args: unknown[]) => void} error
 * @property {(scope: string) => Logger} child  a logger with a longer scope prefix
 */

/**
 * The lowest level to print, read from a query string; null means silent.
 * @param {string} search  e.g. `location.search`
 * @returns {Level | null}
 */
export function levelFromQuery(search) {
  const value = new URLSearchParams(search).get('debug');
  if (value === null || value === '' || value === '0' || value === 'false') {
    return null;
  }
  if (value in RANK) {
    return /** @type {Level} */ (value);
  }
  return 'debug';
}

/**
 * @param {string} scope  shown in brackets before each message
 * @param {Level | null} level  lowest level printed; null prints nothing
 * @returns {Logger}
 */
export function createLogger(scope, level) {
  const min = level === null ? Infinity : RANK[level];
  /**
   * @param {Level} name
   * @returns {(...args: unknown[]) => void}
   */
  const at = (name) => {
    if (RANK[name] < min) {
      return () => {};
    }
    return (...args) => {
      const stamp = (performance.now() / 1000).toFixed(3);
      console[name](`${stamp} [${scope}]`, ...args);
    };
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (sub) => createLogger(`${scope}:${sub}`, level),
  };
}
