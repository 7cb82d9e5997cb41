// @ts-check
/**
 * The list of waiting calls, kept in place: one item per offer, made once, then updated
 * (name, disabled), moved or removed as the offers change. Rebuilt on every change, the
 * list would take the focus away from a keyboard user's Answer button whenever another
 * call came or went, and removing the focused button makes Chromium recompute style and
 * layout on the spot (3.4 ms in the answerer's trace, while ICE gathers: issue 8).
 */

/**
 * @param {HTMLUListElement} list
 * @returns {(offers: {offerId: string, offererUserName: string}[], disabled: boolean) => void}
 *   show `offers`, in their order, their buttons disabled or not
 */
export function createOfferList(list) {
  /** @type {Map<string, {item: HTMLLIElement, button: HTMLButtonElement}>} */
  const shown = new Map();
  return (offers, disabled) => {
    const wanted = new Set(offers.map((o) => o.offerId));
    for (const [id, { item }] of shown) {
      if (!wanted.has(id)) {
        item.remove();
        shown.delete(id);
      }
    }
    /** @type {ChildNode | null} */
    let at = list.firstChild;
    for (const offer of offers) {
      let entry = shown.get(offer.offerId);
      if (!entry) {
        const button = document.createElement('button');
        button.type = 'button';
        button.dataset.offerId = offer.offerId;
        const item = document.createElement('li');
        item.append(button);
        entry = { item, button };
        shown.set(offer.offerId, entry);
      }
      const text = `Answer ${offer.offererUserName}`;
      if (entry.button.textContent !== text) {
        entry.button.textContent = text;
      }
      if (entry.button.disabled !== disabled) {
        entry.button.disabled = disabled;
      }
      if (entry.item === at) {
        at = at.nextSibling;
      } else {
        list.insertBefore(entry.item, at);
      }
    }
  };
}
