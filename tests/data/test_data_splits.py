"""Patient-level splits never leak a patient across train and test."""

from __future__ import annotations

import pytest

from rankbygene.data import Split, assert_patient_disjoint, grouped_kfold, leave_one_patient_out

PATIENTS = {"A1": "P1", "A2": "P1", "B1": "P2", "C1": "P3", "D1": "P4", "D2": "P4", "E1": "P5"}


def test_leave_one_patient_out():
    splits = leave_one_patient_out(PATIENTS)
    assert len(splits) == 5
    assert splits[0] == Split(train=["B1", "C1", "D1", "D2", "E1"], test=["A1", "A2"])
    assert [s.test for s in splits] == [["A1", "A2"], ["B1"], ["C1"], ["D1", "D2"], ["E1"]]
    for s in splits:
        assert_patient_disjoint(s.train, s.test, PATIENTS)
        assert sorted(s.train + s.test) == sorted(PATIENTS)
    with pytest.raises(ValueError, match="at least 2 patients"):
        leave_one_patient_out({"A1": "P1", "A2": "P1"})


@pytest.mark.parametrize("k", [2, 3, 5])
def test_grouped_kfold_keeps_patients_together(k):
    ids = sorted(PATIENTS)
    splits = grouped_kfold(ids, PATIENTS, k, seed=0)
    assert len(splits) == k
    tested = sorted(i for s in splits for i in s.test)
    assert tested == ids  # each sample in exactly one test fold
    for s in splits:
        assert s.test and s.train
        assert_patient_disjoint(s.train, s.test, PATIENTS)
    assert grouped_kfold(ids, PATIENTS, k, seed=0) == splits  # deterministic for a seed


def test_grouped_kfold_seed_and_aligned_sequence():
    ids = sorted(PATIENTS)
    seqs = [PATIENTS[i] for i in ids]
    assert grouped_kfold(ids, seqs, 2, seed=3) == grouped_kfold(ids, PATIENTS, 2, seed=3)
    folds = {
        tuple(tuple(s.test) for s in grouped_kfold(ids, PATIENTS, 2, seed=s)) for s in range(8)
    }
    assert len(folds) > 1  # the seed shuffles patients
    with pytest.raises(ValueError, match=r"k=6 folds need 2 <= k <= number of patients \(5\)"):
        grouped_kfold(ids, PATIENTS, 6)
    with pytest.raises(ValueError, match=r"no patient known for samples \['Z9'\]"):
        grouped_kfold([*ids, "Z9"], PATIENTS, 2)


def test_assert_patient_disjoint_refuses_leakage():
    with pytest.raises(ValueError, match=r"patient 'P4'.*train: \['D1'\]; test: \['D2'\]"):
        assert_patient_disjoint(["A1", "D1"], ["D2", "E1"], PATIENTS)
    with pytest.raises(ValueError, match=r"\['B1'\] are in both"):
        assert_patient_disjoint(["B1"], ["B1"], PATIENTS)
    assert_patient_disjoint(["A1", "A2"], ["B1"], PATIENTS)  # fine
