"""How bench.capacity chooses the rates it offers: a ramp, then refining steps between held and missed.

A rate is missed only when two steps in a row at it miss, so each missed rate
is offered twice.
"""
from __future__ import annotations

from bench.capacity import Search


def search_against(holds_up_to: float, *, start: float = 2.0, refine: int = 2, most: float = 200.0,
                   strays: tuple[float, ...] = ()):
    """Run a Search against a stack that holds every rate up to ``holds_up_to``; return it and the rates.

    Each rate in ``strays`` is missed the first time it is offered, as if one turn met a stray pause.
    """
    search, offered = Search(start, 1.25, refine, most), []
    while search.rate is not None:
        stray = search.rate in strays and search.rate not in offered
        offered.append(search.rate)
        search.record(search.rate <= holds_up_to and not stray)
    return search, offered


def without_repeats(offered: list[float]) -> list[float]:
    """Return the rates offered, each missed rate's second offer left out."""
    return [rate for k, rate in enumerate(offered) if k == 0 or rate != offered[k - 1]]


def test_refining_steps_find_the_capacity_between_the_ramps_rates():
    search, full = search_against(42.0)
    ramp = [2.0 * 1.25 ** k for k in range(15)]  # 2 … 45.5: the last is the first missed
    # Missed rates (45.5 and the second refining step) are offered twice in a row.
    assert full[:16] == ramp + [ramp[14]] and len(full) == 19 and full[17] == full[18]
    offered = without_repeats(full)
    assert offered[:15] == ramp
    assert len(offered) == 17
    # Each refining step is the geometric middle of the last rate held and the first missed since.
    assert offered[15] == (ramp[13] * ramp[14]) ** 0.5 and offered[15] < 42.0
    assert offered[16] == (offered[15] * ramp[14]) ** 0.5 and offered[16] > 42.0
    assert search.held == offered[15]
    # Without refining, the figure would be rounded down to the ramp's grid (36.4).
    assert 42.0 / 1.25 ** 0.25 < search.held <= 42.0 < search.missed
    assert search_against(42.0, refine=0)[0].held == ramp[13]


def test_a_stack_missing_the_first_rate_gets_no_refining_steps():
    search, offered = search_against(1.0)
    assert offered == [2.0, 2.0]
    assert search.held is None and search.missed == 2.0


def test_one_stray_slow_step_does_not_end_the_ramp():
    # 2.5 turns/s misses once (one slow turn of 60 is the p99), then holds when offered again.
    search, offered = search_against(42.0, strays=(2.5,))
    assert offered[:3] == [2.0, 2.5, 2.5]
    assert without_repeats(offered) == without_repeats(search_against(42.0)[1])
    assert search.held == search_against(42.0)[0].held and 40.0 < search.held <= 42.0


def test_the_ramp_stops_at_the_most_it_may_offer():
    search, offered = search_against(1000.0, most=10.0)
    assert offered == [2.0 * 1.25 ** k for k in range(8)]  # 9.54 is the last within 10
    assert search.missed is None and search.held == offered[-1]
