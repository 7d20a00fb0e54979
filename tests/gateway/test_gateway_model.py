"""Pure logic of the gateway: profiles, charge validation, behaviours, ledger."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import orjson
import pytest

from paychaos.contracts.errors import InvalidInput
from paychaos.stack.gateway.behaviours import BehaviourStore, InvalidBehaviour, parse_behaviour
from paychaos.stack.gateway.charges import InvalidRequest, parse_charge
from paychaos.stack.gateway.ledger import Charge, Ledger
from paychaos.stack.gateway.profiles import DEFAULT_PROFILES, Sampler, load_profiles, parse_profiles

# -- profiles -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "median_ms"), [("visa", 60), ("amex", 90), ("paypal", 180), ("crypto", 400)]
)
def test_latency_median_matches_profile(method: str, median_ms: float) -> None:
    sampler = Sampler(DEFAULT_PROFILES, seed=11)
    samples = [sampler.latency_s(method) for _ in range(4001)]
    assert statistics.median(samples) * 1000 == pytest.approx(median_ms, rel=0.12)


def test_crypto_tail_is_capped_and_scale_applies() -> None:
    sampler = Sampler(DEFAULT_PROFILES, seed=2)
    crypto = [sampler.latency_s("crypto") for _ in range(20000)]
    assert max(crypto) <= 10.0
    assert statistics.quantiles(crypto, n=100)[98] > 2.0  # long tail
    assert Sampler(DEFAULT_PROFILES, seed=2, latency_scale=0).latency_s("crypto") == 0.0
    one = Sampler(DEFAULT_PROFILES, seed=9).latency_s("visa")
    two = Sampler(DEFAULT_PROFILES, seed=9, latency_scale=2).latency_s("visa")
    assert two == pytest.approx(2 * one)


def test_decline_rate_and_override() -> None:
    sampler = Sampler(DEFAULT_PROFILES, seed=4)
    declines = sum(sampler.decline_code("crypto") is not None for _ in range(10000))
    assert 350 < declines < 650  # 5 %
    assert sampler.decline_code("visa", rate_override=1.0) in DEFAULT_PROFILES["visa"].decline_codes
    assert all(sampler.decline_code("visa", rate_override=0.0) is None for _ in range(100))


def test_profile_overrides_merge_and_validate(tmp_path: Path) -> None:
    merged = parse_profiles({"crypto": {"latency_median_ms": 900, "decline_rate": 0.1}})
    assert merged["crypto"].latency_median_ms == 900
    assert merged["crypto"].latency_sigma == DEFAULT_PROFILES["crypto"].latency_sigma
    assert merged["visa"] == DEFAULT_PROFILES["visa"]
    path = tmp_path / "p.yaml"
    path.write_text("paypal:\n  decline_codes: [instrument_declined]\n", encoding="utf-8")
    assert load_profiles(path)["paypal"].decline_codes == ("instrument_declined",)


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ({"cash": {}}, "unknown method 'cash'"),
        ({"visa": {"latency_sigma": -1}}, "visa.latency_sigma"),
        ({"visa": {"decline_rate": 2}}, "visa.decline_rate"),
        ({"visa": {"decline_rate": "high"}}, "visa.decline_rate"),
        ({"visa": {"speed": 1}}, "visa.speed"),
        ({"visa": {"decline_codes": []}}, "visa.decline_codes"),
        ({"visa": 3}, "visa"),
        ([1], "top level"),
    ],
)
def test_bad_profiles_name_the_key(raw: Any, where: str) -> None:
    with pytest.raises(InvalidInput, match=where.replace(".", r"\.")):
        parse_profiles(raw, source="p.yaml")


def test_unreadable_profiles_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        load_profiles(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("visa: [unclosed\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_profiles(bad)


# -- charge validation ------------------------------------------------------------


def body(**overrides: Any) -> bytes:
    data: dict[str, Any] = {
        "amount_cents": 500,
        "currency": "usd",
        "method": "visa",
        "source": {"card_token": "tok_1", "last4": "4242"},
        "payment_id": "p-1",
    }
    data.update(overrides)
    return orjson.dumps(data)


def test_parse_charge_normalises_and_fingerprints() -> None:
    request = parse_charge(body())
    assert request.currency == "USD"
    assert request.last4 == "4242"
    assert parse_charge(body()).fingerprint == request.fingerprint
    assert parse_charge(body(amount_cents=501)).fingerprint != request.fingerprint
    assert parse_charge(body(source={"card_token": "tok_2"})).fingerprint != request.fingerprint
    assert request.fingerprint.isalnum() and "tok_1" not in request.fingerprint


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"amount_cents": True}, "amount_cents"),
        ({"amount_cents": 10**12}, "amount_cents"),
        ({"currency": 3}, "currency"),
        ({"currency": "U1D"}, "currency"),
        ({"method": None}, "method"),
        ({"payment_id": ""}, "payment_id"),
        ({"description": 5}, "description"),
        ({"source": "tok"}, "source"),
        ({"source": {"card_token": "tok", "last4": "42"}}, "source.last4"),
        ({"source": {"card_token": "4111111111111111"}}, "source.card_token"),
        ({"source": {"card_token": "tok", "cvc": "123"}}, "source.cvc"),
        ({"method": "crypto", "source": {"wallet": "0x1", "network": "doge"}}, "source.network"),
        ({"method": "crypto", "source": {}}, "source.wallet"),
    ],
)
def test_parse_charge_names_the_bad_field(overrides: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_charge(body(**overrides))
    assert caught.value.param == param


def test_magic_declines() -> None:
    assert parse_charge(body(source={"card_token": "tok_decline"})).magic_decline == "do_not_honor"
    paypal = parse_charge(body(method="paypal", source={"payer_email": "A@Decline.test"}))
    assert paypal.magic_decline == "instrument_declined"
    assert parse_charge(body()).magic_decline is None


# -- behaviours -------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_behaviour_validation_names_the_field() -> None:
    with pytest.raises(InvalidBehaviour) as caught:
        parse_behaviour({"method": "visa", "ttl_s": 5, "added_latency_ms": -1})
    assert caught.value.param == "added_latency_ms"
    spec = parse_behaviour({"method": "*", "ttl_s": 5, "error_rate": 1})
    assert spec.error_rate == 1.0 and spec.error_status == 503


def test_effects_combine_latency_adds_rates_take_max() -> None:
    store = BehaviourStore(clock=FakeClock())
    store.add(parse_behaviour({"method": "*", "ttl_s": 60, "added_latency_ms": 100}))
    store.add(
        parse_behaviour(
            {"method": "paypal", "ttl_s": 60, "added_latency_ms": 50, "error_rate": 0.2}
        )
    )
    store.add(
        parse_behaviour({"method": "paypal", "ttl_s": 60, "error_rate": 0.7, "error_status": 500})
    )
    paypal = store.effect("paypal")
    assert paypal.added_latency_ms == 150
    assert paypal.error_rate == 0.7 and paypal.error_status == 500
    visa = store.effect("visa")
    assert visa.added_latency_ms == 100 and visa.error_rate == 0.0


def test_expired_behaviour_has_no_effect_without_a_sweep() -> None:
    clock = FakeClock()
    gauges: dict[tuple[str, str], float] = {}
    store = BehaviourStore(clock=clock, set_gauge=lambda f, t, v: gauges.__setitem__((f, t), v))
    store.add(parse_behaviour({"method": "visa", "ttl_s": 2, "timeout_rate": 1}))
    assert store.effect("visa").timeout_rate == 1.0
    assert gauges[("gateway_timeouts", "gateway/visa")] == 1.0
    clock.now += 2.5
    assert store.effect("visa").is_noop
    assert len(store) == 1  # not swept yet, but already without effect
    assert store.sweep() == 1
    assert gauges[("gateway_timeouts", "gateway/visa")] == 0.0
    assert store.active() == []


def test_remove_releases_hung_requests() -> None:
    store = BehaviourStore()
    active = store.add(parse_behaviour({"method": "visa", "ttl_s": 60, "timeout_rate": 1}))
    assert not active.ended.is_set()
    assert store.remove(active.id)
    assert active.ended.is_set()
    assert not store.remove(active.id)


# -- ledger -----------------------------------------------------------------------


def make_charge(
    n: int, *, key: str | None = None, payment: str | None = None, status: str = "succeeded"
) -> Charge:
    return Charge(
        id=f"ch_{n:04d}",
        status=status,
        amount_cents=100 * n,
        currency="USD",
        method="visa" if n % 2 else "paypal",
        payment_id=payment or f"p{n}",
        idempotency_key=key or f"k{n}",
        created_at=1.0 + n,
        fingerprint="f",
        decline_code=None if status == "succeeded" else "do_not_honor",
    )


def test_summary_counts_and_duplicates() -> None:
    ledger = Ledger()
    ledger.record(make_charge(1))
    ledger.record(make_charge(2, status="declined"))
    ledger.record(make_charge(3, payment="p2"))  # payment p2 declined first: not a duplicate
    assert ledger.summary()["duplicate_charges"] == 0
    ledger.record(make_charge(5, key="k1"))  # same key as a succeeded charge
    ledger.record(make_charge(7, payment="p1"))  # same payment as a succeeded charge
    summary = ledger.summary()
    assert summary["duplicate_charges"] == 2
    assert summary["duplicate_payment_ids"] == 1
    assert summary["duplicate_idempotency_keys"] == 1
    assert summary["by_method"]["visa"]["succeeded"] == {"count": 4, "amount_cents": 1600}
    assert summary["by_method"]["paypal"]["declined"] == {"count": 1, "amount_cents": 200}
    assert summary["total_charges"] == 5


def test_query_filters_and_cursor() -> None:
    ledger = Ledger()
    for n in range(1, 8):
        ledger.record(make_charge(n))
    page, more = ledger.query(method="visa", limit=2)
    assert [c.id for c in page] == ["ch_0001", "ch_0003"] and more
    page, more = ledger.query(method="visa", limit=2, after="ch_0003")
    assert [c.id for c in page] == ["ch_0005", "ch_0007"] and not more
    assert [c.id for c in ledger.query(payment_id="p4")[0]] == ["ch_0004"]
    with pytest.raises(KeyError):
        ledger.query(after="ch_nope")


def test_journal_reload_skips_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    ledger.record(make_charge(1))
    ledger.note_attempt("k1")
    ledger.note_attempt("k1")
    ledger.close()
    with path.open("ab") as handle:
        handle.write(b'{"event":"charge","id":"ch_torn"')  # killed mid-write
    reloaded = Ledger(path)
    assert len(reloaded) == 1
    assert reloaded.attempts("k1") == 3
    assert reloaded.first_for_key("k1") is not None
    reloaded.record(make_charge(2))
    reloaded.close()
    final = Ledger(path)
    try:
        assert len(final) == 2  # the torn line did not swallow the next one
    finally:
        final.close()
