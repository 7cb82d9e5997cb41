"""The send ledger: upper bounds per socket and per address, measured only when a bound
passes its budget."""

from __future__ import annotations

from callbox.server.ledger import Ledger


def test_sends_are_counted_until_a_bound_passes_then_measured_afresh() -> None:
    real = {"a": 0, "b": 0}
    measured: list[str] = []

    def measure(key: str) -> int:
        measured.append(key)
        return real[key]

    ledger = Ledger(100, 150, measure)
    ledger.add("a", "ip")
    ledger.add("b", "ip")
    assert ledger.allow("a", 60) and ledger.allow("a", 40)
    assert measured == []  # under the bounds: no measuring at all
    assert ledger.allow("a", 10)  # the bound passes 100: measured (drained to 0): fine
    assert measured == ["a"] and ledger.unsent("a") == 10
    real["a"] = 95
    assert not ledger.allow("a", 91)  # measured again, really over
    assert ledger.unsent("a") == 95
    assert ledger.allow("b", 50)
    real["b"] = 50
    assert not ledger.allow("b", 10)  # the address: 95 + 50 + 10 > 150 even measured
    real["a"] = 0
    assert ledger.allow("b", 10)  # a drained: the address is re-measured and fits


def test_fits_counts_nothing_and_unknown_sockets_always_fit() -> None:
    ledger = Ledger(100, 1000, lambda key: 0)
    ledger.add("a", "ip")
    assert ledger.fits("a", 90) and ledger.unsent("a") == 0
    assert ledger.allow("a", 90)
    assert ledger.fits("a", 50)  # over the bound, but it drained (measured 0)
    assert ledger.unsent("a") == 0
    assert Ledger(100, 1000, lambda key: 80).fits("x", 10) is not False
    ledger.remove("a")
    ledger.remove("a")
    assert ledger.fits("a", 10_000)


def test_allow_each_counts_as_allow_does_one_by_one() -> None:
    def run(each: bool) -> tuple[list[str], dict[str, int]]:
        real = {"a": 95, "b": 30, "c": 0, "d": 0}  # b has not taken its 30 yet
        ledger = Ledger(100, 150, lambda key: real[key])
        for key in ("a", "b", "c"):
            ledger.add(key, "ip")
        ledger.add("d", "other")
        keys = ["a", "b", "c", "d", "unknown"]
        ledger.allow("a", 95)
        if each:
            refused = ledger.allow_each(keys, 30)
        else:
            refused = [k for k in keys if not ledger.allow(k, 30)]
        return refused, {k: ledger.unsent(k) for k in keys}

    # a is over its own budget; c would take the address past 150 (95 + 30 + 30)
    assert run(each=True) == run(each=False) == (["a", "c"], {
        "a": 95, "b": 30, "c": 0, "d": 30, "unknown": 0,
    })  # fmt: skip
