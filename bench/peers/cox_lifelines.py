"""Reference values for churnguard's Cox model (tests/it/survival.rs):
lifelines' CoxPHFitter (Efron ties, no penalizer) on the Telco data (tenure
as the duration, Churn as the event) and on the pysurvival SaaS data
(months_active, churned), with the same inputs, encoding and held-out rows
as the Rust test. Writes tests/data/cox_reference.json.

    python bench/peers/cox_lifelines.py ../shared/data tests/data/cox_reference.json

The design (the Rust test builds the same): rows with a zero duration are
dropped (no time at risk); numeric inputs as they are; each categorical input
one-hot with its lexicographically first level dropped; the held-out rows
are those whose position in the file (0-based, header excluded) is a
multiple of 4; the model is fitted on the others, and concordance (lifelines'
concordance_index of -partial hazard) is measured on the held-out rows."""

import json
import sys

import lifelines
import pandas as pd
from lifelines import CoxPHFitter
from lifelines.utils import concordance_index

SETS = {
    "telco": {
        "file": "telco/telco_churn.csv",
        "duration": "tenure",
        "event": ("Churn", "Yes"),
        "numeric": ["SeniorCitizen", "MonthlyCharges"],
        "categorical": ["Partner", "Dependents", "PaperlessBilling", "Contract",
                        "InternetService", "PaymentMethod"],
    },
    "saas_survival": {
        "file": "saas_survival/saas_churn_survival.csv",
        "duration": "months_active",
        "event": ("churned", "1.0"),
        "numeric": ["csat_score", "articles_viewed", "smartphone_notifications_viewed",
                    "marketing_emails_clicked", "social_media_ads_viewed",
                    "minutes_customer_support"],
        "categorical": ["product_data_storage", "product_travel_expense", "product_payroll",
                        "product_accounting", "company_size"],
    },
}


def design(raw, spec):
    df = pd.DataFrame({"position": range(len(raw))})
    df["duration"] = pd.to_numeric(raw[spec["duration"]])
    col, yes = spec["event"]
    df["event"] = (raw[col].astype(str) == yes).astype(int)
    names = []
    for c in spec["numeric"]:
        df[c] = pd.to_numeric(raw[c])
        names.append(c)
    for c in spec["categorical"]:
        levels = sorted(raw[c].astype(str).unique())
        for level in levels[1:]:
            name = f"{c}={level}"
            df[name] = (raw[c].astype(str) == level).astype(float)
            names.append(name)
    df = df[df["duration"] > 0]
    return df, names


def main():
    root, out = sys.argv[1], sys.argv[2]
    result = {"lifelines": lifelines.__version__, "sets": {}}
    for key, spec in SETS.items():
        raw = pd.read_csv(f"{root}/{spec['file']}", dtype=str, keep_default_na=False)
        df, names = design(raw, spec)
        held = df["position"] % 4 == 0
        train, test = df[~held], df[held]
        cph = CoxPHFitter(penalizer=0.0)
        cph.fit(train[names + ["duration", "event"]], duration_col="duration", event_col="event")
        risk = cph.predict_partial_hazard(test[names])
        c = concordance_index(test["duration"], -risk, test["event"])
        result["sets"][key] = {
            "names": names,
            "coefficients": [float(cph.params_[n]) for n in names],
            "standard_errors": [float(cph.standard_errors_[n]) for n in names],
            "log_likelihood": float(cph.log_likelihood_),
            "train_rows": int(len(train)),
            "test_rows": int(len(test)),
            "test_concordance": float(c),
        }
        print(key, "C =", round(c, 4), "rows", len(train), len(test))
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
