"""The statistics the benchmarks print: spread of runs and ratios between two trees."""
from __future__ import annotations

import argparse
import gc
import weakref
from contextlib import contextmanager

import pytest

from bench import measure
from bench.measure import percentile, ratio_spread, spread, table


def test_percentile_takes_the_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0


def test_spread_shows_the_median_and_the_range_of_the_runs():
    assert spread([12.0, 10.0, 30.0]) == "12 (10–30)"
    assert spread([0.5]) == "0.50"
    assert spread([0.0, 0.0]) == "0"
    assert spread([float("nan")]) == "n/a"


def test_ratio_is_of_the_medians_with_the_range_of_run_by_run_ratios():
    assert ratio_spread([20.0, 30.0, 40.0], [10.0, 10.0, 10.0]) == "3.00 (2.00–4.00)"
    assert ratio_spread([0.0, 0.0], [0.0, 0.0]) == "–"


def test_table_puts_each_tree_in_a_column_and_the_ratio_last():
    results = {"this tree": [{"turns/s": 25.0}], "main": [{"turns/s": 10.0}]}
    assert table(results).splitlines() == [
        "| figure | this tree | main | this tree / main |",
        "| --- | --- | --- | --- |",
        "| turns/s | 25 | 10 | 2.50 |",
    ]


def test_table_gives_a_ratio_to_the_first_tree_for_each_other():
    results = {"this tree": [{"p99 ms": 300.0}], "main": [{"p99 ms": 600.0}], "scaled": [{"p99 ms": 150.0}]}
    assert table(results).splitlines()[0] == (
        "| figure | this tree | main | scaled | this tree / main | this tree / scaled |"
    )
    assert table(results).splitlines()[2] == "| p99 ms | 300 | 600 | 150 | 0.50 | 2.00 |"


class Cycle:
    """An object only the cyclic collector frees."""

    def __init__(self) -> None:
        self.me = self


@pytest.mark.parametrize("fresh_stack", [False, True])
def test_every_run_of_compare_meets_no_collection_of_the_bench_and_its_garbage_is_freed_after(
    monkeypatch, capsys, fresh_stack
):
    # Only the bench's own process is at stake: the stack it would start is left out.
    @contextmanager
    def only_this_tree(ref, scaled=False):
        yield [measure.Tree(measure.THIS_TREE, measure.REPO_ROOT)]

    @contextmanager
    def no_stack(tree, config=None, env=None):
        yield "stack"

    monkeypatch.setattr(measure, "trees", only_this_tree)
    monkeypatch.setattr(measure, "serving", no_stack)
    seen, left = [], []

    def run(stack, number):
        seen.append(gc.isenabled())
        left.append(weakref.ref(Cycle()))
        return {"turns": 1.0}

    args = argparse.Namespace(runs=3, ref=None, scaled=False)
    results = measure.compare(args, run, fresh_stack=fresh_stack)
    assert results == {measure.THIS_TREE: [{"turns": 1.0}] * 3}
    assert seen == [False, False, False]
    assert gc.isenabled()
    assert [ref() for ref in left] == [None, None, None]
    assert "run 3 [this tree]" in capsys.readouterr().out


def test_the_collector_is_back_after_a_run_that_failed():
    with pytest.raises(RuntimeError), measure.collector_paused():
        raise RuntimeError("the stack stopped")
    assert gc.isenabled()
