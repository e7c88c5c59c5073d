"""Train/test splits by patient, so no patient's tissue is on both sides."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Split", "assert_patient_disjoint", "grouped_kfold", "leave_one_patient_out"]


@dataclass(frozen=True)
class Split:
    """Sample ids on each side of one split.

    Attributes:
        train: training sample ids (sorted).
        test: test sample ids (sorted).
    """

    train: list[str]
    test: list[str]


def _patient_of(ids: Sequence[str], patients: Mapping[str, str] | Sequence[str]) -> list[str]:
    """Patient per id, from a mapping (id -> patient) or a sequence aligned with ids."""
    if isinstance(patients, Mapping):
        missing = [i for i in ids if i not in patients]
        if missing:
            raise ValueError(
                f"no patient known for samples {missing}; add 'patient' to their metadata json"
            )
        return [str(patients[i]) for i in ids]
    if len(patients) != len(ids):
        raise ValueError(f"got {len(patients)} patients for {len(ids)} sample ids")
    return [str(p) for p in patients]


def assert_patient_disjoint(
    train_ids: Sequence[str],
    test_ids: Sequence[str],
    patients: Mapping[str, str],
    override: str = "",
) -> None:
    """Refuse a split where a patient has samples on both sides.

    Args:
        train_ids, test_ids: the two sides.
        patients: sample id -> patient.
        override: how the caller lets a user allow it on purpose (e.g. a flag), named
            in the message.

    Raises:
        ValueError: naming the patient and its training and test samples.
    """
    overlap_ids = sorted(set(train_ids) & set(test_ids))
    if overlap_ids:
        raise ValueError(f"samples {overlap_ids} are in both the training and the test set")
    train_p = dict(zip(train_ids, _patient_of(train_ids, patients), strict=True))
    test_p = dict(zip(test_ids, _patient_of(test_ids, patients), strict=True))
    shared = sorted(set(train_p.values()) & set(test_p.values()))
    if shared:
        p = shared[0]
        tr = sorted(i for i, q in train_p.items() if q == p)
        te = sorted(i for i, q in test_p.items() if q == p)
        others = f" (also patients {shared[1:]})" if len(shared) > 1 else ""
        raise ValueError(
            f"patient '{p}' is on both sides of the split (train: {tr}; test: {te}){others}; "
            "put all samples of a patient on one side" + (f", or {override}" if override else "")
        )


def leave_one_patient_out(patients: Mapping[str, str]) -> list[Split]:
    """One split per patient: that patient's samples are the test set.

    Args:
        patients: sample id -> patient id.

    Returns:
        Splits in sorted patient order.
    """
    by_patient: dict[str, list[str]] = {}
    for sid, pid in sorted(patients.items()):
        by_patient.setdefault(str(pid), []).append(sid)
    if len(by_patient) < 2:
        raise ValueError(
            f"leave-one-patient-out needs at least 2 patients, got {sorted(by_patient)} for "
            f"samples {sorted(patients)}"
        )
    return [
        Split(
            train=sorted(s for q, ids in by_patient.items() if q != p for s in ids),
            test=sorted(by_patient[p]),
        )
        for p in sorted(by_patient)
    ]


def grouped_kfold(
    ids: Sequence[str],
    patients: Mapping[str, str] | Sequence[str],
    k: int,
    seed: int = 0,
) -> list[Split]:
    """K folds over samples with every patient's samples in one fold.

    Args:
        ids: sample ids.
        patients: sample id -> patient (or a sequence aligned with ``ids``).
        k: number of folds (at most the number of patients).
        seed: shuffles patients before the (size-balanced) assignment to folds.

    Returns:
        k splits; each sample is in exactly one test fold.
    """
    ids = list(ids)
    groups = np.asarray(_patient_of(ids, patients))
    n_groups = len(np.unique(groups))
    if not 2 <= k <= n_groups:
        raise ValueError(
            f"k={k} folds need 2 <= k <= number of patients ({n_groups}); lower k or add patients"
        )
    # scikit-learn takes seconds to import and only k-fold splits need it.
    from sklearn.model_selection import GroupKFold

    folds = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    x = np.zeros((len(ids), 1))
    return [
        Split(train=sorted(ids[i] for i in tr), test=sorted(ids[i] for i in te))
        for tr, te in folds.split(x, groups=groups)
    ]
