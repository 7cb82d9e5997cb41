"""The offers waiting in our room, as the server lists them (``availableOffers``,
``newOfferAwaiting``, ``offerRemoved``), and a wait for one to answer."""

from __future__ import annotations

import asyncio

from callbox.errors import PeerTimeout
from callbox.peer.wire import OfferView, parse_offer_views


class OfferBoard:
    def __init__(self) -> None:
        self._offers: dict[str, OfferView] = {}
        self._changed = asyncio.Event()

    @property
    def offers(self) -> list[OfferView]:
        """The offers waiting now (not our own), oldest first."""
        return list(self._offers.values())

    def on_available(self, data: object) -> None:
        """``availableOffers``: the whole list of the room (after a reconnect too: what left
        meanwhile is forgotten)."""
        views = parse_offer_views(data)
        self._offers = {v.offer_id: v for v in views}
        self._changed.set()

    def on_new(self, data: object) -> None:
        """``newOfferAwaiting``: one offer or a list of them."""
        views = parse_offer_views(data if isinstance(data, list) else [data])
        self._offers.update({v.offer_id: v for v in views})
        self._changed.set()

    def on_removed(self, data: object) -> None:
        """``offerRemoved`` ``{offerId, reason}``."""
        offer_id = data.get("offerId") if isinstance(data, dict) else None
        if isinstance(offer_id, str):
            self._offers.pop(offer_id, None)
            self._changed.set()

    async def wait_for(self, *, from_user: str | None, within: float) -> OfferView:
        """The first waiting offer (from ``from_user`` if given), already listed or arriving."""

        def match() -> OfferView | None:
            for view in self._offers.values():
                if view.answerer_user_name is None and (
                    from_user is None or view.offerer_user_name == from_user
                ):
                    return view
            return None

        try:
            async with asyncio.timeout(within):
                while (found := match()) is None:
                    # cleared right after checking, with no await in between: no lost update
                    self._changed.clear()
                    await self._changed.wait()
                return found
        except TimeoutError:
            who = f" from {from_user}" if from_user else ""
            raise PeerTimeout(f"no offer{who} within {within:g} s") from None
