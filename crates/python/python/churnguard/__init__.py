"""churnguard for Python: churn features, predictions and scores from the
same Rust core as the ``churnguard`` command line (no libtorch, no server).

Frames go in and come out as polars DataFrames; pyarrow Tables are accepted
too. Data crosses into Rust as Parquet held in memory.

>>> import churnguard
>>> feats = churnguard.features(tables, snapshots=["2024-06-01"], horizon_days=90)
>>> model = churnguard.load_model("models")          # the registry's champion
>>> model.predict(feats)                             # id, churn_probability
>>> model.score(feats)                               # + churn type, health, band, reasons, CLV
"""

from __future__ import annotations

import io
import os
from typing import Mapping, Optional, Sequence, Union

import polars as pl

from ._core import ChurnguardError, Model as _Model, __version__, build_features as _build_features

__all__ = ["ChurnguardError", "Model", "features", "load_model", "__version__"]

Frame = Union[pl.DataFrame, "pyarrow.Table"]  # noqa: F821


def _to_parquet(frame: Frame, what: str) -> bytes:
    if not isinstance(frame, pl.DataFrame):
        try:
            frame = pl.from_arrow(frame)
        except Exception as e:  # noqa: BLE001 - any unconvertible object
            raise TypeError(f"{what}: expected a polars DataFrame or a pyarrow Table, got {type(frame).__name__}") from e
    buf = io.BytesIO()
    frame.write_parquet(buf, compression="uncompressed", statistics=False)
    return buf.getvalue()


def _from_parquet(data: bytes) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(data))


def features(
    tables: Mapping[str, Frame],
    snapshots: Sequence[str] = (),
    horizon_days: int = 90,
    as_of: Optional[str] = None,
) -> pl.DataFrame:
    """Point-in-time features: one row per customer active at each snapshot.

    ``tables`` maps every event table's name (customers, employees, leads,
    subscriptions, invoices, payments, usage, tickets, surveys, churn_events;
    see data/README.md) to its frame. ``snapshots`` are ``YYYY-MM-DD`` dates
    or ``"latest"`` (the day after the data ends, the default). Rows whose
    horizon has passed carry the label ``churned``. Dates after ``as_of``
    (default: today) are rejected as future dates.

    Raises ``ChurnguardError`` naming the table, column and row at fault.
    """
    encoded = {name: _to_parquet(frame, f"table {name!r}") for name, frame in tables.items()}
    return _from_parquet(_build_features(encoded, list(snapshots), horizon_days, as_of))


class Model:
    """A trained model version from a churnguard registry."""

    def __init__(self, inner: _Model) -> None:
        self._inner = inner

    @property
    def id(self) -> str:
        """The version's id."""
        return self._inner.id

    @property
    def family(self) -> str:
        """The model family: logistic, tree, gbdt or neural."""
        return self._inner.family

    @property
    def horizon_days(self) -> int:
        """The horizon of its probabilities, in days."""
        return self._inner.horizon_days

    @property
    def inputs(self) -> tuple[str, list[str], list[str]]:
        """The id column, the numeric inputs and the categorical inputs."""
        return self._inner.inputs

    def predict(self, data: Frame) -> pl.DataFrame:
        """Calibrated churn probabilities: the id column and ``churn_probability``."""
        return _from_parquet(self._inner.predict(_to_parquet(data, "data")))

    def score(self, data: Frame, top_reasons: int = 3) -> pl.DataFrame:
        """Scores as ``churnguard score`` computes them, with the default settings.

        Columns: the id, ``churn_probability``, ``churn_type``, ``health``
        (0-100), ``band`` (green, yellow, red), ``reasons`` (the top reasons
        in words, with their direction), ``clv`` and ``expected_loss``.
        """
        return _from_parquet(self._inner.score(_to_parquet(data, "data"), top_reasons))

    def __repr__(self) -> str:
        return repr(self._inner)


def load_model(path: Union[str, "os.PathLike[str]"], id: Optional[str] = None) -> Model:
    """Loads a model version.

    ``path`` is a version's folder (``models/<id>``) or a registry folder; in
    a registry, ``id`` picks the version (default: the champion).
    """
    return Model(_Model.load(os.fspath(path), id))
