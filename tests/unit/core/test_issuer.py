"""The credit issuer's policy, driven by hand: a manual clock, plain values, no sockets, no sleeps."""

from __future__ import annotations

import numpy as np
import pytest

from aiperf_hpc.core.issue_actions import PHASE_DONE, Cancel, Issue, IssuerAction, Lose, Wait
from aiperf_hpc.core.issuer import CANCEL_WAIT_S, DRAIN_MARGIN_S, ISSUE_AHEAD_NS, CreditIssuer, IssuerPolicy
from aiperf_hpc.core.phases import PhasePlan
from aiperf_hpc.core.schedule import ArrivalSchedule
from aiperf_hpc.errors import DeadlineExceeded
from aiperf_hpc.runtime.clock import ManualClock

S = 1_000_000_000
REQUEST_TIMEOUT_S = 60.0
GRACE_S = 5.0
IDLE_S = REQUEST_TIMEOUT_S + DRAIN_MARGIN_S


def closed_loop(
    count: int | None = None, duration_s: float | None = None, cap: int = 4, ramp_up_s: float = 0.0
) -> PhasePlan:
    duration_ns = None if duration_s is None else int(duration_s * S)
    return PhasePlan("profiling", count, duration_ns, max_in_flight=cap, ramp_up_s=ramp_up_s)


def make_issuer(
    phases: list[PhasePlan],
    *,
    workers: dict[str, int] | None = None,
    delays_ns: list[list[int]] | None = None,
    trace: list[tuple[int, int, int]] | None = None,
    seed: int = 7,
    cancel_rate: float = 0.0,
    cancel_after_ns: int = 0,
    dataset_pass: bool = False,
) -> CreditIssuer:
    policy = IssuerPolicy(seed, REQUEST_TIMEOUT_S, GRACE_S, cancel_rate, cancel_after_ns, dataset_pass)
    issuer = CreditIssuer(phases, delays_ns or [[0], [0], [0]], policy, trace=trace)
    for worker_id, slots in (workers or {"w0": 8}).items():
        issuer.add_worker(worker_id, slots)
    return issuer


def begin(issuer: CreditIssuer, clock: ManualClock) -> PhasePlan:
    phase = issuer.begin_next_phase(clock.perf_ns(), clock.wall_ns())
    assert phase is not None
    return phase


def issue_all(issuer: CreditIssuer, clock: ManualClock) -> tuple[list[Issue], IssuerAction]:
    """Every credit the issuer sends now, and the first other action."""
    issued = []
    while isinstance(action := issuer.next_action(clock.perf_ns()), Issue):
        issued.append(action)
    return issued, action


def test_warmup_then_profiling_each_issued_and_drained() -> None:
    clock = ManualClock()
    warmup = PhasePlan("warmup", request_count=2, duration_ns=None, max_in_flight=4)
    issuer = make_issuer([warmup, closed_loop(count=3)])
    assert begin(issuer, clock).name == "warmup"
    credits, action = issue_all(issuer, clock)
    assert [(i.credit.phase, i.credit.credit_id, i.scheduled_wall_ns) for i in credits] == [
        ("warmup", 0, None),
        ("warmup", 1, None),
    ]
    assert action == Wait((REQUEST_TIMEOUT_S + DRAIN_MARGIN_S), returns_wake=True)  # the count drain
    for issue in credits:
        issuer.returned(issue.credit.credit_id, clock.perf_ns())
    assert issuer.next_action(clock.perf_ns()) is PHASE_DONE
    assert begin(issuer, clock).name == "profiling"
    credits, _ = issue_all(issuer, clock)
    assert [(i.credit.phase, i.credit.credit_id, i.credit.conversation_index) for i in credits] == [
        ("profiling", 2, 0),
        ("profiling", 3, 1),
        ("profiling", 4, 2),
    ]
    for issue in credits:
        issuer.returned(issue.credit.credit_id, clock.perf_ns())
    assert issuer.next_action(clock.perf_ns()) is PHASE_DONE
    assert issuer.begin_next_phase(clock.perf_ns(), clock.wall_ns()) is None
    assert dict(issuer.ledger.issued) == {"warmup": 2, "profiling": 3}


def test_each_phase_draws_its_arrivals_from_its_own_stream() -> None:
    clock = ManualClock()
    warmup = PhasePlan("warmup", 3, None, None, rate=50.0, rate_mode="poisson")
    profiling = PhasePlan("profiling", 3, None, None, rate=50.0, rate_mode="poisson")
    issuer = make_issuer([warmup, profiling], seed=11)
    for stream in (0, 1):
        begin(issuer, clock)
        start_wall_ns = clock.wall_ns()
        expected = ArrivalSchedule(rate=50.0, mode="poisson", seed=11, stream=stream)
        scheduled: list[int | None] = []
        while len(scheduled) < 3:
            action = issuer.next_action(clock.perf_ns())
            if isinstance(action, Wait):
                assert not action.returns_wake  # a sleep until the due time: only a stop ends it early
                clock.advance(round(action.timeout_s * 1e9))
            else:
                assert isinstance(action, Issue)
                scheduled.append(action.scheduled_wall_ns)
                issuer.returned(action.credit.credit_id, clock.perf_ns())
        assert scheduled == [start_wall_ns + expected.offset_ns(k) for k in range(3)]
        assert issuer.next_action(clock.perf_ns()) is PHASE_DONE


def test_a_scheduled_credit_leaves_issue_ahead_before_its_due_time() -> None:
    clock = ManualClock()
    phase = PhasePlan("profiling", 2, None, None, rate=10.0, rate_mode="constant")
    issuer = make_issuer([phase])
    begin(issuer, clock)
    assert isinstance(issuer.next_action(clock.perf_ns()), Issue)  # due at 0: at once
    assert issuer.next_action(clock.perf_ns()) == Wait((S // 10 - ISSUE_AHEAD_NS) / 1e9, returns_wake=False)
    clock.advance(S // 10 - ISSUE_AHEAD_NS - 1)
    assert issuer.next_action(clock.perf_ns()) == Wait(1e-9, returns_wake=False)
    clock.advance(1)
    assert isinstance(issuer.next_action(clock.perf_ns()), Issue)


def test_a_count_bounded_phase_respects_its_cap_and_waits_at_the_idle_limit() -> None:
    clock = ManualClock()
    issuer = make_issuer([closed_loop(count=5, cap=2)])
    begin(issuer, clock)
    credits, action = issue_all(issuer, clock)
    assert len(credits) == 2
    assert action == Wait(IDLE_S, returns_wake=True, idle=True)
    assert issuer.idle_error() == "no credit returned for 70 s in the profiling phase (2 outstanding)"
    issuer.returned(credits[0].credit.credit_id, clock.perf_ns())
    more, _ = issue_all(issuer, clock)
    assert len(more) == 1 and issuer.ledger.outstanding_in("profiling") == 2


def test_a_full_worker_gets_no_credit_beyond_its_slots() -> None:
    clock = ManualClock()
    issuer = make_issuer([closed_loop(count=10, cap=10)], workers={"w0": 2, "w1": 1})
    begin(issuer, clock)
    credits, action = issue_all(issuer, clock)
    assert sorted(i.credit.worker_id for i in credits) == ["w0", "w0", "w1"]
    assert isinstance(action, Wait) and action.idle


def test_a_closed_loop_stops_issuing_at_its_duration() -> None:
    clock = ManualClock()
    issuer = make_issuer([closed_loop(duration_s=1.0, cap=1)])
    begin(issuer, clock)
    credits, action = issue_all(issuer, clock)
    assert len(credits) == 1
    assert action == Wait(1.0, returns_wake=True, idle=False)  # wake at the duration, not the idle limit
    clock.advance(S // 4)
    issuer.returned(credits[0].credit.credit_id, clock.perf_ns())
    again, action = issue_all(issuer, clock)
    assert len(again) == 1 and action == Wait(0.75, returns_wake=True, idle=False)
    clock.advance(3 * S // 4)
    assert issuer.next_action(clock.perf_ns()) == Wait(GRACE_S, returns_wake=True)  # the grace period
    issuer.returned(again[0].credit.credit_id, clock.perf_ns())
    assert issuer.next_action(clock.perf_ns()) is PHASE_DONE


def test_a_rate_phase_sends_no_arrival_due_after_its_duration() -> None:
    clock = ManualClock()
    phase = PhasePlan("profiling", None, int(0.35 * S), None, rate=10.0, rate_mode="constant")
    issuer = make_issuer([phase])
    begin(issuer, clock)
    start_wall_ns = clock.wall_ns()
    scheduled: list[int | None] = []
    while not isinstance(action := issuer.next_action(clock.perf_ns()), Wait) or not action.returns_wake:
        if isinstance(action, Wait):
            clock.advance(round(action.timeout_s * 1e9))
        else:
            assert isinstance(action, Issue)
            scheduled.append(action.scheduled_wall_ns)
    assert scheduled == [start_wall_ns + k * S // 10 for k in range(4)]  # 0.4 s is past 0.35 s
    assert action == Wait(GRACE_S, returns_wake=True)


def test_a_ramp_raises_the_cap_over_time() -> None:
    clock = ManualClock()
    issuer = make_issuer([closed_loop(count=100, cap=4, ramp_up_s=4.0)])
    begin(issuer, clock)
    in_flight = []
    for _ in range(6):
        issue_all(issuer, clock)
        in_flight.append(issuer.ledger.outstanding_in("profiling"))
        clock.advance(S)
    assert in_flight == [1, 1, 2, 3, 4, 4]


def test_a_drain_within_its_deadline_ends_the_phase() -> None:
    clock = ManualClock()
    issuer = make_issuer([closed_loop(count=2)])
    begin(issuer, clock)
    credits, action = issue_all(issuer, clock)
    assert action == Wait(IDLE_S, returns_wake=True)
    clock.advance(int(IDLE_S * S) // 2)
    issuer.returned(credits[0].credit.credit_id, clock.perf_ns())
    assert issuer.next_action(clock.perf_ns()) == Wait(IDLE_S / 2, returns_wake=True)
    issuer.returned(credits[1].credit.credit_id, clock.perf_ns())
    assert issuer.next_action(clock.perf_ns()) is PHASE_DONE


def test_a_drain_past_its_deadline_cancels_then_calls_the_rest_lost() -> None:
    clock = ManualClock()
    issuer = make_issuer([closed_loop(count=4)], workers={"w0": 2, "w1": 2, "w2": 2})
    begin(issuer, clock)
    credits, _ = issue_all(issuer, clock)
    by_worker = {w: [i.credit for i in credits if i.credit.worker_id == w] for w in ("w0", "w1", "w2")}
    issuer.returned(by_worker["w2"][0].credit_id, clock.perf_ns())
    clock.advance(int(IDLE_S * S))
    assert issuer.next_action(clock.perf_ns()) == Cancel(["w0", "w1"], outstanding=3)
    clock.advance(S)  # sending the cancels took a while: the cancel wait starts after them
    assert issuer.next_action(clock.perf_ns()) == Wait(CANCEL_WAIT_S, returns_wake=True)
    issuer.returned(by_worker["w0"][0].credit_id, clock.perf_ns())  # one answers the cancel
    clock.advance(int(CANCEL_WAIT_S * S))
    assert issuer.next_action(clock.perf_ns()) == Lose(by_worker["w0"][1:], "no return within the cancel deadline")
    assert issuer.next_action(clock.perf_ns()) == Lose(by_worker["w1"], "no return within the cancel deadline")
    assert issuer.next_action(clock.perf_ns()) is PHASE_DONE
    assert issuer.ledger.outstanding == 0
    assert issuer.returned(by_worker["w1"][0].credit_id, clock.perf_ns()) is None  # late: already lost


def test_a_stop_mid_phase_drains_at_once_and_skips_later_phases() -> None:
    clock = ManualClock()
    warmup = PhasePlan("warmup", request_count=10, duration_ns=None, max_in_flight=2)
    issuer = make_issuer([warmup, closed_loop(count=10)])
    begin(issuer, clock)
    credits, _ = issue_all(issuer, clock)
    issuer.stop("interrupted by a signal")
    assert issuer.next_action(clock.perf_ns()) == Cancel(["w0"], outstanding=2)
    for issue in credits:
        issuer.returned(issue.credit.credit_id, clock.perf_ns())
    assert issuer.next_action(clock.perf_ns()) is PHASE_DONE
    assert issuer.begin_next_phase(clock.perf_ns(), clock.wall_ns()) is None
    assert issuer.stop_reason == "interrupted by a signal"


def test_a_stop_during_the_sleep_until_a_due_time_ends_the_phase() -> None:
    clock = ManualClock()
    issuer = make_issuer([PhasePlan("profiling", 5, None, None, rate=1.0, rate_mode="constant")])
    begin(issuer, clock)
    first = issuer.next_action(clock.perf_ns())
    assert isinstance(first, Issue)
    assert issuer.next_action(clock.perf_ns()) == Wait((S - ISSUE_AHEAD_NS) / 1e9, returns_wake=False)
    issuer.stop("run failed: x")
    issuer.returned(first.credit.credit_id, clock.perf_ns())
    assert issuer.next_action(clock.perf_ns()) is PHASE_DONE


def test_a_stop_before_the_first_phase_still_begins_it_and_ends_it_at_once() -> None:
    clock = ManualClock()
    issuer = make_issuer([closed_loop(count=3)])
    issuer.stop("stop")
    begin(issuer, clock)
    assert issuer.next_action(clock.perf_ns()) is PHASE_DONE
    assert issuer.ledger.outstanding == 0


def test_every_worker_lost_fails_the_phase() -> None:
    clock = ManualClock()
    issuer = make_issuer([closed_loop(count=10, cap=10)], workers={"w0": 2})
    begin(issuer, clock)
    credits, _ = issue_all(issuer, clock)
    assert issuer.lose_worker("w0") == [i.credit for i in credits]
    with pytest.raises(DeadlineExceeded, match=r"^every worker is lost; nothing can send requests$"):
        issuer.next_action(clock.perf_ns())


def test_cancellations_are_drawn_from_stream_two_in_issue_order() -> None:
    clock = ManualClock()
    issuer = make_issuer([closed_loop(count=20, cap=20)], workers={"w0": 20}, cancel_rate=0.5, cancel_after_ns=123)
    begin(issuer, clock)
    credits, _ = issue_all(issuer, clock)
    draws = np.random.default_rng([7, 2]).random(20)
    assert [i.cancel_after_ns for i in credits] == [123 if d < 0.5 else None for d in draws]


def test_a_multi_turn_conversation_waits_its_delay_and_keeps_its_worker() -> None:
    clock = ManualClock()
    issuer = make_issuer([closed_loop(count=2, cap=4)], workers={"w0": 1, "w1": 4}, delays_ns=[[0, S // 2]])
    begin(issuer, clock)
    (first,), action = issue_all(issuer, clock)
    assert (first.credit.worker_id, first.credit.turn_index) == ("w1", 0)
    assert action == Wait(IDLE_S, returns_wake=True, idle=True)  # the only conversation is in flight
    issuer.returned(first.credit.credit_id, clock.perf_ns())
    assert issuer.next_action(clock.perf_ns()) == Wait(0.5, returns_wake=True, idle=False)
    clock.advance(S // 2)
    second = issuer.next_action(clock.perf_ns())
    assert isinstance(second, Issue) and (second.credit.worker_id, second.credit.turn_index) == ("w1", 1)


def test_a_lost_worker_abandons_its_conversations() -> None:
    clock = ManualClock()
    issuer = make_issuer([closed_loop(count=4, cap=4)], workers={"w0": 4}, delays_ns=[[0, 0]])
    begin(issuer, clock)
    (first,), _ = issue_all(issuer, clock)
    issuer.add_worker("w1", 4)
    assert issuer.lose_worker("w0") == [first.credit]
    restarted = issuer.next_action(clock.perf_ns())
    assert isinstance(restarted, Issue) and restarted.credit.turn_index == 0  # the history went with w0


def test_a_fixed_schedule_sends_the_trace_in_order_and_ends_with_it() -> None:
    clock = ManualClock()
    phase = PhasePlan("profiling", None, None, None, fixed_schedule=True)
    trace = [(0, 1, 0), (S // 5, 0, 0)]
    issuer = make_issuer([phase], trace=trace)
    begin(issuer, clock)
    start_wall_ns = clock.wall_ns()
    first = issuer.next_action(clock.perf_ns())
    assert isinstance(first, Issue) and first.credit.conversation_index == 1
    assert first.scheduled_wall_ns == start_wall_ns
    sleep = issuer.next_action(clock.perf_ns())
    assert isinstance(sleep, Wait) and not sleep.returns_wake
    clock.advance(round(sleep.timeout_s * 1e9))
    second = issuer.next_action(clock.perf_ns())
    assert isinstance(second, Issue) and second.credit.conversation_index == 0
    assert second.scheduled_wall_ns == start_wall_ns + S // 5
    assert issuer.next_action(clock.perf_ns()) == Wait(IDLE_S, returns_wake=True)  # the trace ended: drain


def test_a_one_pass_profiling_phase_ends_with_the_dataset() -> None:
    clock = ManualClock()
    issuer = make_issuer([closed_loop(count=None, cap=8)], dataset_pass=True)
    begin(issuer, clock)
    credits, action = issue_all(issuer, clock)
    assert [i.credit.conversation_index for i in credits] == [0, 1, 2]
    assert action == Wait(IDLE_S, returns_wake=True)
    for issue in credits:
        issuer.returned(issue.credit.credit_id, clock.perf_ns())
    assert issuer.next_action(clock.perf_ns()) is PHASE_DONE
