"""A publish that fails or is killed at any point leaves no visible version and leaves the promoted
version untouched; gc() then removes the leftovers. Also: waiting for, and timing out on, a locked registry."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import feature_store.layout
from feature_store import FeatureStore, RegistryBusyError, VersionMeta
from feature_store.registry import Transaction

REPO = Path(__file__).resolve().parents[2]

# Publishes versions in a loop until killed (argv: store root, rows per entity).
PUBLISH_LOOP = """
import sys
import numpy as np
from feature_store import FeatureStore, VersionMeta

store = FeatureStore(sys.argv[1])
n = int(sys.argv[2])
ids = [f"x{i}" for i in range(n)]
rng = np.random.default_rng(0)
while True:
    vectors = rng.standard_normal((n, 64), dtype=np.float32)
    store.publish(VersionMeta(model="loop", parent_id="v1"), ids, vectors, ids, vectors)
"""


@pytest.fixture
def promoted(store, make_embeddings):
    """The store with version v1 published and promoted; returns v1's embeddings."""
    data = make_embeddings(seed=1)
    store.publish(VersionMeta(model="lightgcn", version_id="v1"), **data)
    store.promote("v1")
    return data


def _assert_untouched(store, data):
    """Only complete versions are visible, v1 is still promoted and reads back exactly, no leftovers after gc."""
    promoted = store.promoted_version()
    assert promoted.version_id == "v1"
    np.testing.assert_array_equal(store.read_vectors("user", data["user_ids"]), data["user_vectors"])
    for info in store.list_versions():
        ids = [f"x{i}" for i in range(info.n_items)] if info.model == "loop" else data["item_ids"]
        assert store.read_vectors("item", ids, info.version_id).shape == (info.n_items, info.dim)
    store.gc(min_age_s=0)
    assert sorted(p.name for p in store.versions_dir.iterdir()) == sorted(v.version_id for v in store.list_versions())


def _publish_v2(store, make_embeddings):
    store.publish(VersionMeta(model="lightgcn", version_id="v2", parent_id="v1"), **make_embeddings(seed=2))


def _raise(*args, **kwargs):
    raise OSError("injected failure")


@pytest.mark.parametrize("target, name", [
    (feature_store.layout, "build_index"),  # while writing the staging folder
    (os, "rename"),  # moving the staging folder into place
    (Transaction, "insert"),  # after the rename, inside the registry transaction
])
def test_failed_publish_leaves_nothing_visible(store, promoted, make_embeddings, monkeypatch, target, name):
    monkeypatch.setattr(target, name, _raise)
    with pytest.raises(OSError, match="injected failure"):
        _publish_v2(store, make_embeddings)
    monkeypatch.undo()

    assert [v.version_id for v in store.list_versions()] == ["v1"]
    assert sorted(p.name for p in store.versions_dir.iterdir()) == ["v1"]  # cleaned up on the way out
    assert [e.action for e in store.events()] == ["publish", "promote"]
    _assert_untouched(store, promoted)
    _publish_v2(store, make_embeddings)  # the same id is free again
    assert store.get_version("v2").status == "candidate"


@pytest.mark.parametrize("rows, killed_after_s", [
    (200_000, 0.0),  # large version: killed while its staging files are written
    (500, 1.5),  # small versions in quick succession: killed at an arbitrary point of the loop
])
def test_publish_killed_with_sigkill_leaves_nothing_partial(store, promoted, rows, killed_after_s):
    child = subprocess.Popen([sys.executable, "-c", PUBLISH_LOOP, str(store.root), str(rows)], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not any(store.versions_dir.glob(".staging-*/users.parquet")):
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "the publishing process never started writing"
            time.sleep(0.005)
        time.sleep(killed_after_s)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()

    assert child.returncode == -signal.SIGKILL
    if rows == 200_000:
        assert [v.version_id for v in store.list_versions()] == ["v1"]
        assert any(p.name.startswith(".staging-") for p in store.versions_dir.iterdir())
    registered = {v.version_id for v in store.list_versions()}
    removed = store.gc()
    # Fresh staging folders are kept: a publish could still be writing them. The only thing removed is a
    # version folder left by a kill between the rename and the registry commit, which is never registered.
    assert [p for p in removed if p.name.startswith(".staging-") or p.name in registered] == []
    assert len(removed) <= 1
    if rows == 200_000:
        assert removed == []
    _assert_untouched(store, promoted)


# Publishes one version but dies by SIGKILL inside the registry transaction, after the rename (argv: store root).
PUBLISH_KILLED_BEFORE_COMMIT = """
import os, signal, sys
import numpy as np
from feature_store import FeatureStore, VersionMeta
from feature_store.registry import Transaction

Transaction.insert = lambda self, info: os.kill(os.getpid(), signal.SIGKILL)
ids = [f"x{i}" for i in range(10)]
vectors = np.ones((10, 8), dtype=np.float32)
FeatureStore(sys.argv[1]).publish(VersionMeta(model="loop", version_id="v2", parent_id="v1"), ids, vectors, ids, vectors)
"""


def test_publish_killed_between_rename_and_commit_is_invisible_and_gc_removes_its_folder(store, promoted):
    child = subprocess.run([sys.executable, "-c", PUBLISH_KILLED_BEFORE_COMMIT, str(store.root)],
                           check=False, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()

    assert (store.versions_dir / "v2").is_dir()  # renamed into place, but its registry row never committed
    assert [v.version_id for v in store.list_versions()] == ["v1"]
    assert store.gc() == [store.versions_dir / "v2"]  # unregistered, so removed regardless of age
    _assert_untouched(store, promoted)


LOCK_HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _hold_registry_lock(store, seconds):
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(store.root / "registry.duckdb"), str(seconds)],
                              stdout=subprocess.PIPE)
    assert holder.stdout.readline() == b"locked\n"
    return holder


def test_operations_wait_for_another_process_to_release_the_registry(store, promoted):
    holder = _hold_registry_lock(store, seconds=0.5)
    started = time.monotonic()

    assert store.promoted_version().version_id == "v1"
    assert time.monotonic() - started >= 0.3
    holder.wait()


def test_registry_locked_for_too_long_raises_busy(store, promoted):
    holder = _hold_registry_lock(store, seconds=5)
    try:
        with pytest.raises(RegistryBusyError, match=r"stayed locked for 0\.2 s by another process"):
            FeatureStore(store.root, lock_timeout_s=0.2)
    finally:
        holder.kill()
        holder.wait()
    assert FeatureStore(store.root, lock_timeout_s=0.2).promoted_version().version_id == "v1"
