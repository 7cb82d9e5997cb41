// @ts-check
/**
 * A QR code of a link, as a data: URL of an SVG image (the CSP allows `img-src data:`).
 * The encoder is the `uqr` package from npm, served by our server under /vendor/.
 */
import { renderSVG } from '/vendor/uqr.mjs';

/**
 * @param {string} text
 * @returns {string} a data: URL for an <img>
 */
export function qrDataUrl(text) {
  const svg = renderSVG(text, { ecc: 'M', border: 2 });
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
}
