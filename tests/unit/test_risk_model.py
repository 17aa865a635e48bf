"""The risk model as data: scored by the gateway exactly as scikit-learn scores it, explained by its
features, refused when malformed; features the same however a buyer spells a contact."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from domain.money import Money
from domain.risk import Decision, Facts, Opinion, Rule, RuleKind, evaluate
from domain.risk_features import FEATURES, features, model_counters
from domain.risk_model import Model, ModelError, score
from domain.risk_parameters import check_parameters
from services.risk.training import Examples, train

ROOT = Path(__file__).resolve().parents[2]
AT = datetime(2026, 6, 1, 12, tzinfo=UTC)


def synthetic(n: int, seed: int) -> Examples:
    """Fraud when many new accounts share a device, or small amounts come fast; some noise."""
    r = random.Random(seed)
    rows, labels = [], []
    for _ in range(n):
        row = [r.uniform(0, 300), r.choice((1, 1, 2)), 1, *(r.randrange(0, 8) for _ in range(9)), r.uniform(-1, 30),
               r.choice((0, 1)), r.choice((0, 1)), r.random() < 0.05, r.randrange(24), r.choice((0, 1)), r.randrange(3)]
        fraud = (row[8] > 4 and row[12] < 1) or (row[0] < 10 and row[7] > 5) or r.random() < 0.02
        rows.append([float(v) for v in row])
        labels.append(int(fraud))
    return Examples(rows, labels, ("h5", "mini", "web"))


def test_the_gateways_scorer_gives_scikit_learns_probabilities() -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    data = synthetic(1500, seed=1)
    model = train(data, trees=30, seed=4)
    reference = GradientBoostingClassifier(
        n_estimators=30, max_depth=3, learning_rate=0.1, subsample=0.8, random_state=4
    ).fit(data.rows, data.labels)
    probe = synthetic(200, seed=2).rows

    expected = reference.predict_proba(probe)[:, 1]
    ours = [score(model, row).probability for row in probe]

    assert max(abs(a - b) for a, b in zip(ours, expected, strict=True)) < 1e-9


def test_the_contributions_add_up_to_the_score_and_name_what_moved_it() -> None:
    import math

    model = train(synthetic(1500, seed=1), trees=30, seed=4)
    row = synthetic(1, seed=9).rows[0]
    row[FEATURES.index("device_new_accounts_1d")], row[FEATURES.index("account_age_days")] = 7.0, -1.0

    result = score(model, row)
    total = model.base + sum(t.value[0] * model.rate for t in model.trees) + sum(e for _, e in result.contributions)

    assert abs(1 / (1 + math.exp(-total)) - result.probability) < 1e-12
    assert result.top(1)[0][0] in ("device_new_accounts_1d", "account_age_days")
    assert result.probability > 0.5


def test_a_malformed_model_is_refused_before_it_scores() -> None:
    record = train(synthetic(600, seed=1), trees=5, seed=1).as_record()
    backwards = json.loads(json.dumps(record))
    backwards["trees"][0]["left"][1] = 0  # a cycle: the walk would never end
    outside = json.loads(json.dumps(record))
    outside["trees"][0]["feature"][0] = len(FEATURES) + 3
    other_features = dict(record, features=list(FEATURES[:-1]))
    ragged = json.loads(json.dumps(record))
    ragged["trees"][0]["value"].pop()

    for bad in (backwards, outside, other_features, ragged, {"version": "x"}, dict(record, base="lots")):
        with pytest.raises(ModelError):
            Model.from_record(bad)
    assert Model.from_record(record).as_record() == record


def facts(**kw: object) -> Facts:
    given: dict = {"channel": "web", "at": AT, "amount": Money.of("30.00"), "quantities": {1: 1}}
    return Facts(**{**given, **kw})  # type: ignore[arg-type]


def test_a_buyer_has_one_set_of_counters_however_the_contacts_are_spelled() -> None:
    plain = facts(phone="13800138000", device_id="dev-1", client_ip="1.2.3.4", account="13800138000")
    spelled = facts(phone="+86 138-0013-8000", device_id="DEV-1", client_ip="1.2.3.4", account="13800138000")

    assert [h.key for h in model_counters(plain)] == [h.key for h in model_counters(spelled)]
    assert features(plain, {}, ("web",)) == features(spelled, {}, ("web",))


def test_features_read_the_counts_and_the_attempt() -> None:
    attempt = facts(device_id="d", client_ip="9.9.9.9", account="a@x.cn", coupon="WELCOME",
                    phone="17012345678", account_age=timedelta(days=3), at=datetime(2026, 6, 1, 17, tzinfo=UTC))
    counts = {hit.key: 5 for hit in model_counters(attempt)}

    values = dict(zip(FEATURES, features(attempt, counts, ("mini", "web")), strict=True))

    assert values["device_new_accounts_1d"] == 5 and values["device_coupons_1d"] == 5
    assert values["virtual_segment"] == 1 and values["coupon"] == 1 and values["account_age_days"] == 3
    assert values["hour"] == 1  # 01:00 in Beijing
    assert values["channel"] == 1 and values["amount"] == 30


def test_a_shadow_rule_never_decides_and_an_enforced_one_gives_its_reason() -> None:
    def rule(shadow: bool) -> Rule:
        return Rule(1, "model", RuleKind.MODEL, check_parameters(RuleKind.MODEL, {"threshold": "0.8", "shadow": shadow}),
                    Decision.REJECT, 100)

    sure = facts(model=Opinion("v1", 0.93, "amount=30 (+1.00)"))
    unsure = facts(model=Opinion("v1", 0.2, ""))

    assert evaluate([rule(True)], sure, {}).decision is Decision.PASS
    enforced = evaluate([rule(False)], sure, {})
    assert enforced.decision is Decision.REJECT
    assert (enforced.reasons[0].observed, enforced.reasons[0].threshold) == ("score 0.930 (amount=30 (+1.00))", "score 0.800")
    assert evaluate([rule(False)], unsure, {}).decision is Decision.PASS
    assert evaluate([rule(False)], facts(), {}).decision is Decision.PASS


def test_the_generated_set_is_the_seeds_alone(tmp_path: Path) -> None:
    outputs = []
    for name in ("a", "b"):
        path = tmp_path / f"{name}.jsonl"
        subprocess.run([sys.executable, str(ROOT / "bench" / "fraud_data.py"), "--out", str(path), "--buyers", "300",
                        "--days", "12", "--seed", "5"], check=True, capture_output=True)
        outputs.append(path.read_bytes())
    kinds = {json.loads(line)["kind"] for line in outputs[0].splitlines()}

    assert outputs[0] == outputs[1]
    assert kinds == {"honest", "bot_farm", "device_farm", "coupon_harvest", "card_testing", "scalping"}
