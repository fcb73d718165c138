"""The regime map's verdicts and rows (experiments.regime) on hand-made cells: every row
can both pass and fail."""

import numpy as np
import pytest

from experiments import regime

GREEDY, FLOW, CLEAR = regime.POLICIES


def _policy(in_system, waste):
    n = len(in_system)
    return {"replications": list(range(n)), "in_system": list(in_system),
            "waste_fraction": [waste] * n}


def _cell(family, world, flow, greedy, waste):
    """A cell where flow control and Greedy have the given in-system samples."""
    return {"key": f"{family}-paper-{world}-0.95", "family": family, "world_name": world,
            "policies": {FLOW: _policy(flow, 0.0), GREEDY: _policy(greedy, waste),
                         CLEAR: _policy(greedy, waste)}}


WIN = ([10.0, 11.0, 10.5, 10.2], [20.0, 21.0, 20.4, 20.9])
TIE = ([10.0, 12.0, 9.0, 11.0], [10.5, 11.0, 10.0, 10.9])
LOSE = (WIN[1], WIN[0])


@pytest.mark.parametrize("samples, expected", [(WIN, "wins"), (TIE, "ties"), (LOSE, "loses")])
def test_classify_uses_the_paired_interval(samples, expected):
    assert regime.classify(_cell("lattice", "restart", *samples, waste=0.1)) == expected


def test_classify_single_replication_is_a_tie():
    assert regime.classify(_cell("lattice", "restart", [1.0], [5.0], waste=0.1)) == "ties"


def test_classify_refuses_unpaired_runs():
    cell = _cell("lattice", "restart", *WIN, waste=0.1)
    cell["policies"][FLOW]["replications"] = [4, 5, 6, 7]
    with pytest.raises(RuntimeError, match="not paired"):
        regime.classify(cell)


def _results(cells):
    for c in cells:
        c["verdict"] = regime.classify(c)
    return {"cells": cells}


def _verdicts(cells):
    return {row.claim: row.verdict for row in regime.verify(_results(cells))}


def _row(cells, words):
    matches = [v for claim, v in _verdicts(cells).items() if words in claim]
    assert len(matches) == 1, (words, _verdicts(cells))
    return matches[0]


def test_thrash_threshold():
    assert regime.thrashes(_cell("lattice", "restart", *TIE, waste=0.02))
    assert not regime.thrashes(_cell("lattice", "restart", *TIE, waste=0.005))


def test_rows_all_pass_on_the_claimed_world():
    cells = [_cell("lattice", "restart", *WIN, waste=0.05),       # thrash and win
             _cell("lattice", "recompute", *TIE, waste=0.0),      # no loss of progress
             _cell("jitter5", "restart", *TIE, waste=0.001),      # jitter: no thrash
             _cell("geometric", "restart", *LOSE, waste=0.002)]   # random lengths
    verdicts = _verdicts(cells)
    assert len(verdicts) == 5
    assert set(verdicts.values()) == {"PASS"}, verdicts


def test_win_without_thrash_fails_rows_1_and_5():
    cells = [_cell("geometric", "restart", *WIN, waste=0.0)]
    assert _row(cells, "only where Greedy thrashes") == "FAIL"
    assert _row(cells, "random decode lengths") == "FAIL"


def test_thrash_without_win_fails_row_2():
    cells = [_cell("lattice", "restart", *TIE, waste=0.05)]
    assert _row(cells, "where Greedy thrashes, flow control") == "FAIL"
    assert _row(cells, "only where Greedy thrashes") == "PASS"


def test_recompute_win_fails_row_3():
    cells = [_cell("lattice", "recompute", *WIN, waste=0.05)]
    assert _row(cells, "recompute") == "FAIL"


def test_jitter_thrash_fails_row_4():
    cells = [_cell("jitter5", "restart", *WIN, waste=0.03)]
    assert _row(cells, "jittering") == "FAIL"
    cells = [_cell("jitter10", "recompute", *WIN, waste=0.03)]  # row 4 reads restart only
    assert "jittering" not in " ".join(_verdicts(cells))


def test_rows_absent_without_their_cells():
    claims = " ".join(_verdicts([_cell("lattice", "restart", *WIN, waste=0.05)]))
    assert "recompute" not in claims and "jittering" not in claims
    assert "random decode lengths" not in claims
    assert regime.verify({"cells": []}) == []


GRID = (1.1, 1.2, 1.4, 1.7, 3.0)


def _tuned(cell, objective, drain):
    """Give ``cell`` a tuning table: mean number in system and drain per multiplier."""
    cell["tuned"] = {"objective": dict(zip(GRID, objective)), "drain": dict(zip(GRID, drain))}
    return cell


DRAIN = "effective drain"


def test_drain_row_passes_when_the_drain_peaks_at_the_best_budget_or_next_to_it():
    at = _tuned(_cell("lattice", "restart", *WIN, waste=0.05),
                [90, 60, 80, 120, 200], [11.2, 11.7, 11.5, 11.0, 10.0])
    beside = _tuned(_cell("jitter5", "restart", *WIN, waste=0.05),
                    [300, 200, 100, 110, 150], [2.6, 2.7, 2.75, 2.9, 2.8])
    assert regime.drain_choice(at) == (True, 1.0)
    assert regime.drain_choice(beside) == (True, 1.1)
    assert _row([at, beside], DRAIN) == "PASS"


def test_drain_row_fails_two_steps_away_and_skips_budgets_that_do_not_bind():
    far = _tuned(_cell("lattice", "restart", *WIN, waste=0.05),
                 [90, 60, 80, 120, 200], [11.2, 11.3, 11.5, 11.9, 10.0])
    assert regime.drain_choice(far) == (False, 2.0)
    assert _row([far], DRAIN) == "FAIL"
    top = _tuned(_cell("geometric", "restart", *LOSE, waste=0.0),
                 [90, 80, 70, 60, 50], [1.0, 3.0, 2.0, 1.0, 0.5])
    assert regime.drain_choice(top) is None  # best budget at the grid's top: no claim
    assert DRAIN not in " ".join(_verdicts([top]))


def test_cells_cover_the_budget():
    b = {"families": ["lattice", "azure-conv"], "memories": ["small", "paper"],
         "worlds": ["restart", "recompute"], "loads": [0.8, 0.95]}
    cells = regime.cells(b)
    assert len(cells) == 2 * 2 * 2 * 2
    assert len({c["key"] for c in cells}) == len(cells)
    conv = [c["memory"] for c in cells if c["family"] == "azure-conv"]
    assert set(conv) == {200_000, 1_000_000}
    assert all(c["workload"]["load"] == c["load"] for c in cells)
    assert np.all([c["world"] == regime.WORLDS[c["world_name"]] for c in cells])


def test_overview_reads_the_map():
    cells = [_cell("lattice", "restart", *WIN, waste=0.05),
             _cell("geometric", "restart", *TIE, waste=0.0)]
    for c in cells:
        c.update(load=0.95, verdict=regime.classify(c))
    text = "\n".join(regime.overview({"cells": cells}))
    assert "wins in 1 cells, ties in 1 and loses in 0" in text
    assert "reproduce in the world" in text
    cells[1]["policies"][FLOW]["in_system"] = [1.0, 1.1, 1.2, 1.0]  # a random-length win
    cells[1]["verdict"] = regime.classify(cells[1])
    assert "does not support" in regime.overview({"cells": cells})[-1]
    assert regime.overview({"cells": []}) == []
