"""The share of the cores each of several processes gets, unless the user has set it."""
from __future__ import annotations

import os

from models.runtime.machine import thread_share


def test_processes_split_the_cores_evenly_with_at_least_one_thread_each(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert [thread_share(n) for n in (1, 2, 3, 16, 40)] == [
        {"OMP_NUM_THREADS": value} for value in ("16", "8", "5", "1", "1")]
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # unknown: one core
    assert thread_share(2) == {"OMP_NUM_THREADS": "1"}


def test_the_users_own_setting_wins(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert thread_share(2) == {}
