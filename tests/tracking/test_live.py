"""Metrics of a running stage reach MLflow while it runs, once each, at their real steps."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from mlflow import MlflowClient
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ecogen.config.params import Params
from ecogen.runtime.progress import Step, listening, report
from ecogen.stages.result import StageResult
from ecogen.tracking import track_stage
from ecogen.tracking.live import LiveMetrics
from ecogen.training.trainer import History, make_trainer
from ecogen.workspace import Workspace

EPOCHS = 3


class Regression(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 1)

    def training_step(self, batch: list[torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Probe(L.Callback):
    """Reads the stage run from MLflow at the end of every epoch, while the stage still runs."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.seen: list[tuple[str, list[int]]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        client = MlflowClient()
        status = client.get_run(self.run_id).info.status
        self.seen.append((status, [m.step for m in client.get_metric_history(self.run_id, "train_loss")]))


def test_epochs_are_in_mlflow_before_the_stage_ends(
    params: Params, project: Path, workspace: Workspace
) -> None:
    torch.manual_seed(0)
    data = DataLoader(TensorDataset(torch.randn(32, 4), torch.randn(32, 1)), batch_size=8)
    with track_stage(params, "pretrain", project, None, None, workspace) as stage:
        history, probe = History("pretrain"), Probe(stage.run_id)
        make_trainer("cpu", EPOCHS, [history, probe]).fit(Regression(), data)  # History reports first
        stage.log(
            StageResult(
                name="pretrain",
                metrics={"train_loss": history.series["train_loss"][-1]},
                history=dict(history.series),
            )
        )
    # while it ran: epoch k's point was there at the end of epoch k, the run still RUNNING
    assert probe.seen == [("RUNNING", list(range(1, k + 1))) for k in range(1, EPOCHS + 1)]
    points = MlflowClient().get_metric_history(stage.run_id, "train_loss")
    # afterwards: each epoch once (the history and the final value are not logged again)
    assert sorted(m.step for m in points) == list(range(1, EPOCHS + 1))
    assert [m.value for m in sorted(points, key=lambda m: m.step)] == history.series["train_loss"]
    times = [m.timestamp for m in sorted(points, key=lambda m: m.step)]
    assert times == sorted(times)


def test_an_edge_run_takes_only_its_own_edge_and_means_are_named_as_the_stage_result(
    params: Params, project: Path, workspace: Workspace
) -> None:
    with track_stage(params, "finetune", project, None, None, workspace) as stage:
        edge = LiveMetrics(stage.run_id, part="invert")
        with listening(edge):
            for part, acc in (("identity", 0.2), ("invert", 0.4)):
                report(Step("finetune", 1, 2, {"accuracy": acc}, part=part, parts=2))
            report(Step("finetune", 2, 2, {"accuracy": 0.6}, part="identity", parts=2))  # invert not yet
    client = MlflowClient()
    assert [(m.step, m.value) for m in client.get_metric_history(stage.run_id, "accuracy")] == [(1, 0.4)]
    mean = client.get_metric_history(stage.run_id, "mean_accuracy")  # the stage's own listener
    assert [(m.step, round(m.value, 6)) for m in mean] == [(1, 0.3)]
    assert edge.logged == {"accuracy"}


def test_edges_training_inside_the_stage_get_runs_at_their_first_step(
    params: Params, project: Path, workspace: Workspace
) -> None:
    with track_stage(params, "hfsl", project, None, None, workspace, edge_runs=True) as stage:
        for r in (1, 2):
            for part, acc in (("identity", 0.5 + r / 10), ("invert", 0.4 + r / 10)):
                report(Step("hfsl", r, 2, {"accuracy": acc}, "round", part, 2))
        assert stage.edges is not None and sorted(stage.edges.runs) == ["edge-identity", "edge-invert"]
        live_ids = {name: live.run_id for name, live in stage.edges.runs.items()}
        children = [
            StageResult(name=f"edge-{d}", metrics={"accuracy": a}, history={"accuracy": [a - 0.1, a]})
            for d, a in (("identity", 0.7), ("invert", 0.6))
        ]
        created = stage.log(StageResult(name="hfsl", children=children))
    assert sorted(created) == sorted(live_ids.values())  # the runs made live, not new ones
    client = MlflowClient()
    for name, run_id in live_ids.items():
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED" and run.data.tags["ecogen.edge"] == name
        points = client.get_metric_history(run_id, "accuracy")
        assert sorted(m.step for m in points) == [1, 2]  # each round once, as it ended
