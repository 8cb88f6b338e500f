"""The hfsl stage's metrics: each declared once, what one edge's value is (:func:`edge_metrics`,
which the stage logs), and where the report, ``dvc metrics show`` and the MLflow runs table show it.

Adding one to the report is this file alone: declare it, give its value in :func:`edge_metrics`,
and name it in the views below that should show it (``docs/extending.md``, "A report metric").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecogen.stages.metric import ENERGY_KWH, Metric, mean

if TYPE_CHECKING:
    from ecogen.config.params import HfslParams
    from ecogen.federated.hfsl import HfslOutcome, RoundField
    from ecogen.split.channel import LinkClass

START = Metric("accuracy_start", "accuracy", "edge model before HFSL (after its fine-tune)", "Start")
FIRST = Metric("accuracy_first", "accuracy", "after the first round", "After round 1")
END = Metric("accuracy", "accuracy", "after the last round", "End")
# derived by the report per trial, END − START (ecogen.reporting.summary.derived)
GAIN = Metric("gain", "gain", "HFSL's gain", "End − start", per_edge=False)
EDGE_CLIENT_BYTES = Metric(
    "edge_client_bytes_per_round", "bytes", "edge↔client bytes per round", "Edge↔client / round"
)
D2D_BYTES = Metric("d2d_bytes_per_round", "bytes", "device↔device bytes per round", "D2D / round")
CLOUD_EDGE_BYTES = Metric("cloud_edge_bytes_per_round", "bytes", "cloud↔edge bytes per round")
TUNABLE_BYTES = Metric("tunable_bytes", "bytes", "the edge's tunable modules")
FULL_MODEL_BYTES = Metric("full_model_bytes", "bytes", "the full model")
FEDAVG_FULL_BYTES = Metric(
    "fedavg_full_bytes_per_round", "bytes", "what FedAvg on the full model would send per round"
)
VS_FEDAVG_FULL = Metric("edge_client_bytes_vs_fedavg_full", "ratio", "edge↔client bytes / FedAvg-full's")
# client compute per round, summed over every participant: optimiser steps, images trained on
CLIENT_STEPS = Metric(
    "client_steps_per_round", "count", "client optimiser steps per round", "Client steps / round"
)
CLIENT_IMAGES = Metric(
    "client_images_per_round", "count", "client images trained per round", "Client images / round"
)
# modelled on the devices and links of params' costs section (ecogen.costs.method), the whole stage
# at one edge: named modelled_ so that nobody reads them as CodeCarbon's measured host figures
MODELLED_DEVICE_J = Metric(
    "modelled_device_energy_j", "J", "modelled device energy (costs model)", "Modelled device (J)"
)
MODELLED_LINK_J = Metric(
    "modelled_link_energy_j", "J", "modelled link energy (costs model)", "Modelled link (J)"
)
MODELLED_TIME_S = Metric(
    "modelled_time_s", "s", "modelled device wall time (costs model)", "Modelled time (s)"
)
MODELLED = (MODELLED_DEVICE_J, MODELLED_LINK_J, MODELLED_TIME_S)
LINKS: dict[LinkClass, Metric] = {
    "edge_client": EDGE_CLIENT_BYTES,
    "d2d": D2D_BYTES,
    "cloud_edge": CLOUD_EDGE_BYTES,
}

# Where they show, in order: report.json (under their keys), the `default` chain's table (a row
# each, by label), the HFSL study's table (a column each), `dvc metrics show` (column → metric),
# the pipeline run's headline metrics in the MLflow runs table
ACCURACIES = (START, FIRST, END, GAIN)
REPORT_JSON = (*ACCURACIES, EDGE_CLIENT_BYTES, D2D_BYTES, CLIENT_STEPS, CLIENT_IMAGES, ENERGY_KWH, *MODELLED)
CHAIN = (*ACCURACIES, EDGE_CLIENT_BYTES, D2D_BYTES, FEDAVG_FULL_BYTES, CLIENT_STEPS, CLIENT_IMAGES, *MODELLED)
STUDY = (*ACCURACIES, CLIENT_STEPS, CLIENT_IMAGES, EDGE_CLIENT_BYTES)
DVC = {"accuracy": END, "bytes_per_round": EDGE_CLIENT_BYTES}
HEADLINE = (END, EDGE_CLIENT_BYTES, D2D_BYTES)


def edge_metrics(out: HfslOutcome, start: float, tunable: int, full: int, h: HfslParams) -> dict[str, float]:
    """One edge's scalars after its rounds: ``start`` is its accuracy before them, ``tunable`` and
    ``full`` the bytes of its tunable modules and of the whole model."""

    def per_round(field: RoundField) -> float:
        return mean([float(v) for v in out.per_round(field)])

    links = {m.key: mean(link_bytes(out, link)) for link, m in LINKS.items()}
    # down + up of the whole model per cluster that takes part per round
    fedavg_full = 2 * (h.clusters_per_round or h.clusters) * full
    return {
        START.key: start,
        FIRST.key: out.accuracy[0],
        END.key: out.accuracy[-1],
        **links,
        TUNABLE_BYTES.key: float(tunable),
        FULL_MODEL_BYTES.key: float(full),
        FEDAVG_FULL_BYTES.key: float(fedavg_full),
        VS_FEDAVG_FULL.key: links[EDGE_CLIENT_BYTES.key] / fedavg_full,
        CLIENT_STEPS.key: per_round("steps"),
        CLIENT_IMAGES.key: per_round("images"),
        "clusters_aggregated_per_round": per_round("aggregated"),
        "segments_handed_over_per_round": per_round("handed_over"),
        "clusters_trained_per_round": per_round("trained"),
    }


def link_bytes(out: HfslOutcome, link: LinkClass) -> list[float]:
    """Bytes over every direction of ``link``, round by round."""
    return [float(r.link_bytes(link)) for r in out.records]
