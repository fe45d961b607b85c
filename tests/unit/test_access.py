"""API keys, principals and the token bucket, without a database or a clock that moves by itself."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.intake.domain import FeedbackRefused, FeedbackRequest, authorise
from services.intake.domain.progress import Progress
from shared.apikeys import Principal, build_parser, key_hash, new_key, parse_dev_keys
from shared.ratelimit import RateLimiter, TokenBucket
from shared.settings import ServiceSettings

SANITATION = Principal("department", "sanitation")
CENTRE = Principal("centre", "command-centre")


def test_a_bucket_allows_its_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=3, now=100.0)
    assert [bucket.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(100.0) == pytest.approx(0.5), "one token takes half a second at 2/s"
    assert bucket.take(100.25) == pytest.approx(0.25)
    assert bucket.take(100.5) == 0.0
    assert bucket.take(1000.0) == 0.0 and bucket.tokens == pytest.approx(2.0), "never over burst"


def test_a_clock_going_back_does_not_mint_tokens() -> None:
    bucket = TokenBucket.full(rate=1.0, burst=1, now=50.0)
    assert bucket.take(50.0) == 0.0
    assert bucket.take(40.0) == pytest.approx(1.0)
    assert bucket.take(50.5) == pytest.approx(0.5)


def test_a_limiter_needs_a_rate_and_a_burst() -> None:
    with pytest.raises(ValueError, match="rate"):
        RateLimiter(rate=0, burst=1)
    with pytest.raises(ValueError, match="burst"):
        RateLimiter(rate=1, burst=0.5)


def test_dev_keys_parse_and_bad_ones_fail_at_start_naming_the_item() -> None:
    assert parse_dev_keys("channel:open311:k1, department:sanitation:k:2,") == [
        (Principal("channel", "open311"), "k1"),
        (Principal("department", "sanitation"), "k:2"),
    ]
    with pytest.raises(ValueError, match="kind:id:key"):
        parse_dev_keys("open311:k1")
    with pytest.raises(ValueError, match="'mayor' is not a key kind"):
        parse_dev_keys("mayor:office:k")
    with pytest.raises(ValueError, match="not a department id"):
        parse_dev_keys("department:Water Supply:k")
    with pytest.raises(ValidationError, match="api_keys"):
        ServiceSettings(api_keys="channel:open311")
    assert ServiceSettings(api_keys="centre:c1:k").dev_api_keys == [
        (Principal("centre", "c1"), "k")
    ]


def test_only_a_hash_of_a_key_is_kept() -> None:
    assert key_hash("secret") == key_hash("secret") != key_hash("secret ")
    assert "secret" not in key_hash("secret") and len(key_hash("secret")) == 64


def test_a_new_key_never_reads_as_an_option_to_the_revoke_command() -> None:
    # One URL-safe token in 64 starts with '-': 4,000 draws would show it.
    keys = [new_key() for _ in range(4000)]
    assert not any(k.startswith("-") for k in keys)
    assert len(set(keys)) == len(keys) and all(len(k) == 43 for k in keys)
    args = build_parser().parse_args(["--service", "intake", "revoke", keys[0]])
    assert (args.command, args.key) == ("revoke", keys[0])
    # A key made before that rule is still revocable, after '--'.
    older = "-" + keys[0][1:]
    args = build_parser().parse_args(["--service", "intake", "revoke", "--", older])
    assert args.key == older


def _dispatched(department: str = "sanitation", co: tuple[str, ...] = ()) -> Progress:
    return Progress(status="dispatched", department=department, co_departments=co, area="a1")


def _refused(outcome: object) -> FeedbackRefused:
    assert isinstance(outcome, FeedbackRefused) and outcome.kind == "forbidden", outcome
    return outcome


def test_a_department_posts_its_own_work_on_cases_it_holds() -> None:
    accepted = FeedbackRequest(kind="accepted", actor_id="ws-1")
    assert authorise(SANITATION, "C1", accepted, _dispatched()) == FeedbackRequest(
        kind="accepted", actor_id="ws-1", department="sanitation"
    )
    co = authorise(Principal("department", "parks"), "C1", accepted, _dispatched(co=("parks",)))
    assert isinstance(co, FeedbackRequest) and co.department == "parks"
    other = _refused(authorise(Principal("department", "parks"), "C1", accepted, _dispatched()))
    assert (other.field, other.message) == ("case_id", "case C1 is held by sanitation, not parks")
    named = FeedbackRequest(kind="handled", actor_id="ws-1", department="parks")
    assert _refused(authorise(SANITATION, "C1", named, _dispatched())).field == "department"
    verified = FeedbackRequest(kind="verified", actor_id="ws-1")
    assert _refused(authorise(SANITATION, "C1", verified, _dispatched())).field == "type"
    posing = FeedbackRequest(kind="handled", actor_id="ws-1", actor_role="inspector")
    assert _refused(authorise(SANITATION, "C1", posing, _dispatched())).field == "actor_role"
    # Before the read model has the dispatch, a department may only speak for itself.
    early = FeedbackRequest(kind="accepted", actor_id="ws-1", department="sanitation")
    assert authorise(SANITATION, "C1", early, Progress()) == early


def test_the_centre_verifies_and_rates_but_never_does_a_departments_work() -> None:
    for kind in ("verified", "verification_failed", "rated"):
        request = FeedbackRequest(kind=kind, actor_id="i-7")  # type: ignore[arg-type]
        assert authorise(CENTRE, "C1", request, _dispatched()) == request
    for kind in ("accepted", "handled", "returned"):
        request = FeedbackRequest(kind=kind, actor_id="i-7")  # type: ignore[arg-type]
        assert _refused(authorise(CENTRE, "C1", request, _dispatched())).field == "type"
    as_department = FeedbackRequest(kind="verified", actor_id="i-7", actor_role="department")
    assert _refused(authorise(CENTRE, "C1", as_department, _dispatched())).field == "actor_role"
    channel = Principal("channel", "citizen_app")
    rated = FeedbackRequest(kind="rated", actor_id="x", rating="satisfied")
    assert (
        "channel key cannot post"
        in _refused(authorise(channel, "C1", rated, _dispatched())).message
    )
