"""Serving pieces on hand-made data: targeting, reason selection and wording, rejects, drift, writes, card."""

from __future__ import annotations

import os
from pathlib import Path

import lightgbm as lgb
import markupsafe
import numpy as np
import pandas as pd
import pytest

from churnlens.config import ScoringSettings
from churnlens.data.tables import Tables
from churnlens.features import CATALOG_VERSION, render_reason, spec_for
from churnlens.i18n import Words
from churnlens.model import Calibrator, ChurnModel, FeatureMismatchError, model_matrix
from churnlens.monitoring import reference_statistics
from churnlens.serving import batch, output
from churnlens.serving.batch import check_bands, customer_values, risk_bands
from churnlens.serving.card import explain_customer, render_card, write_card
from churnlens.serving.core import explain_rows
from churnlens.serving.drift import drift_report
from churnlens.serving.explain import (
    concept_map,
    probability_effects,
    reasons_wide,
    reference_medians,
    select_reasons,
    shap_contributions,
    top_reasons,
)
from churnlens.serving.loader import IncompatibleModelError, ModelNotFoundError, check_compatible, load_model
from churnlens.serving.rejects import find_rejects
from churnlens.serving.targeting import (
    Budget,
    Economics,
    HighRisk,
    Threshold,
    TopN,
    apply_rule,
    select_budget,
    select_threshold,
    select_top_n,
)

FEATURES = [
    "days_since_last_purchase",
    "purchase_gap_mean_days",
    "purchase_count_90d",
    "spend_365d",
    "attr_country",
]


def synthetic_snapshot(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    recency = rng.gamma(2.0, 30.0, n).round()
    gap = rng.gamma(3.0, 10.0, n).round()
    gap[rng.random(n) < 0.1] = np.nan  # one-purchase customers: gap unknown
    count = rng.poisson(3, n).astype(float)
    spend = (rng.gamma(2.0, 150.0, n)).round(2)
    country = pd.Categorical(rng.choice(["FR", "DE"], n), categories=["DE", "FR"])
    logit = -2.0 + 0.03 * recency - 0.4 * count + 0.8 * (country == "FR") - 0.002 * spend
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    index = pd.Index([f"c{i:04d}" for i in range(n)], dtype="string", name="customer_id")
    frame = pd.DataFrame(
        {
            "days_since_last_purchase": recency,
            "purchase_gap_mean_days": gap,
            "purchase_count_90d": count,
            "spend_365d": spend,
            "attr_country": country,
        },
        index=index,
    )
    return frame, y


@pytest.fixture(scope="module")
def model_and_data() -> tuple[ChurnModel, pd.DataFrame]:
    train, y = synthetic_snapshot(3000, seed=1)
    params = {
        "objective": "binary",
        "num_leaves": 7,
        "learning_rate": 0.1,
        "min_data_in_leaf": 20,
        "seed": 3,
        "deterministic": True,
        "verbosity": -1,
        "num_threads": 2,
    }
    booster = lgb.train(params, lgb.Dataset(train, label=y), num_boost_round=40)
    reference_frame = train.reset_index(drop=True).copy()
    metadata = {
        "features": FEATURES,
        "categorical_levels": {"attr_country": ["DE", "FR"]},
        "model_name": "unit-test",
        "catalog_version": CATALOG_VERSION,
        "tables": ["customers", "purchases"],
        "horizon_days": 90,
        "feature_config": {"windows": [30, 90, 365], "active_window_days": 365, "downgrade_window_days": 90},
        "campaign": {"value_per_saved_customer": 100.0, "save_rate": 0.2, "cost_per_contact": 5.0},
    }
    model = ChurnModel.from_parts(booster, Calibrator("platt", a=1.0, b=0.1), metadata)
    reference_frame["churn_probability"] = model.predict_proba(train)
    model.metadata = model.metadata.replace(reference=reference_statistics(reference_frame))
    scored, _ = synthetic_snapshot(500, seed=2)
    return model, scored


# --------------------------------------------------------------------------- targeting


def test_top_n_and_threshold_by_hand():
    p = pd.Series([0.2, 0.9, 0.5, 0.9, 0.1], index=list("abcde"))
    top = select_top_n(p, 3, cost_per_contact=2, save_rate=0.5, value=100)
    assert top.mask.tolist() == [False, True, True, True, False]  # tie 0.9/0.9 kept in input order
    assert list(top.ids) == ["b", "c", "d"]
    # saved = (0.9 + 0.5 + 0.9) * 0.5 * 100 = 115; cost = 3 * 2 = 6
    assert top.summary.contacted == 3
    assert top.summary.expected_cost == pytest.approx(6.0)
    assert top.summary.expected_saved_value == pytest.approx(115.0)
    assert top.summary.expected_net == pytest.approx(109.0)
    assert select_top_n(p, 10).mask.all()
    assert select_threshold(p, 0.5).mask.tolist() == [False, True, True, True, False]


def test_budget_beats_top_n_by_probability_on_a_hand_made_case():
    # a: likely to churn but worth little; b, c: less likely but valuable.
    p = np.array([0.9, 0.5, 0.4, 0.05])
    value = np.array([20.0, 400.0, 300.0, 1000.0])
    # expected net = p * 0.5 * v - 10: a -1, b 90, c 50, d 15
    budget = select_budget(p, 20, cost_per_contact=10, save_rate=0.5, value=value)
    assert budget.mask.tolist() == [False, True, True, False]
    assert budget.summary.expected_net == pytest.approx(140.0)
    assert budget.summary.expected_cost == pytest.approx(20.0)
    naive = select_top_n(p, 2, cost_per_contact=10, save_rate=0.5, value=value)
    assert naive.mask.tolist() == [True, True, False, False]
    assert naive.summary.expected_net == pytest.approx(89.0)
    assert budget.summary.expected_net > naive.summary.expected_net
    # a bigger budget still skips the customer with a negative expected net
    assert select_budget(p, 1000, cost_per_contact=10, save_rate=0.5, value=value).mask.tolist() == [
        False,
        True,
        True,
        True,
    ]
    # the cap is floor(budget / cost)
    assert select_budget(p, 29.99, cost_per_contact=10, save_rate=0.5, value=value).summary.contacted == 2


def test_rules_and_economics():
    p = pd.Series([0.6, 0.3, 0.1])
    econ = Economics(cost_per_contact=1.0, save_rate=0.5, value_per_save=None)
    assert apply_rule(HighRisk(0.5), p, np.array([10, 10, 10.0]), econ).mask.tolist() == [True, False, False]
    assert apply_rule(TopN(2), p, np.zeros(3), econ).summary.contacted == 2
    assert apply_rule(Threshold(0.2), p, np.zeros(3), econ).summary.contacted == 2
    # constant value per save overrides customer values: nets 0.6*0.5*10-1=2, 0.5, -0.5
    fixed = Economics(cost_per_contact=1.0, save_rate=0.5, value_per_save=10.0)
    assert apply_rule(Budget(100), p, np.array([0, 0, 1e6]), fixed).mask.tolist() == [True, True, False]
    assert Economics.from_metadata(
        {"campaign": {"cost_per_contact": 3, "save_rate": 0.4}}, save_rate=None
    ) == Economics(3.0, 0.4, None)


def test_targeting_errors():
    with pytest.raises(ValueError, match="top N must be a non-negative whole number, got -1"):
        select_top_n([0.1], -1)
    with pytest.raises(ValueError, match=r"probability threshold must lie in \[0, 1\], got 1.5"):
        select_threshold([0.1], 1.5)
    with pytest.raises(ValueError, match="budget must be non-negative, got -5"):
        select_budget([0.1], -5, cost_per_contact=1, save_rate=0.1, value=1)
    with pytest.raises(ValueError, match=r"save rate must lie in \[0, 1\], got 2"):
        select_budget([0.1], 5, cost_per_contact=1, save_rate=2, value=1)
    with pytest.raises(ValueError, match="scores must be probabilities"):
        select_top_n([0.1, np.nan], 1)
    with pytest.raises(ValueError, match=r"value must be a number or one value per customer \(2\)"):
        select_budget([0.1, 0.2], 5, cost_per_contact=1, save_rate=0.1, value=[1, 2, 3])
    with pytest.raises(ValueError, match="value per saved customer must be non-negative"):
        Economics(value_per_save=-1)


# --------------------------------------------------------------------------- reasons


def test_select_reasons_by_hand():
    contrib = pd.DataFrame(
        {
            "a": [0.5, -0.1, 0.0],
            "b": [0.2, -0.3, 0.0],
            "c": [0.9, 0.4, 0.0],
            "d": [-2.0, 0.1, 0.0],
            "base_value": [-1.0, -1.0, -1.0],
        },
        index=pd.Index(["x", "y", "z"], name="customer_id"),
    )
    long = select_reasons(contrib, n=3)
    assert long["customer_id"].tolist() == ["x", "x", "x", "y", "y"]
    assert long["rank"].tolist() == [1, 2, 3, 1, 2]
    assert long["feature"].tolist() == ["c", "a", "b", "c", "d"]
    assert long["contribution"].tolist() == [0.9, 0.5, 0.2, 0.4, 0.1]
    either = select_reasons(contrib, n=2, only_risk_up=False)
    assert either["feature"].tolist()[:2] == ["d", "c"]  # |-2.0| first
    assert select_reasons(contrib, n=10)["rank"].max() == 3  # at most the positive ones
    with pytest.raises(ValueError, match="the number of reasons must be a whole number >= 1, got 0"):
        select_reasons(contrib, n=0)


@pytest.mark.filterwarnings(
    "ignore:.*changed to a list of ndarray:UserWarning", "ignore::PendingDeprecationWarning"
)
def test_contributions_sum_to_raw_margin_and_match_shap(model_and_data):
    model, snap = model_and_data
    contrib = shap_contributions(model, snap, chunk_size=123)
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy(), model.raw_margin(snap), atol=1e-9)
    import shap

    explainer = shap.TreeExplainer(model.booster)
    values = np.asarray(explainer.shap_values(model.prepare(snap.iloc[:100])))
    np.testing.assert_allclose(contrib.iloc[:100, :-1].to_numpy(), values, atol=1e-6)


def test_reasons_are_concepts_on_the_risky_side_with_additive_effects(model_and_data):
    model, snap = model_and_data
    reference = reference_medians(model)
    assert reference["days_since_last_purchase"] == pytest.approx(
        model.metadata["reference"]["days_since_last_purchase"]["median"]
    )
    contrib = shap_contributions(model, snap)
    concepts = concept_map(model)
    for lang in ("en", "fr"):
        long = top_reasons(model, snap, n=3, lang=lang)
        assert long.attrs["hidden"] > 0  # some concepts raise risk from the safe side: not reasons
        assert (long["contribution"] > 0).all() and (long["effect"] >= 0).all()
        assert long["text"].notna().all() and (long["text"].str.len() > 0).all()
        assert not long.duplicated(["customer_id", "concept"]).any()  # one reason per concept
        assert (long.groupby("customer_id")["effect"].diff().dropna() <= 1e-12).all()  # strongest first
        rows = snap.index.get_indexer(long["customer_id"])
        # a reason's contribution is the sum of its concept's exact SHAP values
        per_concept = contrib[model.features].to_numpy() @ concepts.member
        picked = per_concept[rows, [concepts.concepts.index(c) for c in long["concept"]]]
        np.testing.assert_allclose(long["contribution"].to_numpy(), picked)
        # the sentence is about a feature of the concept standing on its risky side
        for (_, reason), row in zip(long.iterrows(), rows, strict=True):
            spec = spec_for(reason["feature"])
            assert spec.concept == reason["concept"]
            value, ref = snap.iloc[row][reason["feature"]], reference.get(reason["feature"])
            if spec.risk_direction == "higher":
                assert value > ref
            elif spec.risk_direction == "lower":
                assert value < ref
            assert reason["text"] == render_reason(reason["feature"], snap.iloc[row].to_dict(), lang, reference)


def test_effects_add_up_to_the_probability_minus_the_average_customers(model_and_data):
    model, snap = model_and_data
    contrib = shap_contributions(model, snap)
    parts, base = contrib[model.features].to_numpy(), contrib["base_value"].to_numpy()
    effects = probability_effects(parts, base, model.calibrator.transform)
    np.testing.assert_allclose(
        effects.sum(axis=1), model.predict_proba(snap) - model.calibrator.transform(base), atol=1e-12
    )
    # by hand: base 0, parts (+1, -2): the larger one first
    link = lambda m: 1 / (1 + np.exp(-m))  # noqa: E731
    by_hand = probability_effects(np.array([[1.0, -2.0]]), np.array([0.0]), link)
    np.testing.assert_allclose(by_hand, [[link(-1.0) - link(-2.0), link(-2.0) - link(0.0)]])


def test_top_reasons_values_and_wide(model_and_data):
    model, snap = model_and_data
    long = top_reasons(model, snap.iloc[:50], n=2, lang="en")
    country = long[long["feature"] == "attr_country"]
    assert country["value"].isna().all()
    assert set(country["value_label"]) <= {"FR", "DE"}
    recency = long[long["feature"] == "days_since_last_purchase"]
    assert len(recency)
    assert (recency["value_label"] == recency["value"].map(Words("en").ago)).all()
    wide = reasons_wide(long, 2)
    assert list(wide.columns) == ["reason_1", "reason_2"]
    first = long.iloc[0]
    assert wide.loc[first["customer_id"], f"reason_{first['rank']}"] == first["text"]
    with pytest.raises(ValueError, match="language must be one of en, fr, got 'de'"):
        top_reasons(model, snap, lang="de")


def test_model_matrix_predicts_exactly_like_the_frame_lightgbm_converts(model_and_data):
    model, snap = model_and_data
    odd = snap.iloc[:40].copy()
    odd["attr_country"] = odd["attr_country"].cat.add_categories(["IT"])
    odd.iloc[:5, odd.columns.get_loc("attr_country")] = "IT"  # a level never seen in training
    odd.iloc[5:8, odd.columns.get_loc("attr_country")] = None
    odd.iloc[8:12, odd.columns.get_loc("purchase_count_90d")] = np.nan
    X = model.prepare(odd)
    assert X["attr_country"].isna().sum() == 8  # unseen and missing levels both become missing
    matrix = model_matrix(X)
    assert np.isnan(matrix[:8, FEATURES.index("attr_country")]).all()
    # LightGBM's own pandas conversion and the matrix give bit-identical margins and SHAP values
    assert np.array_equal(model.margin_of_prepared(X), model.booster.predict(X, raw_score=True))
    assert np.array_equal(model.contributions_of_prepared(X), model.booster.predict(X, pred_contrib=True))
    big = pd.concat([snap] * 2).set_axis(pd.RangeIndex(2 * len(snap)))  # above the one-thread size
    assert np.array_equal(model.raw_margin(big), model.booster.predict(model.prepare(big), raw_score=True))


def test_model_levels_must_match_the_booster(model_and_data):
    model, snap = model_and_data
    wrong = ChurnModel.from_parts(
        model.booster, model.calibrator, {**model.metadata, "categorical_levels": {"attr_country": ["FR", "DE"]}}
    )
    with pytest.raises(FeatureMismatchError, match="categorical levels .* differ from its booster"):
        wrong.raw_margin(snap)


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_one_customer_at_a_time_or_all_together_gives_the_same_reasons(model_and_data, lang):
    model, snap = model_and_data
    many = top_reasons(model, snap.iloc[:60], n=3, lang=lang)
    one_by_one = pd.concat(
        [top_reasons(model, snap.iloc[[i]], n=3, lang=lang) for i in range(60)], ignore_index=True
    )
    pd.testing.assert_frame_equal(one_by_one, many)


# --------------------------------------------------------------------------- bands, values, drift


def test_risk_bands_and_errors():
    assert risk_bands(np.array([0.7, 0.5, 0.3, 0.2, 0.1])).tolist() == [
        "high",
        "high",
        "medium",
        "medium",
        "low",
    ]
    assert risk_bands(np.array([0.7, 0.3]), (0.8, 0.3)).tolist() == ["medium", "medium"]
    with pytest.raises(ValueError, match="risk band bounds must satisfy 0 <= medium < high <= 1"):
        check_bands((0.2, 0.5))


def test_customer_values_sources_and_errors(model_and_data):
    _, snap = model_and_data
    ids = snap.index[:3]
    customers = pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "clv": [10.0, 20.0, 30.0],
            "segment": pd.array(["a", "b", "c"], dtype="string"),
        }
    )
    tables = Tables(
        purchases=pd.DataFrame(
            {
                "customer_id": pd.array([], dtype="string"),
                "timestamp": pd.Series([], dtype="datetime64[us]"),
                "amount": pd.Series([], dtype="float64"),
            }
        ),
        customers=customers,
    )
    cutoff = pd.Timestamp("2024-01-01")
    values, source = customer_values(tables, snap.iloc[:3], cutoff, None)
    assert source == "spend_365d" and values.tolist() == snap["spend_365d"].iloc[:3].tolist()
    values, source = customer_values(tables, snap.iloc[:3], cutoff, "clv")
    assert source == "customers.clv" and values.tolist() == [10.0, 20.0, 30.0]
    with pytest.raises(
        ValueError, match=r"value column 'nope' is neither .* \(numeric customers columns: \['clv'\]\)"
    ):
        customer_values(tables, snap.iloc[:3], cutoff, "nope")
    with pytest.raises(ValueError, match="value column 'segment' of the customers table is not numeric"):
        customer_values(tables, snap.iloc[:3], cutoff, "segment")


def test_trailing_spend_by_hand():
    purchases = pd.DataFrame(
        {
            "customer_id": pd.array(["a", "a", "a", "b"], dtype="string"),
            "timestamp": pd.to_datetime(["2022-12-31", "2023-06-01", "2024-01-01", "2023-02-01"]).astype(
                "datetime64[us]"
            ),
            "amount": [100.0, 40.0, 7.0, -5.0],
        }
    )
    got = batch.trailing_spend(
        Tables(purchases=purchases), pd.Timestamp("2024-01-01"), pd.Index(["a", "b", "z"])
    )
    assert got.tolist() == [40.0, -5.0, 0.0]  # 2022-12-31 is outside, the cutoff day itself excluded


def test_drift_report_flags_shifted_features(model_and_data):
    model, snap = model_and_data
    shifted = snap.copy()
    shifted["days_since_last_purchase"] = shifted["days_since_last_purchase"] + 200
    proba = pd.Series(model.predict_proba(shifted))
    table = drift_report(model, shifted, proba, threshold=0.25)
    assert list(table.columns) == ["feature", "psi", "status", "flagged"]
    assert set(table["feature"]) == set(FEATURES) | {"churn_probability"}
    row = table.set_index("feature").loc["days_since_last_purchase"]
    assert row["flagged"] and row["status"] == "major"
    assert not table.set_index("feature").loc["attr_country", "flagged"]
    with pytest.raises(ValueError, match="PSI threshold must be non-negative"):
        drift_report(model, shifted, threshold=-1)


# --------------------------------------------------------------------------- rejects


def _ts(*days: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(days)), dtype="datetime64[us]")


def test_rejects_name_the_reason_for_every_unscored_customer():
    s = lambda *v: pd.array(list(v), dtype="string")  # noqa: E731
    purchases = pd.DataFrame(
        {
            "customer_id": s("ok", "old", "late", "canc", "refund"),
            "timestamp": _ts("2024-05-01", "2022-01-01", "2024-06-10", "2024-05-01", "2024-05-01"),
            "amount": [10.0, 10.0, 10.0, 10.0, -3.0],
        }
    )
    program = pd.DataFrame(
        {"customer_id": s("prog"), "timestamp": _ts("2024-03-01"), "event_type": s("login")}
    )
    cancellations = pd.DataFrame({"customer_id": s("canc"), "timestamp": _ts("2024-05-20")})
    customers = pd.DataFrame({"customer_id": s("canc", "ghost", "late", "ok", "old", "prog", "refund")})
    tables = Tables(
        purchases=purchases, customers=customers, program_events=program, cancellations=cancellations
    )
    rejects = find_rejects(tables, "2024-06-01", pd.Index(["ok"]), active_window_days=365)
    assert rejects["customer_id"].tolist() == ["canc", "ghost", "late", "old", "prog", "refund"]
    assert rejects["reason"].tolist() == [
        "cancelled before the cutoff",
        "no event in any table (listed in customers only)",
        "first event after the cutoff",
        "no purchase in the 365 days before the cutoff",
        "no purchase before the cutoff",
        "no purchase before the cutoff",  # a refund is not a purchase
    ]
    assert rejects.set_index("customer_id").loc["old", "last_purchase_at"] == pd.Timestamp("2022-01-01")
    assert rejects.set_index("customer_id").loc["prog", "first_event_at"] == pd.Timestamp("2024-03-01")
    assert find_rejects(tables, "2024-06-01", tables.customer_ids()).empty
    # sorted tables (as validated ones are) take the fast path and give the same answer
    ordered = tables.replace(
        **{
            name: frame.sort_values([c for c in ("customer_id", "timestamp") if c in frame]).reset_index(
                drop=True
            )
            for name, frame in tables.present().items()
        }
    )
    from churnlens.serving.rejects import _Blocks

    assert _Blocks(ordered.purchases).starts is not None and _Blocks(tables.purchases).starts is None
    pd.testing.assert_frame_equal(find_rejects(ordered, "2024-06-01", pd.Index(["ok"])), rejects)


@pytest.mark.parametrize("cutoff", ["2023-09-01", "2024-03-15", None])
def test_rejects_of_sorted_tables_read_by_block_equal_the_grouped_answer(cutoff):
    """find_rejects reads only the rejected customers' blocks of validated (sorted) tables; the answer
    is rejects_by_index's, exactly, on a simulated base (every reason, both languages)."""
    from churnlens.features import build_snapshot, observed_until
    from churnlens.serving.rejects import rejects_by_index
    from churnlens.simulate import simulate

    tables = simulate(n_customers=1500, months=15, seed=4).tables
    when = observed_until(tables) if cutoff is None else pd.Timestamp(cutoff)
    scored = build_snapshot(tables, when).index
    for lang, window in (("en", 365), ("fr", 120)):
        fast = find_rejects(tables, when, scored, active_window_days=window, lang=lang)
        pd.testing.assert_frame_equal(
            fast, rejects_by_index(tables, when, scored, active_window_days=window, lang=lang), check_exact=True
        )
        assert len(fast) and fast["reason_code"].nunique() >= 3


# --------------------------------------------------------------------------- writes


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "list.csv"
    output.write_table(pd.DataFrame({"a": [1, 2]}), target)
    before = target.read_bytes()

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        output.atomic_write(target, broken)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["list.csv"]  # no temp file left behind


def test_output_format_and_siblings(tmp_path):
    assert output.output_format("x.CSV") == "csv" and output.output_format("x.parquet") == "parquet"
    with pytest.raises(ValueError, match=r"output file x.xlsx must end in .csv or .parquet \(got '.xlsx'\)"):
        output.output_format("x.xlsx")
    paths = batch.output_paths(tmp_path / "campaign.parquet")
    assert paths["reasons"].name == "campaign.reasons.parquet"
    assert paths["rejects"].name == "campaign.rejects.parquet"
    assert paths["drift"].name == "campaign.drift.csv"


# --------------------------------------------------------------------------- compatibility and loading


def test_check_compatible_names_missing_features_and_tables(model_and_data):
    model, snap = model_and_data
    check_compatible(model, snap)
    tables = Tables(purchases=pd.DataFrame({"customer_id": pd.array([], dtype="string")}))
    with pytest.raises(
        IncompatibleModelError,
        match=r"needs 1 feature\(s\) the data does not have: \['attr_country'\]"
        r"; the model was trained with tables \['customers', 'purchases'\] but the data has no "
        r"customers table",
    ):
        check_compatible(model, snap.drop(columns="attr_country"), tables=tables)
    old = ChurnModel.from_parts(
        model.booster, model.calibrator, {**model.metadata, "catalog_version": "features-v0"}
    )
    with pytest.raises(
        IncompatibleModelError, match="trained with feature catalog features-v0 but this churnlens"
    ):
        check_compatible(old, snap)


def test_load_model_from_missing_path(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"model path .*nowhere does not exist"):
        load_model(str(tmp_path / "nowhere"), tracking_uri=f"sqlite:///{tmp_path / 'unused.db'}")
    with pytest.raises(ModelNotFoundError, match="is not an MLflow model directory"):
        load_model(str(tmp_path), tracking_uri=f"sqlite:///{tmp_path / 'unused.db'}")


# --------------------------------------------------------------------------- card


def test_card_is_self_contained_and_escaped(model_and_data, tmp_path):
    model, snap = model_and_data
    risky = snap.index[int(np.argmax(model.predict_proba(snap)))]
    weird = snap.loc[[risky]].rename(index={risky: "<script>alert(1)</script>"})
    expl = explain_customer(
        model,
        weird,
        "<script>alert(1)</script>",
        cutoff="2024-06-01",
        lang="fr",
        customer_value=1234.5,
        model_name="m&m",
        model_version="3",
    )
    assert expl.base_value + expl.contributions.sum() == pytest.approx(expl.margin)
    assert expl.probability == pytest.approx(float(model.predict_proba(weird)[0]))
    # effects in probability add up from the average customer's risk to this customer's
    assert expl.effects.sum() == pytest.approx(expl.probability - expl.typical_probability)
    page = render_card(expl)
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "m&amp;m v3" in page
    assert "Probabilité d&#39;attrition" in page
    assert "<svg" in page and "<title id=\"waterfall-title\">" in page and "<desc id=\"waterfall-desc\">" in page
    assert "data:image/png" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "Risque moyen des clients" in page and "Ce client" in page
    assert "log-odds" not in page and "1\u202f234,50\u00a0€" in page  # value in French, with the currency
    for text in expl.reasons["text"]:
        assert str(markupsafe.escape(text)) in page
    path = write_card(expl, tmp_path / "card.html")
    assert path.read_text(encoding="utf-8") == page
    with pytest.raises(KeyError, match="customer 'nobody' is not in the scored snapshot"):
        explain_customer(model, snap, "nobody", cutoff="2024-06-01")


def test_empty_inputs_give_empty_outputs(model_and_data):
    model, snap = model_and_data
    assert shap_contributions(model, snap.iloc[:0]).shape == (0, len(FEATURES) + 1)
    empty = top_reasons(model, snap.iloc[:0])
    assert empty.empty and list(empty.columns) == [
        "customer_id",
        "rank",
        "concept",
        "feature",
        "value",
        "value_label",
        "contribution",
        "effect",
        "text",
    ]
    assert list(reasons_wide(empty, 2).columns) == ["reason_1", "reason_2"]
    assert explain_rows(model, snap.iloc[:0], ScoringSettings(reasons=3, lang="en")).empty
