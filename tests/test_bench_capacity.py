"""How bench.capacity chooses the rates it offers: a ramp, then refining steps between held and missed."""
from __future__ import annotations

from bench.capacity import Search


def search_against(holds_up_to: float, *, start: float = 2.0, refine: int = 2, most: float = 200.0):
    """Run a Search against a stack that holds every rate up to ``holds_up_to``; return it and the rates."""
    search, offered = Search(start, 1.25, refine, most), []
    while search.rate is not None:
        offered.append(search.rate)
        search.record(search.rate <= holds_up_to)
    return search, offered


def test_refining_steps_find_the_capacity_between_the_ramps_rates():
    search, offered = search_against(42.0)
    ramp = [2.0 * 1.25 ** k for k in range(15)]  # 2 … 45.5: the last is the first missed
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
    assert offered == [2.0]
    assert search.held is None and search.missed == 2.0


def test_the_ramp_stops_at_the_most_it_may_offer():
    search, offered = search_against(1000.0, most=10.0)
    assert offered == [2.0 * 1.25 ** k for k in range(8)]  # 9.54 is the last within 10
    assert search.missed is None and search.held == offered[-1]
