"""Learning from past runs: the Wilson lower bound, preferences from the user's overrides,
outcomes per definition, and the loop closed through a store (runs teach ``select``)."""

from __future__ import annotations

import asyncio

import pytest
from selkit import arun

import counterpoint as cp
from counterpoint.backends.base import Job
from counterpoint.selection import outcomes, preferences, select
from counterpoint.selection.learning import (
    APPLY,
    OBSERVE,
    SUGGEST,
    Outcome,
    Preference,
    learn,
    wilson_lower,
    workflow_history,
)
from counterpoint.store.base import RunInfo
from counterpoint.store.fingerprint import definition, fingerprint

# --- the Wilson lower bound --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [
        (1, 1, 0.5),
        (2, 2, 2 / 3),
        (6, 6, 6 / 7),
        (3, 3, 0.75),
        (0, 5, 0.0),
        (0, 0, 0.0),
    ],
)
def test_wilson_lower_bound(k: int, n: int, expected: float) -> None:
    assert wilson_lower(k, n) == pytest.approx(expected, abs=1e-12)


def test_the_levels_of_confidence() -> None:
    assert (APPLY, SUGGEST, OBSERVE) == (0.85, 0.65, 0.30)
    assert wilson_lower(5, 5) < APPLY <= wilson_lower(6, 6)
    assert wilson_lower(1, 1) < SUGGEST <= wilson_lower(2, 2)
    assert wilson_lower(1, 3) < OBSERVE <= wilson_lower(2, 3)
    assert wilson_lower(9, 10) < wilson_lower(10, 10)
    assert wilson_lower(10, 20) < 0.5  # half of the runs: less than even


def test_a_preference_s_level() -> None:
    assert Preference("w", "p", 6, 6, 0.857).level == "apply"
    assert Preference("w", "p", 2, 2, 0.667).level == "suggest"
    assert Preference("w", "p", 1, 1, 0.5).level == "observe"


# --- preferences and outcomes from run records -----------------------------------------------


def info(
    k: int,
    *,
    chosen: str | None = "parallel",
    recommended: str | None = "parallel",
    how: str = "selected",
    workflow: str = "wf",
    fp: str = "fp1",
    status: str = "succeeded",
    makespan: float | None = 10.0,
    finished: bool = True,
    selection: bool = True,
) -> RunInfo:
    """A run's record as the store keeps it (``k`` orders them: the higher, the newer)."""
    options: dict[str, object] = {}
    if selection:
        options["selection"] = {"chosen": chosen, "recommended": recommended, "how": how}
    return RunInfo(
        run_id=f"run-{k:03d}",
        workflow=workflow,
        source="<test>",
        fingerprint=fp,
        definition="",
        options=options,
        status=status,
        pattern=chosen or "",
        created_at=float(k),
        finished_at=float(k) + 1 if finished else None,
        makespan_s=makespan,
    )


def override(k: int, pattern: str, **kw: object) -> RunInfo:
    return info(k, chosen=pattern, recommended="parallel", how="override", **kw)  # type: ignore[arg-type]


def test_preferences_count_the_overrides_of_the_recommendation() -> None:
    runs = [override(3, "hybrid"), override(2, "hybrid"), info(1)]  # newest first
    assert preferences(runs, "wf") == [Preference("wf", "hybrid", 2, 3, wilson_lower(2, 3))]


def test_preferences_with_confidence_applied_suggested_observed() -> None:
    six = [override(k, "hybrid") for k in range(6)]
    (pref,) = preferences(six, "wf")
    assert (pref.pattern, pref.chosen, pref.runs, pref.level) == ("hybrid", 6, 6, "apply")
    assert pref.confidence == pytest.approx(0.857, abs=1e-3)
    (two,) = preferences(six[:2], "wf")
    assert (two.confidence, two.level) == (pytest.approx(0.667, abs=1e-3), "suggest")
    (one,) = preferences(six[:1], "wf")
    assert (one.confidence, one.level) == (0.5, "observe")


def test_preferences_below_observation_are_dropped() -> None:
    runs = [override(3, "hybrid"), info(2), info(1)]
    assert wilson_lower(1, 3) < OBSERVE
    assert preferences(runs, "wf") == []


def test_what_is_not_a_choice_against_the_recommendation() -> None:
    runs = [
        info(6, how="override"),  # overridden with the recommended pattern: no preference
        info(5, chosen="hybrid", recommended="hybrid", how="workflow"),
        info(4, chosen="hybrid", recommended="parallel", how="selected"),  # history switched
        override(3, "hybrid", workflow="other"),  # another workflow
        info(2, selection=False),  # no selection journaled (an older run)
    ]
    assert preferences(runs, "wf") == []


def test_a_preference_applied_and_kept_counts_as_chosen() -> None:
    runs = [
        info(3, chosen="hybrid", recommended="parallel", how="preference"),
        override(2, "hybrid"),
        override(1, "hybrid"),
    ]
    (pref,) = preferences(runs, "wf")
    assert (pref.chosen, pref.runs) == (3, 3)


def test_several_preferences_most_confident_first() -> None:
    runs = [override(k, "hybrid") for k in range(11)]
    runs += [override(k, "event-driven") for k in range(11, 20)]
    prefs = preferences(runs, "wf")
    assert [(p.pattern, p.chosen, p.runs) for p in prefs] == [
        ("hybrid", 11, 20),
        ("event-driven", 9, 20),
    ]
    assert prefs[0].confidence == pytest.approx(wilson_lower(11, 20))
    assert prefs[1].confidence == pytest.approx(wilson_lower(9, 20))
    assert prefs[0].confidence > prefs[1].confidence >= OBSERVE


def test_only_the_last_twenty_runs_count() -> None:
    newest = [override(100 - k, "event-driven") for k in range(20)]
    older = [override(50 - k, "hybrid") for k in range(10)]  # overrides long ago
    assert [(p.pattern, p.chosen, p.runs) for p in preferences(newest + older, "wf")] == [
        ("event-driven", 20, 20)
    ]
    recent = [override(200 + k, "hybrid") for k in range(14)]
    prefs = preferences(recent + newest + older, "wf")
    assert [(p.pattern, p.chosen, p.runs) for p in prefs] == [("hybrid", 14, 20)]


def test_outcomes_per_definition_and_pattern() -> None:
    runs = [
        info(1, makespan=10.0),
        info(2, makespan=14.0),
        info(3, makespan=12.0),
        info(4, status="failed", makespan=3.0),
        override(5, "hybrid", makespan=8.0),
        info(6, fp="fp2", makespan=1.0),
        info(7, finished=False),  # still going
        info(8, selection=False),  # its pattern was not chosen by selection
    ]
    assert outcomes(runs) == [
        Outcome("fp1", "hybrid", 1, 1, 8.0),
        Outcome("fp1", "parallel", 4, 3, 12.0),
        Outcome("fp2", "parallel", 1, 1, 1.0),
    ]
    assert outcomes(runs, "fp2") == [Outcome("fp2", "parallel", 1, 1, 1.0)]
    assert outcomes(runs, "fp1")[1].success_rate == 0.75


def test_outcomes_of_runs_that_all_failed_have_no_median() -> None:
    (o,) = outcomes([info(1, status="failed"), info(2, status="interrupted")])
    assert (o.runs, o.succeeded, o.median_makespan_s, o.success_rate) == (2, 0, None, 0.0)


def test_a_run_that_succeeded_in_no_time_is_a_success() -> None:
    (o,) = outcomes([info(1, makespan=0.0), info(2, makespan=2.0)])
    assert (o.runs, o.succeeded) == (2, 2)


# --- the loop through a store ------------------------------------------------------------------

ALIKE = """\
name: alike
agents:
  n: {kind: noop}
steps:
  - {id: root, agent: n, estimate: 1}
  - {id: w1, agent: n, estimate: 1, needs: root}
  - {id: w2, agent: n, estimate: 1, needs: root}
  - {id: w3, agent: n, estimate: 1, needs: root}
  - {id: join, agent: n, estimate: 1, needs: [w1, w2, w3]}
"""


def test_overrides_become_a_suggestion_then_an_applied_preference() -> None:
    wf = cp.loads(ALIKE)

    async def main() -> list[tuple[str, str, float | None, list[str]]]:
        store = cp.MemoryStore()
        seen: list[tuple[str, str, float | None, list[str]]] = []
        for _ in range(6):
            r = await select(wf, store=store)
            top = r.preferences[0].confidence if r.preferences else None
            seen.append((r.pattern, r.how, top, [x for x in r.reasons if "chose" in x]))
            await arun(wf, store=store, pattern="hybrid")
        r = await select(wf, store=store)
        seen.append((r.pattern, r.how, r.preferences[0].confidence, r.reasons[-1:]))
        # the run it selects keeps the preference (and says how it was chosen)
        result = await arun(wf, store=store)
        assert result.pattern == "hybrid"
        stored = await store.get_run(result.run_id)
        assert stored.options["selection"] == {
            "chosen": "hybrid",
            "recommended": "parallel",
            "how": "preference",
            "expected_s": {
                "sequential": 5.0,
                "parallel": 3.0,
                "hybrid": 3.0,
                "event-driven": 3.0,
                "resource-aware": 3.0,
            },
        }
        # --pattern still overrides it
        forced = await select(wf, store=store, pattern="parallel")
        assert (forced.pattern, forced.how) == ("parallel", "override")
        return seen

    seen = asyncio.run(main())
    suggestion = (
        "suggestion: you chose hybrid in {k} of the last {k} runs (confidence {c:.2f}); it is "
        "applied from 0.85"
    )
    assert seen == [
        ("parallel", "selected", None, []),
        ("parallel", "selected", 0.5, []),
        ("parallel", "selected", pytest.approx(2 / 3), [suggestion.format(k=2, c=2 / 3)]),
        ("parallel", "selected", pytest.approx(0.75), [suggestion.format(k=3, c=0.75)]),
        ("parallel", "selected", pytest.approx(0.8), [suggestion.format(k=4, c=0.8)]),
        ("parallel", "selected", pytest.approx(5 / 6), [suggestion.format(k=5, c=5 / 6)]),
        (
            "hybrid",
            "preference",
            pytest.approx(6 / 7),
            [
                "you chose hybrid over the recommendation in 6 of the last 6 runs (confidence "
                "0.86): applied (--pattern overrides it)"
            ],
        ),
    ]


def test_giving_the_recommended_pattern_is_no_preference() -> None:
    wf = cp.loads(ALIKE)

    async def main() -> list[Preference]:
        store = cp.MemoryStore()
        assert (await select(wf, store=store)).pattern == "parallel"
        for _ in range(2):
            await arun(wf, store=store, pattern="parallel")
        return (await select(wf, store=store)).preferences

    assert asyncio.run(main()) == []


def test_a_store_learns_the_outcomes_of_this_definition() -> None:
    wf = cp.loads(ALIKE)

    async def main() -> None:
        store = cp.MemoryStore()
        await arun(wf, store=store, pattern="hybrid")
        await arun(wf, store=store, pattern="sequential")
        await arun(wf, store=store, pattern="sequential")
        # another definition of the same workflow: its outcomes are its own
        other = cp.loads(
            ALIKE.replace("{id: join, agent: n, estimate: 1", "{id: join, agent: n, estimate: 2")
        )
        await arun(other, store=store, pattern="parallel")
        fp = fingerprint(definition(wf))
        learned = await learn(store, "alike", fp)
        assert learned.outcomes == [
            Outcome(fp, "hybrid", 1, 1, 3.0),
            Outcome(fp, "sequential", 2, 2, 5.0),
        ]
        r = await select(wf, store=store)
        assert r.alternative("sequential").measured_s == 5.0
        assert r.alternative("sequential").measured_runs == 2
        assert r.alternative("parallel").measured_runs == 0  # only the other definition
        # the runs were overrides, sequential in two of four: below what is observed
        assert wilson_lower(2, 4) < OBSERVE
        assert r.preferences == []

    asyncio.run(main())


def test_measured_outcomes_switch_the_choice_through_the_store() -> None:
    wf = cp.loads(ALIKE)

    async def main() -> None:
        store = cp.MemoryStore()
        # parallel measured slower than event-driven (here: the join takes longer)
        for _ in range(2):
            await arun(
                wf,
                store=store,
                pattern="parallel",
                duration=lambda j: 4.0 if j.step_id == "join" else 1.0,
            )
            await arun(wf, store=store, pattern="event-driven")
        r = await select(wf, store=store, learn=True)
        assert r.recommended == "event-driven"
        assert any(
            x.startswith("past runs of this definition: event-driven took") for x in r.reasons
        )

    asyncio.run(main())


SLOWER = """\
name: slower
max_concurrency: 2
agents:
  slow: {kind: noop}
  fast: {kind: noop}
steps:
  - {id: s1, agent: slow, estimate: 1}
  - {id: s2, agent: slow, estimate: 1, needs: s1}
  - {id: s3, agent: slow, estimate: 1, needs: s2}
  - {id: f1, agent: fast, estimate: 5}
  - {id: f2, agent: fast, estimate: 5}
  - {id: f3, agent: fast, estimate: 5}
"""


def really(job: Job) -> float:
    """The slow agent's steps really take 4 s, the fast one's 1 s."""
    return 4.0 if job.step_id.startswith("s") else 1.0


def test_learned_durations_change_the_expected_makespans() -> None:
    wf = cp.loads(SLOWER)

    async def main() -> None:
        store = cp.MemoryStore()
        before = await select(wf, store=store)
        await arun(wf, store=store, pattern="parallel", duration=really)
        after = await select(wf, store=store)
        unlearned = await select(wf, store=store, learn=False)
        expected = {a.pattern: a.makespan_s for a in before.alternatives}
        assert expected["sequential"] == 18.0  # 3 + 15 declared
        assert {a.pattern: a.makespan_s for a in unlearned.alternatives} == expected
        learned = {a.pattern: a.makespan_s for a in after.alternatives}
        assert learned["sequential"] == 15.0  # 12 + 3 learned
        assert learned["event-driven"] == 12.0  # the chain, the fast steps beside it
        assert after.analysis.learned == {"slow": 4.0, "fast": 1.0}
        assert after.analysis.critical_path_s == 12.0
        assert "durations learned from past runs for 2 agent(s)" in after.reasons

    asyncio.run(main())


def test_learned_durations_keep_the_differences_between_an_agent_s_steps() -> None:
    wf = cp.loads(
        """\
name: scaled
agents:
  n: {kind: noop}
steps:
  - {id: a, agent: n, estimate: 1}
  - {id: b, agent: n, estimate: 3, needs: a}
  - {id: c, agent: n, estimate: 2}
"""
    )
    took = {"a": 2.0, "b": 6.0, "c": 4.0}  # each twice its estimate

    async def main() -> None:
        store = cp.MemoryStore()
        await arun(wf, store=store, pattern="parallel", duration=lambda j: took[j.step_id])
        r = await select(wf, store=store)
        # the estimates doubled, not each step made the agent's median (4 s)
        assert {a.pattern: a.makespan_s for a in r.alternatives} == {
            "sequential": 12.0,
            "parallel": 8.0,
            "hybrid": 10.0,
            "event-driven": 8.0,
            "resource-aware": 8.0,
        }
        assert r.analysis.critical_path_s == 8.0
        assert "durations learned from past runs for 1 agent(s)" in r.reasons

    asyncio.run(main())


def test_failure_rates_from_the_store_make_an_agent_flaky() -> None:
    wf = cp.loads(
        """\
name: shaky
max_concurrency: 4
defaults:
  retries: {max: 1, backoff: 1, jitter: 0}
agents:
  f: {kind: noop, idempotent: true}
  n: {kind: noop}
steps:
  - {id: a1, agent: f, estimate: 2}
  - {id: a2, agent: f, estimate: 2}
  - {id: a3, agent: f, estimate: 2}
  - {id: b, agent: n, estimate: 1}
  - {id: c, agent: n, estimate: 1, needs: [a1, a2, a3, b]}
"""
    )

    def first_attempts_fail(job: Job) -> str | None:
        return "flaked" if job.step_id.startswith("a") and job.attempt == 1 else None

    async def main() -> None:
        store = cp.MemoryStore()
        await arun(wf, store=store, pattern="parallel", fail=first_attempts_fail)
        r = await select(wf, store=store)
        assert [(x.agent, x.attempts, x.failure_rate) for x in r.analysis.risks] == [("f", 6, 0.5)]
        assert r.analysis.flaky == ["f"]
        assert r.pattern == "resource-aware"
        assert r.policy.hedge == frozenset({"f"})

    asyncio.run(main())


def test_workflow_history_gathers_it_all() -> None:
    wf = cp.loads(ALIKE)

    async def main() -> None:
        store = cp.MemoryStore()
        await arun(wf, store=store, pattern="hybrid")
        await arun(wf, store=store, pattern="hybrid")
        await arun(cp.loads(CHAIN_ONE), store=store)
        found = await workflow_history(store)
        assert [h.workflow for h in found] == ["alike", "chained"]
        alike = found[0]
        assert alike.learned == {"n": 1.0}
        assert alike.agents["n"].steps == 10
        fp = fingerprint(definition(wf))
        assert alike.outcomes == [Outcome(fp, "hybrid", 2, 2, 3.0)]
        assert [(p.pattern, p.chosen, p.runs, p.level) for p in alike.preferences] == [
            ("hybrid", 2, 2, "suggest")
        ]
        out = alike.to_json()
        assert set(out) == {"agents", "learned_estimates_s", "outcomes", "preferences"}
        assert out["learned_estimates_s"] == {"n": 1.0}
        assert out["preferences"] == [
            {
                "workflow": "alike",
                "pattern": "hybrid",
                "chosen": 2,
                "runs": 2,
                "confidence": pytest.approx(2 / 3),
                "level": "suggest",
            }
        ]
        chained = found[1]
        assert chained.learned == {}  # two steps: not enough to learn from
        assert [h.workflow for h in await workflow_history(store, "chained")] == ["chained"]

    asyncio.run(main())


CHAIN_ONE = """\
name: chained
agents:
  m: {kind: noop}
steps:
  - {id: a, agent: m, estimate: 1}
  - {id: b, agent: m, estimate: 1, needs: a}
"""
