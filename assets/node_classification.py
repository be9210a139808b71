"""Benchmark graphs: the gnn-benchmark node-classification graphs (Cora-ML, Citeseer) and the RawlsGCN comparison on
them (GCN, RawlsGCN-Graph, RawlsGCN-Grad with the paper's protocol), so the paper's table is reproduced from the UI.
"""

import dataclasses
import hashlib
from pathlib import Path

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from matplotlib.figure import Figure
from pydantic import Field

from assets.common import markdown_image, markdown_table, read_json, write_json
from assets.cost import step_cost
from models.nodeclf.npz_graphs import NPZ_FOLDER, load_npz_graph, npz_path
from models.nodeclf.rawls_protocol import (
    AUTHORS_REFERENCE,
    METHODS,
    NodeClassificationConfig,
    ProtocolResult,
    mean_group_loss,
    run_protocol,
)
from orchestration.resources import ArtifactStore, Compute
from warehouse.paths import shared_dir

CODE_VERSION = "benchmark-graphs-1"
GROUP = "benchmark_graphs"
GRAPHS_RECORD = ("benchmarks", "node_classification_graphs.json")
RESULTS = ("benchmarks", "rawls_node_classification.json")


class BenchmarkGraphsConfig(Config):
    """Which gnn-benchmark graphs to load."""

    datasets: list[str] = Field(default=["cora_ml", "citeseer"],
                                description="Names in <shared>/datasets/gnn_benchmark_npz, or paths to .npz files.")


class RawlsNodeClassificationConfig(Config):
    """Seeds and epochs of the paper's protocol; every other setting stays the paper's (NodeClassificationConfig)."""

    seeds: list[int] = Field(default=list(NodeClassificationConfig.seeds), description="One run per model seed.")
    epochs: int = Field(default=NodeClassificationConfig.epochs, description="Full-batch training steps per run.")


@asset(group_name=GROUP, kinds={"numpy"}, code_version=CODE_VERSION)
def node_classification_graphs(context: AssetExecutionContext, config: BenchmarkGraphsConfig,
                               artifacts: ArtifactStore) -> MaterializeResult:
    """Node-classification graphs from gnn-benchmark .npz files, checked to load, with their sizes and file hashes."""
    graphs = []
    for name in config.datasets:
        path = npz_path(name, shared_dir() / NPZ_FOLDER)
        data = load_npz_graph(path)
        graphs.append({"dataset": path.stem, "nodes": data.num_nodes, "edges": data.edge_index.size(1) // 2,
                       "classes": int(data.y.max()) + 1, "features": data.num_features, "path": str(path),
                       "sha256": hashlib.sha256(path.read_bytes()).hexdigest()})
    # A list, not a mapping: the JSON keeps the configured order, which the tables downstream follow.
    write_json(artifacts.path(*GRAPHS_RECORD), {"graphs": graphs})
    sizes = ("nodes", "edges", "classes", "features")
    return MaterializeResult(metadata={
        **step_cost(context),
        **{f"{graph['dataset']}.{key}": graph[key] for graph in graphs for key in sizes},
        "graphs": MetadataValue.md(markdown_table([{key: g[key] for key in ("dataset", *sizes)} for g in graphs])),
    })


def _table_row(dataset: str, method: str, summary: dict[str, float]) -> dict[str, str]:
    """One markdown row: ours as mean ± std next to the authors' code on the same file (– where not measured)."""
    reference = AUTHORS_REFERENCE.get(dataset, {}).get(method)
    return {"dataset": dataset, "method": method,
            "accuracy %": f"{summary['acc_mean']:.2f} ± {summary['acc_std']:.2f}",
            "accuracy % (authors)": f"{reference[0]:.2f}" if reference else "–",
            "Bias": f"{summary['bias_mean']:.3f} ± {summary['bias_std']:.3f}",
            "Bias (authors)": f"{reference[1]:.3f}" if reference else "–",
            "s/run": f"{summary['seconds_per_run']:.2f}"}


def _group_loss_plot(results: dict[str, dict[str, ProtocolResult]]) -> str:
    """Mean test loss per raw degree (averaged over seeds), one panel per data set, one line per method."""
    figure = Figure(figsize=(5 * len(results), 3.2))
    for axis, (dataset, methods) in zip(figure.subplots(1, len(results), squeeze=False)[0], results.items()):
        for method, protocol in methods.items():
            curve = mean_group_loss(protocol.runs)
            axis.plot(list(curve), list(curve.values()), marker="o", markersize=3, label=method)
        # symlog keeps degree-0 nodes (citeseer has isolated ones) on a log-like degree axis.
        axis.set_xscale("symlog", linthresh=1)
        axis.set(xlabel="node degree", ylabel="mean test loss (NLL)", title=dataset)
        axis.legend()
    return markdown_image(figure, "mean test loss per degree")


@asset(group_name=GROUP, kinds={"pytorch"}, code_version=CODE_VERSION, deps=[node_classification_graphs])
def rawls_node_classification(context: AssetExecutionContext, config: RawlsNodeClassificationConfig, compute: Compute,
                              artifacts: ArtifactStore) -> MaterializeResult:
    """Accuracy and degree Bias of GCN, RawlsGCN-Graph and RawlsGCN-Grad per graph (the paper's protocol, per seed)."""
    protocol = dataclasses.replace(NodeClassificationConfig(), seeds=tuple(config.seeds), epochs=config.epochs)
    device = compute.torch_device()
    results: dict[str, dict[str, ProtocolResult]] = {}
    for graph in read_json(artifacts.path(*GRAPHS_RECORD))["graphs"]:
        data = load_npz_graph(Path(graph["path"])).to(device)
        results[graph["dataset"]] = {method: run_protocol(data, method, protocol) for method in METHODS}
    summaries = {(d, m): r.summary() for d, methods in results.items() for m, r in methods.items()}
    for (dataset, method), s in summaries.items():
        context.log.info(f"{dataset} {method}: accuracy {s['acc_mean']:.2f}%, Bias {s['bias_mean']:.3f}")
    write_json(artifacts.path(*RESULTS), {"protocol": dataclasses.asdict(protocol), "device": str(device), "results": {
        dataset: {method: {**dataclasses.asdict(r), **r.summary()} for method, r in methods.items()}
        for dataset, methods in results.items()}})
    return MaterializeResult(metadata={
        **step_cost(context),
        **{f"{d}.{m}.{key}": value for (d, m), summary in summaries.items() for key, value in summary.items()},
        "device": str(device),
        "results": MetadataValue.md(markdown_table([_table_row(d, m, s) for (d, m), s in summaries.items()])),
        "test_loss_by_degree": MetadataValue.md(_group_loss_plot(results)),
    })
