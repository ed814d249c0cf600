"""The online-scoring peer: FastAPI + scikit-learn doing the work of
churnguard's POST /v1/score on the Telco model.

Typed request parsing (pydantic), the logistic pipeline (median imputation,
standardisation, one-hot, LogisticRegression C=1, Platt calibration), the
health index and band (churnguard's default settings), the top-3 reasons
(coefficient x input, summed per input), CLV and expected loss, and the
first matching intervention rule of churnguard's default policy.

    BENCH_TELCO_CSV=path uvicorn fastapi_app:app --workers 2 --app-dir bench/peers
"""

import os
from typing import List, Optional, Union

import numpy as np
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from common import health, preprocessor

NUMERIC = ["SeniorCitizen", "tenure", "MonthlyCharges", "TotalCharges"]
CATEGORICAL = [
    "gender", "Partner", "Dependents", "PhoneService", "MultipleLines", "InternetService",
    "OnlineSecurity", "OnlineBackup", "DeviceProtection", "TechSupport", "StreamingTV",
    "StreamingMovies", "Contract", "PaperlessBilling", "PaymentMethod",
]
HORIZON_DAYS = 90


def fit():
    df = pd.read_csv(os.environ["BENCH_TELCO_CSV"])
    df["TotalCharges"] = pd.to_numeric(df["TotalCharges"], errors="coerce")
    y = (df["Churn"] == "Yes").astype(int).to_numpy()
    tr, val = train_test_split(np.arange(len(df)), test_size=0.2, stratify=y, random_state=42)
    pre = preprocessor(NUMERIC, CATEGORICAL)
    x = pre.fit_transform(df.iloc[tr][NUMERIC + CATEGORICAL])
    model = LogisticRegression(C=1.0, max_iter=300).fit(x, y[tr])
    raw = model.predict_proba(pre.transform(df.iloc[val][NUMERIC + CATEGORICAL]))[:, 1]
    z = np.log(raw / (1 - raw)).reshape(-1, 1)
    cal = LogisticRegression(C=1e6).fit(z, y[val])
    # The input each encoded column comes from.
    onehot = pre.named_transformers_["cat"]
    source = list(range(len(NUMERIC)))
    for k, cats in enumerate(onehot.categories_):
        source += [len(NUMERIC) + k] * len(cats)
    return pre, model, cal, np.array(source)


PRE, MODEL, CAL, SOURCE = fit()
COEF = MODEL.coef_[0]
INPUTS = NUMERIC + CATEGORICAL


class Record(BaseModel):
    customerID: str
    gender: Optional[str]
    SeniorCitizen: Optional[float]
    Partner: Optional[str]
    Dependents: Optional[str]
    tenure: Optional[float]
    PhoneService: Optional[str]
    MultipleLines: Optional[str]
    InternetService: Optional[str]
    OnlineSecurity: Optional[str]
    OnlineBackup: Optional[str]
    DeviceProtection: Optional[str]
    TechSupport: Optional[str]
    StreamingTV: Optional[str]
    StreamingMovies: Optional[str]
    Contract: Optional[str]
    PaperlessBilling: Optional[str]
    PaymentMethod: Optional[str]
    MonthlyCharges: Optional[float]
    TotalCharges: Optional[float]
    account_manager_id: Optional[Union[str, int]] = None
    cac: Optional[float] = None


class ScoreRequest(BaseModel):
    customers: List[Record]


def clv(mrr, p):
    r = (1.0 - np.clip(p, 0, 1)) ** (30.4375 / HORIZON_DAYS)
    d = 1.10 ** (1 / 12) - 1
    q = r / (1 + d)
    s = np.where(np.abs(1 - q) < 1e-12, 60.0, q * (1 - q ** 60) / np.where(q == 1, 1, 1 - q))
    return np.where(np.isfinite(mrr) & (mrr > 0), 0.8 * np.nan_to_num(mrr) * s, 0.0)


PLAYBOOK = {"red": ("red", "csm_call"), "yellow": ("yellow", "nurture_email")}

app = FastAPI()


@app.post("/v1/score")
def score(req: ScoreRequest):
    df = pd.DataFrame([r.model_dump() for r in req.customers])
    x = PRE.transform(df[INPUTS])
    raw = MODEL.predict_proba(x)[:, 1]
    p = CAL.predict_proba(np.log(raw / (1 - raw)).reshape(-1, 1))[:, 1]
    h, band = health(df, p)
    contrib = x * COEF
    per_input = np.zeros((len(df), len(INPUTS)))
    np.add.at(per_input.T, SOURCE, contrib.T)
    top = np.argsort(-per_input, axis=1)[:, :3]
    value = clv(df["MonthlyCharges"].to_numpy(dtype=float), p)
    results = []
    for i in range(len(df)):
        reasons = [
            {"feature": INPUTS[j], "value": str(df.iat[i, df.columns.get_loc(INPUTS[j])]),
             "weight": float(per_input[i, j])}
            for j in top[i] if per_input[i, j] > 1e-12
        ]
        rule = PLAYBOOK.get(band[i])
        results.append({
            "customer_id": df.iat[i, 0],
            "churn_probability": float(p[i]),
            "health": {"score": float(h[i]), "band": str(band[i]), "profile": "default"},
            "reasons": reasons,
            "clv": float(value[i]),
            "expected_loss": float(p[i] * value[i]),
            "recommended_intervention": (
                {"rule": rule[0], "playbook": rule[1]} if rule else None
            ),
        })
    return {"model_version": "sklearn-logistic", "results": results}
