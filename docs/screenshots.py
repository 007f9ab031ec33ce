"""Screenshots of the explanation card, in English and French, of one customer per reason family.

Run:  .venv/bin/python docs/screenshots.py            (writes docs/card_<family>_<lang>.png)

A simulated base (seed 7) is trained on with the library's code, into a throw-away MLflow
store; for each reason family the highest-risk customer whose strongest reason is of that
family is explained through the scoring core and rendered with the card template
(the one ``churnlens explain --html`` and the web app use), then photographed in headless
Chromium (Debian's ``chromium``, driven by Playwright).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
#: candidates explained per family search (highest risk first)
CANDIDATES = 600


def main() -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from playwright.sync_api import sync_playwright

    from churnlens.cli.explain_cmd import one_customer
    from churnlens.config import LightGBMParams, TrainConfig
    from churnlens.features import build_snapshot
    from churnlens.i18n import Words
    from churnlens.serving import load_model
    from churnlens.serving.batch import default_cutoff
    from churnlens.serving.card import explain_customer, write_card
    from churnlens.serving.core import customer_values, feature_config_of
    from churnlens.serving.timeline import customer_timeline
    from churnlens.simulate import simulate
    from churnlens.training import train_model

    work = Path(tempfile.mkdtemp(prefix="churnlens-screens-"))
    tables = simulate(n_customers=4000, months=24, seed=7).tables
    uri = f"sqlite:///{work / 'mlflow.db'}"
    result = train_model(tables, tracking_uri=uri, train_config=TrainConfig(lgbm=LightGBMParams(max_rounds=200)))
    loaded = load_model(result.model_uri, tracking_uri=uri)
    model = loaded.model
    cutoff = default_cutoff(tables)
    snapshot = build_snapshot(tables, cutoff, feature_config_of(model))
    values, _ = customer_values(tables, snapshot, cutoff, None)
    value_of = dict(zip(snapshot.index, values, strict=True))
    risk = model.predict_proba(snapshot)
    order = snapshot.index[np.argsort(-risk, kind="stable")][:CANDIDATES]

    chosen: dict[str, str] = {}
    for customer in order:
        explanation = explain_customer(model, snapshot.loc[[customer]], str(customer), cutoff=str(cutoff.date()),
                                       customer_value=float(value_of[customer]))
        family = explanation.top_family
        if family is not None and family not in chosen:
            chosen[family] = str(customer)
    print("customers:", chosen)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 960, "height": 900}, device_scale_factor=1)
        for family, customer in chosen.items():
            for lang in ("en", "fr"):
                fmt = Words(lang)
                explanation = explain_customer(
                    model, snapshot.loc[[customer]], customer, cutoff=str(cutoff.date()), lang=lang,
                    customer_value=float(value_of[customer]), model_name=loaded.name, model_version=loaded.version,
                )  # fmt: skip
                html = write_card(explanation, work / f"{family}_{lang}.html",
                                  timeline=customer_timeline(one_customer(tables, customer), cutoff, fmt))
                page.goto(html.as_uri())
                out = HERE / f"card_{family}_{lang}.png"
                page.screenshot(path=out, full_page=True)
                print(f"wrote {out.relative_to(HERE.parent)} ({out.stat().st_size // 1024} KB)")
        browser.close()


if __name__ == "__main__":
    main()
